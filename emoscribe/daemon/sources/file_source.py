"""``file:`` source: a WAV/FLAC file (or several, one after another) played as one stream, in real time or fast."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emoscribe.audio import AudioFileError, load_audio
from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo

log = logging.getLogger(__name__)

FRAME_SAMPLES = 320
"""20 ms frames, as a sound card or an RTP stream would deliver them."""


class FileSource:
    """Plays ``paths`` back to back as stream ``stream``, with ``gap_s`` of silence between files.

    ``realtime`` paces frames by the wall clock, as a live source would; otherwise frames go as fast as the
    daemon takes them (yielding to the event loop every frame so nothing else starves).
    """

    def __init__(self, paths: Sequence[Path], stream: str, realtime: bool = True, gap_s: float = 1.0) -> None:
        if not paths:
            raise ValueError("a file source needs at least one file")
        self.paths = list(paths)
        self.stream = stream
        self.realtime = realtime
        self.gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
        self.frames = 0

    def _audio(self) -> np.ndarray:
        """Every file decoded, checked and joined; a file without usable audio is an ``AudioFileError``."""
        pieces: list[np.ndarray] = []
        for path in self.paths:
            samples = load_audio(path)[0].astype(np.float32)
            bad = samples.size - int(np.isfinite(samples).sum())
            if not samples.size:
                raise AudioFileError(f"{path}: holds no audio samples")
            if bad == samples.size:
                raise AudioFileError(f"{path}: every one of its {bad} samples is NaN or infinite")
            if bad:
                log.warning(
                    "%s: %d of %d samples are NaN or infinite; they are played as silence", path, bad, samples.size
                )
            pieces += [samples, self.gap]
        return np.concatenate(pieces)

    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None:
        audio = self._audio()
        sink.stream_started(StreamInfo(self.stream, "file", {"files": [str(p) for p in self.paths]}))
        began = time.monotonic()
        reason = "eof"
        for offset in range(0, audio.size, FRAME_SAMPLES):
            if stop.is_set():
                reason = "shutdown"
                break
            if self.realtime:
                await asyncio.sleep(max(0.0, began + offset / SAMPLE_RATE - time.monotonic()))
            else:
                await asyncio.sleep(0)
            sink.frame(Frame(self.stream, offset / SAMPLE_RATE, audio[offset : offset + FRAME_SAMPLES]))
            self.frames += 1
        sink.stream_ended(self.stream, reason)
