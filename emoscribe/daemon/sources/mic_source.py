"""``mic:`` source: a sound card through sounddevice (PortAudio), any native rate, resampled to 16 kHz."""

from __future__ import annotations

import asyncio
import queue

import numpy as np
import soxr

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo

BLOCK_SECONDS = 0.02
MAX_PENDING_BLOCKS = 500
"""Ten seconds of audio may wait for the event loop; beyond that blocks are dropped and counted."""


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise RuntimeError(
            f"the microphone source needs sounddevice and the PortAudio library ({error}); "
            "pip install 'emoscribe[mic]' and apt-get install libportaudio2"
        ) from error
    return sounddevice


def find_device(spec: str | int | None) -> tuple[int | None, dict]:
    """Index and info of the input device named (substring, case-insensitive) or numbered by ``spec``."""
    sd = _sounddevice()
    if spec in (None, "", "default"):
        info = sd.query_devices(kind="input")
        return None, dict(info)
    devices = sd.query_devices()
    if isinstance(spec, int) or str(spec).isdigit():
        index = int(spec)
        if not 0 <= index < len(devices) or devices[index]["max_input_channels"] < 1:
            raise ValueError(f"no input audio device with index {index}")
        return index, dict(devices[index])
    matches = [i for i, d in enumerate(devices) if spec.lower() in d["name"].lower() and d["max_input_channels"]]
    if not matches:
        names = ", ".join(d["name"] for d in devices if d["max_input_channels"]) or "none"
        raise ValueError(f"no input audio device matches {spec!r}; input devices: {names}")
    return matches[0], dict(devices[matches[0]])


class MicSource:
    """Captures mono audio at the device's native rate; the PortAudio callback only enqueues, never blocks."""

    def __init__(self, device: str | int | None = None, name: str = "mic") -> None:
        self.index, self.info = find_device(device)
        self.rate = int(self.info["default_samplerate"])
        self.name = name
        self.dropped_blocks = 0
        self.frames = 0

    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None:
        sd = _sounddevice()
        blocks: queue.Queue[np.ndarray] = queue.Queue(MAX_PENDING_BLOCKS)

        def callback(data: np.ndarray, frames: int, time, status) -> None:
            try:
                blocks.put_nowait(data[:, 0].copy())
            except queue.Full:
                self.dropped_blocks += 1

        resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
        position = 0
        sink.stream_started(StreamInfo(self.name, "mic", {"device": self.info["name"], "rate": self.rate}))
        with sd.InputStream(
            device=self.index,
            channels=1,
            samplerate=self.rate,
            dtype="float32",
            blocksize=int(self.rate * BLOCK_SECONDS),
            callback=callback,
        ):
            while not stop.is_set():
                try:
                    block = await asyncio.to_thread(blocks.get, True, 0.2)
                except queue.Empty:
                    continue
                out = resampler.resample_chunk(block)
                if out.size:
                    sink.frame(Frame(self.name, position / SAMPLE_RATE, out))
                    position += out.size
                    self.frames += 1
        sink.stream_ended(self.name, "shutdown")
