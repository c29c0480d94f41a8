"""The per-stream half of the pipeline: frames → segmenter → rolling and final cues → what the service publishes.

This is the CPU work that grows with the number of calls (VAD, Praat), so it is kept apart from the service's
engine and publisher: one process runs it for a microphone, several worker processes run it for many RTP legs
(see :mod:`emoscribe.daemon.shards`), and both hand their results to a :class:`Downstream`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from emoscribe.cues import CueTracker, extract_cues
from emoscribe.cues.binning import Binner
from emoscribe.cues.model import Cues
from emoscribe.daemon.config import ConfigError, DaemonConfig
from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo
from emoscribe.daemon.quality import Quality, assess
from emoscribe.daemon.segmenter import Segmenter, SpeechStarted, UtteranceDropped, UtteranceEnded
from emoscribe.daemon.shedding import Shedder
from emoscribe.messages import PartialCues

log = logging.getLogger(__name__)

COUNTED = ("frames", "errors", "drops", "shed")
"""The counter families a front end reports through :meth:`Downstream.count`."""
FRAME_TALLY = 50
"""A stream's frames are counted in the metrics this many at a time (a second of 20 ms packets), and the rest
when it ends, instead of once per packet."""


@dataclass(frozen=True, slots=True)
class ReadyUtterance:
    """An utterance with its final cues, waiting for the engine; ``decided`` is ``time.perf_counter()`` at the
    segmenter's end-of-utterance decision (system-wide on Linux, so it holds across worker processes)."""

    stream: str
    event: UtteranceEnded
    decided: float
    cues_s: float
    cues: Cues
    quality: Quality | None = None


class Downstream(Protocol):
    """Where a front end's results go: the service itself, or the link from a worker process to it; its
    ``shedder`` (of this process) decides the partial-cue rate and hears the final-cue latencies."""

    shedder: Shedder | None

    def stream_opened(self, info: StreamInfo) -> None: ...

    def partial_cues(self, message: PartialCues, seconds: float) -> None: ...

    def utterance_ready(self, ready: ReadyUtterance) -> None: ...

    def stream_closed(self, stream: str, reason: str, position: float | None) -> None:
        """The stream ended at stream time ``position`` (``None``: unknown, its worker died)."""
        ...

    def count(self, family: str, label: str, n: int = 1) -> None:
        """Add ``n`` to counter ``family`` (one of :data:`COUNTED`) under ``label``."""
        ...

    def watch_source(self, name: str, tallies: Mapping[str, Counter[str]]) -> None:
        """A source's own counters by family (``rejected``, ``jitter``, ...), to export as metrics."""
        ...


class Source(Protocol):
    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None: ...


@dataclass(slots=True)
class _Stream:
    info: StreamInfo
    segmenter: Segmenter
    tracker: CueTracker | None = None
    utterance_start: float = 0.0
    next_partial: int = 0
    """Samples of the open utterance at which the next partial cues are due."""
    position: float = 0.0
    uncounted: int = 0
    """Frames not yet added to the metrics."""
    partials_due: int = 0


def segmenter_factory(config: DaemonConfig) -> Callable[[str], Segmenter]:
    """A new segmenter (with its own VAD state) per stream; the VAD is tried once here, at start."""
    try:
        config.segmenter.make_vad()
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"segmenter: {error}") from error
    return lambda stream: Segmenter(stream, config.segmenter, config.segmenter.make_vad())


