"""Cutting one stream's frames into utterances: the classic pre-roll / hangover state machine around a VAD.

Idle, the segmenter keeps the last ``pre_roll_ms`` plus the start window of audio. An utterance opens when the
ring of the latest VAD decisions (``start_ms`` long) holds at least ``start_ratio`` voiced frames; it starts
``pre_roll_ms`` before the first voiced frame of the ring, so soft onsets the VAD missed are kept. It closes
once ``hangover_ms`` of unvoiced frames have followed the last voiced one; the utterance then ends ``tail_ms``
after that frame (the rest of the hangover is silence nobody needs) and the decision time, ``detected_at``,
is when the hangover ran out: latency is measured from there.

An utterance reaching ``max_utterance_s`` is split there and speech goes on in a new one that starts at the
very next sample: the pieces are contiguous, nothing lost and nothing duplicated, and the buffer never holds
more than the maximum. Closed utterances shorter than ``min_speech_ms`` of speech (first to last voiced
frame of the run) or refused by the speech gate are dropped and counted in :attr:`Segmenter.dropped`.

Everything counts samples, never seconds: how the stream is cut into frames cannot change the result. The
VAD judges every frame a push completes in one call, and a push that completes none costs a copy: packets
(20 ms) are shorter than VAD frames (30 ms), so that is every third push.

While an utterance is open, its audio so far is there to take with :meth:`Segmenter.take_speech` (for rolling
cues), up to the last voiced frame plus the tail: silence after it is held back until speech resumes, so what
is taken concatenates to exactly :attr:`UtteranceEnded.samples`.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from emoscribe.daemon import speech_gate
from emoscribe.daemon.frames import SAMPLE_RATE, Frame
from emoscribe.daemon.vad import VAD_KINDS, Vad, make_vad
from emoscribe.mappings import refuse_unknown_keys

EndReason = Literal["silence", "max_length", "stream_end"]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """An utterance opened; ``start`` is the stream time of its first sample, pre-roll included."""

    stream: str
    start: float


@dataclass(frozen=True, slots=True, eq=False)
class UtteranceEnded:
    """A finished utterance: ``samples`` span ``start`` to ``end``; ``detected_at`` is the decision time."""

    stream: str
    start: float
    end: float
    samples: np.ndarray
    reason: EndReason
    detected_at: float


@dataclass(frozen=True, slots=True)
class UtteranceDropped:
    """An opened utterance that will not be published (``too_short`` or ``non_speech``, the gate's ``detail``)."""

    stream: str
    start: float
    end: float
    reason: str
    detected_at: float
    detail: str | None = None


SegmentEvent = SpeechStarted | UtteranceEnded | UtteranceDropped


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    """Settings of the segmenter; invalid values raise ``ValueError`` naming the key."""

    vad: str = "webrtc"
    vad_options: Mapping[str, Any] = field(default_factory=dict)
    pre_roll_ms: float = 300.0
    start_ms: float = 150.0
    start_ratio: float = 0.6
    hangover_ms: float = 500.0
    tail_ms: float = 100.0
    min_speech_ms: float = 250.0
    max_utterance_s: float = 15.0
    speech_gate: bool = True

    def __post_init__(self) -> None:
        rules = (
            ("vad", self.vad in VAD_KINDS, f"one of {', '.join(VAD_KINDS)}"),
            ("pre_roll_ms", self.pre_roll_ms >= 0, "at least 0"),
            ("start_ms", self.start_ms > 0, "positive"),
            ("start_ratio", 0 < self.start_ratio <= 1, "in (0, 1]"),
            ("hangover_ms", self.hangover_ms > 0, "positive"),
            ("tail_ms", 0 <= self.tail_ms <= self.hangover_ms, "between 0 and hangover_ms"),
            ("min_speech_ms", self.min_speech_ms >= 0, "at least 0"),
            ("max_utterance_s", self.max_utterance_s * 1000 > self.pre_roll_ms + self.start_ms,
             "longer than pre_roll_ms + start_ms"),
        )  # fmt: skip
        for key, ok, rule in rules:
            if not ok:
                raise ValueError(f"segmenter setting {key}={getattr(self, key)!r}: must be {rule}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SegmenterConfig:
        """From a config file's table; a misspelt key is refused, not ignored."""
        refuse_unknown_keys(cls, data, "segmenter setting(s)")
        return replace(cls(), **data)

    def make_vad(self) -> Vad:
        return make_vad(self.vad, **self.vad_options)


def _samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


class _Audio:
    """A bounded stretch of the stream, addressed by stream sample index.

    It starts with room for the idle history alone and grows (doubling, up to ``limit``) only while an
    utterance needs it, returning to that room once the utterance is cut away. A stream that never speaks
    thus holds a few tens of kB, not room for a maximum-length utterance: preallocated per stream, that
    room (1 MB at 15 s) was written once by every leg and, recycled by the C allocator for the next legs,
    stayed resident after the calls had ended.
    """

    def __init__(self, initial: int, limit: int) -> None:
        self._initial = initial
        self._limit = limit
        self._data = np.empty(initial, dtype=np.float32)
        self.start = 0
        self.size = 0

    @property
    def end(self) -> int:
        return self.start + self.size

    def append(self, samples: np.ndarray) -> None:
        needed = self.size + samples.size
        if needed > self._data.size:
            if needed > self._limit:
                raise RuntimeError("segmenter buffer overflow: the utterance length bound was not enforced")
            self._resize(min(max(needed, 2 * self._data.size), self._limit))
        self._data[self.size : needed] = samples
        self.size = needed

    def keep_from(self, index: int) -> None:
        cut = min(max(index - self.start, 0), self.size)
        if cut:
            self._data[: self.size - cut] = self._data[cut : self.size]
            self.start += cut
            self.size -= cut
        if self.size <= self._initial < self._data.size:
            self._resize(self._initial)

    def slice(self, first: int, last: int) -> np.ndarray:
        return self._data[first - self.start : last - self.start].copy()

    def _resize(self, capacity: int) -> None:
        if capacity != self._data.size:
            data = np.empty(capacity, dtype=np.float32)
            data[: self.size] = self._data[: self.size]
            self._data = data


class Segmenter:
    """The segmenter of one stream: feed it frames of any length with :meth:`push`, end with :meth:`flush`."""

    def __init__(self, stream: str, config: SegmenterConfig | None = None, vad: Vad | None = None) -> None:
        self.stream = stream
        self.config = config or SegmenterConfig()
        self.vad = vad if vad is not None else self.config.make_vad()
        self.dropped: Counter[str] = Counter()
        frame = self.vad.frame_samples
        self._ring_frames = max(1, round(_samples(self.config.start_ms) / frame))
        self._needed = math.ceil(self.config.start_ratio * self._ring_frames - 1e-9)
        self._pre_roll = _samples(self.config.pre_roll_ms)
        self._history = self._ring_frames * frame + self._pre_roll
        self._hangover = _samples(self.config.hangover_ms)
        self._tail = _samples(self.config.tail_ms)
        self._min_speech = _samples(self.config.min_speech_ms)
        self._max = _samples(self.config.max_utterance_s * 1000)
        if self._max <= self._history:
            raise ValueError(
                f"segmenter setting max_utterance_s={self.config.max_utterance_s!r}: must exceed the pre-roll "
                f"plus the start window of {self._ring_frames} VAD frames"
            )
        self._audio = _Audio(self._history + frame, self._max + self._history + frame)
        self._reset_stream()

    def _reset_stream(self) -> None:
        self.vad.reset()
        self._origin: float | None = None
        self._rest = np.zeros(self.vad.frame_samples, dtype=np.float32)
        self._resting = 0
        """The first ``_resting`` samples of ``_rest`` wait for the rest of their VAD frame."""
        self._pos = 0
        self._audio.start = self._audio.size = 0
        self._ring: deque[tuple[int, bool]] = deque(maxlen=self._ring_frames)
        self._ring_voiced = 0
        self._open = False
        self._start = self._speech_from = self._voiced_to = self._sent = 0

    def _time(self, index: int) -> float:
        return (self._origin or 0.0) + index / SAMPLE_RATE

    @property
    def speech_samples(self) -> int:
        """Samples of the open utterance that :meth:`take_speech` has given or can give (0 when none is open)."""
        return self._releasable() - self._start if self._open else 0

    def take_speech(self) -> np.ndarray:
        """The open utterance's audio since the last call (pre-roll first); empty when none is open."""
        if not self._open:
            return np.zeros(0, dtype=np.float32)
        upto = self._releasable()
        taken = self._audio.slice(self._sent, upto)
        self._sent = upto
        return taken

    def _releasable(self) -> int:
        return min(self._pos, self._voiced_to + self._tail)

    def push(self, frame: Frame) -> list[SegmentEvent]:
        """Consume a frame of any length; returns what happened, in order."""
        if frame.stream != self.stream:
            raise ValueError(f"frame of stream {frame.stream!r} pushed to the segmenter of {self.stream!r}")
        samples = frame.samples
        if not isinstance(samples, np.ndarray) or samples.dtype != np.float32:
            samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples as a 1-D array, got shape {samples.shape}")
        if self._origin is None:
            self._origin = frame.start
        size, resting = self.vad.frame_samples, self._resting
        whole = (resting + samples.size) // size
        if whole == 0:
            self._rest[resting : resting + samples.size] = samples
            self._resting += samples.size
            return []
        used = whole * size - resting
        judged = samples[:used] if not resting else np.concatenate([self._rest[:resting], samples[:used]])
        frames = judged.reshape(whole, size)
        events: list[SegmentEvent] = []
        for row, voiced in enumerate(self.vad.classify(frames)):
            self._step(frames[row], voiced, events)
        self._resting = samples.size - used
        self._rest[: self._resting] = samples[used:]
        return events

    def flush(self, reason: EndReason = "stream_end") -> list[SegmentEvent]:
        """End of stream: close an open utterance (the unjudged remainder joins it) and forget the stream."""
        events: list[SegmentEvent] = []
        if self._open:
            self._audio.append(self._rest[: self._resting])
            self._pos += self._resting
            self._close(events, reason, self._releasable())
        self._reset_stream()
        return events

    def _step(self, frame: np.ndarray, voiced: bool, events: list[SegmentEvent]) -> None:
        first = self._pos
        self._audio.append(frame)
        self._pos += frame.size
        if len(self._ring) == self._ring_frames and self._ring[0][1]:
            self._ring_voiced -= 1
        self._ring.append((first, voiced))
        self._ring_voiced += voiced
        if not self._open:
            self._audio.keep_from(self._pos - self._history)
            if self._ring_voiced >= self._needed:
                self._open_utterance(events)
            return
        if voiced:
            self._voiced_to = self._pos
        if self._pos - self._voiced_to >= self._hangover:
            self._close(events, "silence", self._voiced_to + self._tail)
        elif self._pos - self._start >= self._max:
            self._split(events)

    def _open_utterance(self, events: list[SegmentEvent]) -> None:
        voiced = [index for index, v in self._ring if v]
        self._speech_from = voiced[0]
        self._voiced_to = voiced[-1] + self.vad.frame_samples
        self._start = max(self._audio.start, self._speech_from - self._pre_roll)
        self._begin(events, self._start)

    def _begin(self, events: list[SegmentEvent], start: int) -> None:
        self._open = True
        self._start = self._sent = start
        self._audio.keep_from(start)
        events.append(SpeechStarted(self.stream, self._time(start)))

    def _split(self, events: list[SegmentEvent]) -> None:
        """At the maximum length: close here and, while speech may still go on, continue seamlessly."""
        cut = self._start + self._max
        speech_goes_on = self._voiced_to + self._tail > cut
        self._close(events, "max_length", min(cut, self._voiced_to + self._tail))
        if speech_goes_on:
            self._begin(events, cut)

    def _close(self, events: list[SegmentEvent], reason: EndReason, end: int) -> None:
        start, detected = self._time(self._start), self._time(self._pos)
        if self._voiced_to - self._speech_from < self._min_speech:
            self._drop(events, end, "too_short", None)
        else:
            samples = self._audio.slice(self._start, end)
            verdict = speech_gate.check(samples) if self.config.speech_gate else None
            if verdict is not None and not verdict.speech:
                self._drop(events, end, "non_speech", verdict.reason)
            else:
                events.append(UtteranceEnded(self.stream, start, self._time(end), samples, reason, detected))
        self._open = False
        self._ring.clear()
        self._ring_voiced = 0
        self._audio.keep_from(max(end, self._pos - self._history))

    def _drop(self, events: list[SegmentEvent], end: int, reason: str, detail: str | None) -> None:
        self.dropped[reason] += 1
        events.append(
            UtteranceDropped(
                self.stream, self._time(self._start), self._time(end), reason, self._time(self._pos), detail
            )
        )
