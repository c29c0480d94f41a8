"""``stdin:`` source: raw PCM piped in (e.g. from ``arecord`` or ``ffmpeg -f s16le``), any rate, mono."""

from __future__ import annotations

import asyncio
import sys
from typing import BinaryIO

import numpy as np
import soxr

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo

FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
READ_SECONDS = 0.02


class StdinSource:
    """Reads ``encoding`` PCM at ``rate`` Hz from ``stream`` (default: standard input) as one daemon stream."""

    def __init__(
        self, rate: int = SAMPLE_RATE, encoding: str = "s16le", name: str = "stdin", handle: BinaryIO | None = None
    ) -> None:
        if encoding not in FORMATS:
            raise ValueError(f"stdin encoding must be one of {', '.join(FORMATS)}, got {encoding!r}")
        if rate < 8000:
            raise ValueError(f"stdin rate {rate} Hz is below 8 kHz; speech needs at least telephone bandwidth")
        self.rate = rate
        self.dtype = FORMATS[encoding]
        self.name = name
        self.handle = handle or sys.stdin.buffer
        self.frames = 0

    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None:
        sink.stream_started(StreamInfo(self.name, "stdin", {"rate": self.rate, "encoding": self.dtype.str}))
        resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
        block = int(self.rate * READ_SECONDS) * self.dtype.itemsize
        carry = b""
        position = 0
        reason = "eof"
        while True:
            if stop.is_set():
                reason = "shutdown"
                break
            data = await asyncio.to_thread(self.handle.read, block)
            last = not data
            data = carry + (data or b"")
            usable = len(data) - len(data) % self.dtype.itemsize
            carry = data[usable:]
            samples = np.frombuffer(data[:usable], dtype=self.dtype).astype(np.float32)
            if self.dtype.kind == "i":
                samples /= 32768.0
            out = resampler.resample_chunk(samples, last=last)
            if out.size:
                sink.frame(Frame(self.name, position / SAMPLE_RATE, out))
                position += out.size
                self.frames += 1
            if last:
                break
        sink.stream_ended(self.name, reason)
