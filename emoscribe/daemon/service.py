"""The daemon's wiring: sources → per-stream segmenter and cues → batcher → describe → publisher, with metrics.

Everything per stream happens on the event loop in arrival order; only the engine runs in its own thread, and its
results come back to the loop. Shutdown ends every source, closes open utterances, lets the engine finish what is
queued within the drain deadline, publishes it, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from emoscribe.cues import CueTracker, extract_cues
from emoscribe.cues.baseline import SpeakerBaselines
from emoscribe.daemon.batcher import Batcher, Request, Result
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine import Engine
from emoscribe.daemon.frames import Frame, StreamInfo
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.segmenter import Segmenter, SpeechAudio, SpeechStarted, UtteranceDropped, UtteranceEnded

log = logging.getLogger(__name__)


class Source(Protocol):
    async def run(self, sink: Service, stop: asyncio.Event) -> None: ...


@dataclass(slots=True)
class StreamState:
    info: StreamInfo
    segmenter: Segmenter
    tracker: CueTracker | None = None
    utterance_start: float = 0.0
    next_partial: float = 0.0
    position: float = 0.0
    pending: int = 0
    ended: str | None = None


@dataclass(slots=True)
class Pending:
    """What travels with an utterance through the engine and back."""

    stream: str
    event: UtteranceEnded
    decided: float
    cues_s: float
    cues: Any
    timings: dict[str, float] = field(default_factory=dict)


class Service:
    """Implements the sources' ``FrameSink`` and publishes everything the pipeline produces."""

    def __init__(
        self,
        config: DaemonConfig,
        engine: Engine,
        describer: Describer,
        publisher: Publisher,
        metrics: Metrics,
        make_segmenter,
    ) -> None:
        self.config = config
        self.describer = describer
        self.publisher = publisher
        self.metrics = metrics
        self.make_segmenter = make_segmenter
        self.streams: dict[str, StreamState] = {}
        self.baselines = SpeakerBaselines()
        self.batcher = Batcher(engine, config.batch, self._on_result)
        self.started = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- FrameSink -------------------------------------------------------------------------------------------
    def stream_started(self, info: StreamInfo) -> None:
        if info.stream in self.streams:
            log.warning("stream %s started twice; keeping the open one", info.stream)
            return
        self.streams[info.stream] = StreamState(info, self.make_segmenter(info.stream))
        self.metrics.active_streams.set(len(self.streams))
        body = {"event": "start", "start": 0.0, "end": 0.0, "reason": None, "details": info.details}
        self._send("stream", info.stream, body)

    def frame(self, frame: Frame) -> None:
        state = self.streams.get(frame.stream)
        if state is None or state.ended:
            self.metrics.errors.labels("frame_for_unknown_stream").inc()
            return
        samples = frame.samples
        if not np.isfinite(samples).all():
            self.metrics.errors.labels("non_finite_samples").inc()
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
            frame = Frame(frame.stream, frame.start, samples)
        self.metrics.frames.labels(state.info.kind).inc()
        state.position = frame.end
        self._handle(state, state.segmenter.push(frame))

    def stream_ended(self, stream: str, reason: str) -> None:
        state = self.streams.get(stream)
        if state is None or state.ended:
            return
        self._handle(state, state.segmenter.flush("stream_end"))
        state.ended = reason
        self._maybe_close(state)

    # --- pipeline ----------------------------------------------------------------------------------------------
    def _handle(self, state: StreamState, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                state.tracker = CueTracker()
                state.utterance_start = event.start
                state.next_partial = self.config.cues.partial_interval_s
            elif isinstance(event, SpeechAudio):
                self._partial(state, event)
            elif isinstance(event, UtteranceEnded):
                state.tracker = None
                self._utterance(state, event)
            elif isinstance(event, UtteranceDropped):
                state.tracker = None
                self.metrics.drops.labels(f"utterance_{event.reason}").inc()

    def _partial(self, state: StreamState, event: SpeechAudio) -> None:
        tracker = state.tracker
        if tracker is None or self.config.cues.partial_interval_s <= 0:
            return
        tracker.push(event.samples)
        if tracker.duration_s < state.next_partial:
            return
        state.next_partial += self.config.cues.partial_interval_s
        began = time.perf_counter()
        cues = tracker.cues()
        took = time.perf_counter() - began
        self.metrics.stage_seconds.labels("partial_cues").observe(took)
        tokens = self.describer.binner.tokens(cues)
        self._send(
            "cues",
            state.info.stream,
            {
                "start": state.utterance_start,
                "end": state.utterance_start + cues.duration_s,
                "partial": True,
                "cues": cues.to_dict(),
                "tokens": {family: token.level for family, token in tokens.items()},
                "latency": {"cues_ms": took * 1000},
            },
        )

    def _utterance(self, state: StreamState, event: UtteranceEnded) -> None:
        decided = time.perf_counter()
        cues = extract_cues(event.samples)
        cues_s = time.perf_counter() - decided
        self.metrics.stage_seconds.labels("cues").observe(cues_s)
        pending = Pending(state.info.stream, event, decided, cues_s, cues)
        state.pending += 1
        if not self.batcher.submit(Request(event.samples, pending)):
            self.metrics.drops.labels("engine_queue_full").inc()
            self._complete(Result(Request(event.samples, pending), None, None, 0.0, 0.0, 0, "engine queue full"))
        self.metrics.queue_depth.set(self.batcher.depth)

    def _on_result(self, result: Result) -> None:
        """Called in the batcher's thread: hand the result back to the event loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._complete, result)

    def _complete(self, result: Result) -> None:
        pending: Pending = result.request.context
        state = self.streams.get(pending.stream)
        if result.error:
            self.metrics.errors.labels("engine").inc()
        else:
            self.metrics.batch_size.observe(result.batch_size)
            self.metrics.stage_seconds.labels("queue").observe(result.queue_s)
            self.metrics.stage_seconds.labels("inference").observe(result.inference_s)
        began = time.perf_counter()
        baseline = self.baselines.baseline(pending.stream)
        description = self.describer.describe(pending.cues, result.embedding, result.logits, baseline)
        baseline.update(pending.cues)
        describe_s = time.perf_counter() - began
        self.metrics.stage_seconds.labels("describe").observe(describe_s)
        event = pending.event
        latency = {
            "cues_ms": pending.cues_s * 1000,
            "queue_ms": result.queue_s * 1000,
            "inference_ms": result.inference_s * 1000,
            "describe_ms": describe_s * 1000,
        }
        body = {
            "start": event.start,
            "end": event.end,
            "reason": event.reason,
            "speech": True,
            "cues": pending.cues.to_dict(),
            **description,
            "latency": latency,
        }
        latency["end_to_publish_ms"] = (time.perf_counter() - pending.decided) * 1000
        self._send("utterance", pending.stream, body)
        self.metrics.end_to_publish_seconds.observe(latency["end_to_publish_ms"] / 1000)
        self.metrics.utterances.labels(event.reason).inc()
        self.metrics.queue_depth.set(self.batcher.depth)
        if state is not None:
            state.pending -= 1
            self._maybe_close(state)

    def _maybe_close(self, state: StreamState) -> None:
        """Publish a stream's end once the source ended it and its last utterance is out."""
        if state.ended is None or state.pending:
            return
        stream = state.info.stream
        body = {"event": "end", "start": 0.0, "end": state.position, "reason": state.ended}
        self._send("stream", stream, body)
        self.publisher.forget(stream)
        del self.streams[stream]
        self.metrics.active_streams.set(len(self.streams))

    def _send(self, kind: str, stream: str, body: dict[str, Any]) -> dict[str, Any]:
        self.metrics.messages.labels(kind).inc()
        return self.publisher.publish(kind, stream, body)

    # --- lifecycle ---------------------------------------------------------------------------------------------
    async def run(self, sources: Sequence[Source], stop: asyncio.Event) -> bool:
        """Run until every source ends or ``stop`` is set; then drain. ``True`` if everything was published."""
        self._loop = asyncio.get_running_loop()
        for index, source in enumerate(sources):
            rejected = getattr(source, "rejected", None)
            if rejected is not None:
                self.metrics.watch_source(f"{type(source).__name__}-{index}", rejected)
        self.batcher.start()
        beat = asyncio.create_task(self._heartbeat(stop))
        results = await asyncio.gather(*(s.run(self, stop) for s in sources), return_exceptions=True)
        for source, outcome in zip(sources, results, strict=True):
            if isinstance(outcome, Exception):
                log.error("source %s failed: %s", type(source).__name__, outcome)
                self.metrics.errors.labels("source").inc()
        deadline = self.config.drain_deadline_s
        drained = await asyncio.to_thread(self.batcher.stop, deadline)
        waited = time.monotonic()
        while any(s.pending for s in self.streams.values()) and time.monotonic() - waited < deadline:
            await asyncio.sleep(0.01)
        for state in list(self.streams.values()):
            state.ended = state.ended or "shutdown"
            state.pending = 0
            self._maybe_close(state)
        stop.set()
        await beat
        return drained

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        previous = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.publish.heartbeat_s)
            uptime = time.monotonic() - self.started
            body = {
                "start": previous,
                "end": uptime,
                "active_streams": len(self.streams),
                "uptime_s": uptime,
                "queue_depth": self.batcher.depth,
                "dropped": {"engine_queue_full": self.batcher.refused},
            }
            self._send("heartbeat", "daemon", body)
            previous = uptime
