"""A jitter buffer for one RTP stream (one SSRC): packets in any order in, gap-free PCM in stream time out.

Packets are ordered by extended sequence number (the 16-bit number unwrapped against the highest seen), and
placed in time by their RTP timestamp, which is what the sender's clock says; the output never jumps, so stream
time (samples emitted at the payload's native rate) can stand in for the call's clock downstream.

Policy, all deterministic (no wall clock: the source decides when an idle stream is drained):

- The next packet in sequence is released at once; so in-order audio waits for nothing. A missing packet is
  waited for until ``depth_packets`` packets are queued behind it or the audio queued behind it spans
  ``depth_ms`` (the jitter tolerated); then it counts as lost. The first packet of a stream also waits for the
  window, so reordering at the very start is repaired too.
- A packet behind the release point is dropped: ``"late"`` when it was concealed before, ``"duplicate"`` when it
  was already played (or is already queued).
- A sequence jump of ``MAX_DROPOUT`` or more ahead, or beyond ``MAX_MISORDER`` behind, is dropped as
  ``"jump"``; if the next packet continues from it, the sender restarted its sequence and the buffer resyncs
  (RFC 3550 appendix A.1).
- Lost packets are concealed by repeating the last packet with a linear fade to silence over
  ``conceal_packets`` packets, then silence: a short loss stays inaudible to the cues, a long one turns into the
  pause it is, and no invented speech follows.
- A timestamp gap with no packets missing is silence suppression (DTX, usually with the marker bit on the next
  packet, which is not needed to see it): filled with silence (``"silence"``). A gap beyond ``max_gap_ms`` is
  filled with only that much silence and the timeline resyncs (``"resync"``); so is a timestamp that goes back
  by a packet or more. A smaller step back overlaps audio already played and only its new part is kept.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_DROPOUT = 3000
"""Sequence steps ahead still taken as loss rather than a restart (RFC 3550 appendix A.1)."""
MAX_MISORDER = 100
"""Sequence steps behind the highest still taken as reordering rather than a restart (RFC 3550 appendix A.1)."""
_LOST_HISTORY = 64
_EMPTY = np.zeros(0, dtype=np.float32)
_EMPTY.flags.writeable = False


def joined(pieces: list[np.ndarray]) -> np.ndarray:
    """The pieces end to end; a single piece (the usual case, one packet) is returned as it is, not copied."""
    if len(pieces) > 1:
        return np.concatenate(pieces)
    return pieces[0] if pieces else _EMPTY


def _signed(delta: int, modulus: int) -> int:
    """A modular difference as the nearest signed integer."""
    half = modulus // 2
    return (delta + half) % modulus - half


@dataclass(frozen=True, slots=True)
class JitterConfig:
    """Window and concealment settings; both window limits apply, whichever is reached first."""

    depth_packets: int = 8
    depth_ms: float = 60.0
    conceal_packets: int = 3
    max_gap_ms: float = 1000.0

    def __post_init__(self) -> None:
        if self.depth_packets < 1 or self.depth_ms <= 0 or self.conceal_packets < 1 or self.max_gap_ms <= 0:
            raise ValueError(f"jitter settings must be positive: {self}")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Released audio: mono float32 at the native rate, starting at stream time ``start`` (samples)."""

    start: int
    samples: np.ndarray


