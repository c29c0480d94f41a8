"""What sources hand to the rest of the daemon: PCM frames of a stream, and stream start/end notices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class Frame:
    """Mono float32 PCM at 16 kHz, scaled to ±1, of one stream, starting at stream time ``start`` (seconds).

    Stream time counts samples delivered on the stream (concealed gaps included), so it never jumps with the
    wall clock or with network jitter.
    """

    stream: str
    start: float
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.start + self.samples.size / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What is known about a stream when it starts (e.g. RTP SSRC, payload type, peer address)."""

    stream: str
    kind: str
    details: dict[str, Any] = field(default_factory=dict)


class FrameSink(Protocol):
    """Receiver of everything a source produces; the service implements it."""

    def stream_started(self, info: StreamInfo) -> None: ...

    def frame(self, frame: Frame) -> None: ...

    def stream_ended(self, stream: str, reason: str) -> None: ...