class Frontend:
    """Implements the sources' ``FrameSink``: segments each stream and computes its cues."""

    def __init__(
        self,
        make_segmenter: Callable[[str], Segmenter],
        binner: Binner,
        partial_interval_s: float,
        downstream: Downstream,
    ) -> None:
        self.make_segmenter = make_segmenter
        self.binner = binner
        self.partial_interval_s = partial_interval_s
        self._interval_samples = round(partial_interval_s * SAMPLE_RATE)
        self.downstream = downstream
        self.streams: dict[str, _Stream] = {}

    def stream_started(self, info: StreamInfo) -> None:
        if info.stream in self.streams:
            log.warning("stream %s started twice; keeping the open one", info.stream)
            return
        self.streams[info.stream] = _Stream(info, self.make_segmenter(info.stream))
        self.downstream.stream_opened(info)

    def frame(self, frame: Frame) -> None:
        state = self.streams.get(frame.stream)
        if state is None:
            self.downstream.count("errors", "frame_for_unknown_stream")
            return
        if not math.isfinite(frame.samples.sum()) and not np.isfinite(frame.samples).all():  # one reduction
            self.downstream.count("errors", "non_finite_samples")
            samples = np.nan_to_num(frame.samples, nan=0.0, posinf=0.0, neginf=0.0)
            frame = Frame(frame.stream, frame.start, samples)
        state.uncounted += 1
        if state.uncounted >= FRAME_TALLY:
            self.downstream.count("frames", state.info.kind, state.uncounted)
            state.uncounted = 0
        state.position = frame.end
        events = state.segmenter.push(frame)
        if events:
            self._handle(state, events)
        if state.tracker is not None and state.segmenter.speech_samples >= state.next_partial:
            self._partial(state)

    def stream_ended(self, stream: str, reason: str) -> None:
        state = self.streams.pop(stream, None)
        if state is None:
            return
        if state.uncounted:
            self.downstream.count("frames", state.info.kind, state.uncounted)
        self._handle(state, state.segmenter.flush("stream_end"))
        self.downstream.stream_closed(stream, reason, state.position)

    def _handle(self, state: _Stream, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                state.tracker = CueTracker() if self.partial_interval_s > 0 else None
                state.utterance_start = event.start
                state.next_partial = self._interval_samples
            elif isinstance(event, UtteranceEnded):
                state.tracker = None
                self._utterance(state, event)
            elif isinstance(event, UtteranceDropped):
                state.tracker = None
                self.downstream.count("drops", f"utterance_{event.reason}")

    def _partial(self, state: _Stream) -> None:
        """Rolling cues of the open utterance so far, once a partial interval more of it has been heard."""
        tracker = state.tracker
        assert tracker is not None
        state.next_partial += self._interval_samples
        shedder = self.downstream.shedder
        shedding = shedder is not None and shedder.sheds("partial_cues")
        state.partials_due += 1
        if shedder is not None and shedding and state.partials_due % shedder.settings.partial_slowdown:
            self.downstream.count("shed", "partial_cues")
            return
        began = time.perf_counter()
        tracker.push(state.segmenter.take_speech())
        cues = tracker.cues()
        took = time.perf_counter() - began
        tokens = self.binner.tokens(cues)
        message = PartialCues(
            stream=state.info.stream,
            start=state.utterance_start,
            end=state.utterance_start + cues.duration_s,
            cues=cues.to_dict(),
            tokens={family: token.level for family, token in tokens.items()},
            latency={"cues_ms": took * 1000},
            shed=shedder.active if shedder is not None and shedding else [],
        )
        self.downstream.partial_cues(message, took)

    def _utterance(self, state: _Stream, event: UtteranceEnded) -> None:
        decided = time.perf_counter()
        cues = extract_cues(event.samples)
        quality = assess(event.samples, cues)
        cues_s = time.perf_counter() - decided
        if self.downstream.shedder is not None:
            self.downstream.shedder.observe("cues", cues_s)
        ready = ReadyUtterance(state.info.stream, event, decided, cues_s, cues, quality)
        self.downstream.utterance_ready(ready)


class SourcesFailedError(RuntimeError):
    """Every source of a front end failed: nothing can be described, and the daemon must say so."""


async def run_sources(sources: Sequence[Source], frontend: Frontend, stop: asyncio.Event) -> None:
    """Feed ``frontend`` from every source until they end or ``stop`` is set; a failing source is logged and
    counted, and the others go on. If every source failed, :class:`SourcesFailedError` says why each did."""
    for index, source in enumerate(sources):
        tallies = getattr(source, "tallies", None)
        if tallies is not None:
            frontend.downstream.watch_source(f"{type(source).__name__}-{index}", tallies)
    results = await asyncio.gather(*(s.run(frontend, stop) for s in sources), return_exceptions=True)
    failures = []
    for source, outcome in zip(sources, results, strict=True):
        if isinstance(outcome, Exception):
            log.error("source %s failed: %s", type(source).__name__, outcome)
            frontend.downstream.count("errors", "source")
            failures.append(str(outcome))
    if sources and len(failures) == len(sources):
        raise SourcesFailedError(f"every source failed: {'; '.join(failures)}")


class InProcess:
    """The single-process producer (the default, and the only one for a microphone, a file or stdin)."""

    def __init__(
        self,
        sources: Sequence[Source],
        make_segmenter: Callable[[str], Segmenter],
        binner: Binner,
        partial_interval_s: float,
    ) -> None:
        self.sources = sources
        self.make_segmenter = make_segmenter
        self.binner = binner
        self.partial_interval_s = partial_interval_s

    async def start(self, downstream: Downstream) -> None:
        """Nothing to prepare: the sources open themselves when they run."""

    async def run(self, downstream: Downstream, stop: asyncio.Event) -> None:
        frontend = Frontend(self.make_segmenter, self.binner, self.partial_interval_s, downstream)
        await run_sources(self.sources, frontend, stop)