class JitterBuffer:
    """Reorders, de-duplicates and gap-fills one stream. ``counts`` (shared by the caller if it likes) gathers
    ``duplicate``, ``late``, ``jump``, ``lost`` (packets), ``silence`` and ``resync`` events."""

    def __init__(self, rate: int, config: JitterConfig | None = None, counts: Counter[str] | None = None) -> None:
        self.config = config or JitterConfig()
        self.counts: Counter[str] = Counter() if counts is None else counts
        self.position = 0
        self._depth_samples = self.config.depth_ms * rate / 1000
        self._max_gap = max(1, round(self.config.max_gap_ms * rate / 1000))
        self._pending: dict[int, tuple[int, np.ndarray]] = {}
        self._highest: int | None = None
        self._next: int | None = None
        self._first: int | None = None
        self._next_ts: int | None = None
        self._bad_seq: int | None = None
        self._last = np.zeros(0, dtype=np.float32)
        self._lost: deque[tuple[int, int]] = deque(maxlen=_LOST_HISTORY)
        self._out: list[np.ndarray] = []

    @property
    def buffered(self) -> int:
        """Packets waiting for a missing one (or for the window at the start)."""
        return len(self._pending)

    def push(self, sequence: int, timestamp: int, samples: np.ndarray) -> Chunk:
        """Take one packet's decoded samples; returns the audio that became releasable (often empty)."""
        ext = self._extend(sequence)
        if ext is not None and ext == self._next and not self._pending:  # in order, nothing missing: at once
            self._emit(0, timestamp % TS_MOD, np.asarray(samples, dtype=np.float32))
            self._next = ext + 1
        elif ext is not None:
            if ext in self._pending:
                self.counts["duplicate"] += 1
            elif self._next is not None and ext < self._next:
                self.counts["late" if self._missed(ext) else "duplicate"] += 1
            else:
                self._pending[ext] = (timestamp % TS_MOD, np.asarray(samples, dtype=np.float32))
                self._release(final=False)
        return self._take()

    def drain(self) -> Chunk:
        """Release everything queued, concealing the holes: the stream went quiet or ends."""
        self._release(final=True)
        return self._take()

    def _extend(self, sequence: int) -> int | None:
        if self._highest is None:
            self._highest = sequence
            return sequence
        delta = _signed(sequence - self._highest, SEQ_MOD)
        if -MAX_MISORDER <= delta < MAX_DROPOUT:
            self._bad_seq = None
            ext = self._highest + delta
            self._highest = max(self._highest, ext)
            return ext
        if sequence != self._bad_seq:
            self._bad_seq = (sequence + 1) % SEQ_MOD
            self.counts["jump"] += 1
            return None
        self._release(final=True)
        self.counts["resync"] += 1
        self._highest, self._next, self._first, self._bad_seq = sequence, None, None, None
        self._lost.clear()
        return sequence

    def _missed(self, ext: int) -> bool:
        """Whether a packet behind the release point was never played (it came after its time)."""
        return self._first is None or ext < self._first or any(a <= ext < b for a, b in self._lost)

    def _window_full(self) -> bool:
        if len(self._pending) > self.config.depth_packets:
            return True
        newest_ts, newest = self._pending[max(self._pending)]
        oldest_ts, _ = self._pending[min(self._pending)]
        return _signed(newest_ts + newest.size - oldest_ts, TS_MOD) >= self._depth_samples

    def _release(self, final: bool) -> None:
        while self._pending:
            if self._next is None:
                if not (final or self._window_full()):
                    return
                self._next = self._first = min(self._pending)
            if self._next in self._pending:
                ext = self._next
            elif final or self._window_full():
                ext = min(self._pending)
                self._lost.append((self._next, ext))
            else:
                return
            timestamp, samples = self._pending.pop(ext)
            self._emit(ext - self._next, timestamp, samples)
            self._next = ext + 1

    def _emit(self, missing: int, timestamp: int, samples: np.ndarray) -> None:
        if missing:
            self.counts["lost"] += missing
        if self._next_ts is None:
            self._next_ts = timestamp
        gap = _signed(timestamp - self._next_ts, TS_MOD)
        end = (timestamp + samples.size) % TS_MOD
        if gap > 0:
            fill = min(gap, self._max_gap)
            concealed = min(fill, missing * self._last.size)
            self._out.append(self._conceal(concealed))
            self._out.append(np.zeros(fill - concealed, dtype=np.float32))
            if gap > self._max_gap:
                self.counts["resync"] += 1
            elif not missing:
                self.counts["silence"] += 1
        elif gap < 0:
            if -gap < samples.size:
                samples = samples[-gap:]
            else:
                self.counts["resync"] += 1
        self._out.append(samples)
        self._next_ts = end
        if samples.size:
            self._last = samples

    def _conceal(self, count: int) -> np.ndarray:
        if count == 0 or self._last.size == 0:
            return np.zeros(count, dtype=np.float32)
        repeated = np.tile(self._last, -(-count // self._last.size))[:count]
        fade = 1.0 - np.arange(count, dtype=np.float32) / (self.config.conceal_packets * self._last.size)
        return repeated * np.clip(fade, 0.0, None)

    def _take(self) -> Chunk:
        """What was released since the last call; a packet released alone (the usual case) is not copied."""
        samples = joined(self._out)
        self._out.clear()
        chunk = Chunk(self.position, samples)
        self.position += samples.size
        return chunk
