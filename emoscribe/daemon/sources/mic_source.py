"""``mic:`` source: a sound device through sounddevice (PortAudio), recorded at its own rate, resampled to 16 kHz.

PortAudio calls back on a thread of its own with every block; the callback only copies the block into a bounded
queue and wakes the event loop, so it never waits on the daemon. When the queue is full (the loop stalled) the
block is dropped, counted as ``queue_full`` and replaced by silence of the same length, so stream time keeps
the wall clock's pace; blocks PortAudio itself lost before the callback are counted as ``input_overflow``.

The stream ends with ``"shutdown"`` when the daemon stops, or with ``"device_lost"`` when PortAudio finishes the
stream on its own (device unplugged, sound server gone) or no audio comes for ``stall_s``; the source then
raises :class:`MicError` naming the device, which the daemon logs as one line while its other sources go on. A
device that cannot be opened (busy, refused) raises it before the stream starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections import Counter
from typing import Any

import numpy as np
import soxr

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo
from emoscribe.daemon.sources.audio_devices import InputDevice, find_device, sounddevice_module

BLOCK_SECONDS = 0.02
MAX_PENDING_BLOCKS = 500
"""Ten seconds of 20 ms blocks may wait for the event loop; beyond that blocks are dropped and counted."""
STALL_S = 2.0
TICK_S = 0.1
"""How often the source looks at ``stop`` and at the stall clock while no audio comes."""
DEVICE_UNAVAILABLE = -9985
"""PortAudio's ``paDeviceUnavailable``: the host API said busy (``EBUSY`` from ALSA)."""


class MicError(RuntimeError):
    """The device could not be opened, or it was lost mid-stream; the message names it and says why."""


Block = tuple[int, np.ndarray]
"""Samples dropped just before a block (to conceal with silence), and the block at the device rate."""


class _Capture:
    """The PortAudio side: both callbacks run on PortAudio's thread and only touch thread-safe state."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_blocks: int, rejected: Counter[str]) -> None:
        self.loop = loop
        self.blocks: queue.Queue[Block] = queue.Queue(max_blocks)
        self.rejected = rejected
        self.wake = asyncio.Event()
        self.finished = False
        self._dropped = 0  # samples dropped since the last block queued; PortAudio's thread only
        self._wake_pending = False

    def callback(self, data: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        if status.input_overflow:
            self.rejected["input_overflow"] += 1
        try:
            self.blocks.put_nowait((self._dropped, data[:, 0].copy()))
        except queue.Full:
            self.rejected["queue_full"] += 1
            self._dropped += frames
            return
        self._dropped = 0
        self._notify()

    def finished_callback(self) -> None:
        self.finished = True
        self._notify()

    def _notify(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is left to wake
            self.loop.call_soon_threadsafe(self.wake.set)

    def take(self) -> list[Block]:
        """Everything queued (on the event loop); clears the wake-up first, so a block queued meanwhile wakes
        the loop again rather than waiting unseen."""
        self.wake.clear()
        self._wake_pending = False
        taken: list[Block] = []
        with contextlib.suppress(queue.Empty):
            while True:
                taken.append(self.blocks.get_nowait())
        return taken


class MicSource:
    """One input device as stream ``name``. The device is looked up at construction, so a missing one is a
    start-up error (a ``ValueError`` listing the devices there are)."""

    kind = "mic"

    def __init__(
        self,
        device: str | None = None,
        name: str = "mic",
        stall_s: float = STALL_S,
        max_pending_blocks: int = MAX_PENDING_BLOCKS,
    ) -> None:
        self.device: InputDevice = find_device(device)
        self.name = name
        self.stall_s = stall_s
        self.max_pending_blocks = max_pending_blocks
        self.rejected: Counter[str] = Counter({"queue_full": 0, "input_overflow": 0})
        self.frames = 0
        self._position = 0

    @property
    def tallies(self) -> dict[str, Counter[str]]:
        """The source's counters by family, for the metrics (``emoscribe_source_rejected_total``)."""
        return {"rejected": self.rejected}

    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None:
        capture = _Capture(asyncio.get_running_loop(), self.max_pending_blocks, self.rejected)
        stream = self._open(capture)
        rate = self.device.rate
        resampler = (
            None
            if rate == SAMPLE_RATE
            else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ", vr=True)
        )
        details = {"device": self.device.name, "index": self.device.index, "host_api": self.device.host_api}
        sink.stream_started(StreamInfo(self.name, self.kind, {**details, "rate": rate}))
        began = time.monotonic()
        try:
            lost = await self._pump(capture, resampler, sink, stop)
        finally:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        if resampler is not None:
            self._emit(sink, resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        sink.stream_ended(self.name, "device_lost" if lost else "shutdown")
        if lost:
            seconds = time.monotonic() - began
            raise MicError(f"mic: input device {self.device.describe()} lost after {seconds:.1f} s: {lost}")

    def _open(self, capture: _Capture) -> Any:
        sd = sounddevice_module()
        rate = self.device.rate
        stream = None
        try:
            stream = sd.InputStream(
                device=self.device.index,
                channels=1,
                samplerate=rate,
                dtype="float32",
                blocksize=round(rate * BLOCK_SECONDS),
                callback=capture.callback,
                finished_callback=capture.finished_callback,
            )
            stream.start()
        except sd.PortAudioError as error:
            if stream is not None:
                stream.close(ignore_errors=True)
            raise MicError(f"mic: cannot open input device {self.device.describe()}: {_why(error)}") from error
        return stream

    async def _pump(
        self, capture: _Capture, resampler: soxr.ResampleStream | None, sink: FrameSink, stop: asyncio.Event
    ) -> str | None:
        """Deliver blocks until ``stop`` (``None``) or the device is lost (the reason)."""
        heard = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await capture.wake.wait()
            finished = capture.finished  # read before taking: PortAudio calls back no more once it is set
            blocks = capture.take()
            for dropped, block in blocks:
                if dropped:
                    block = np.concatenate([np.zeros(dropped, dtype=np.float32), block])
                self._emit(sink, block if resampler is None else resampler.resample_chunk(block))
            now = time.monotonic()
            if blocks:
                heard = now
            if finished and not stop.is_set():
                return "the stream stopped (device removed or its sound server gone)"
            if now - heard > self.stall_s:
                return f"no audio for {self.stall_s:g} s"
        return None

    def _emit(self, sink: FrameSink, samples: np.ndarray) -> None:
        if samples.size:
            sink.frame(Frame(self.name, self._position / SAMPLE_RATE, samples))
            self._position += samples.size
            self.frames += 1


def _why(error: Exception) -> str:
    """PortAudio's message, the host API's own words where it gave some, and what ``paDeviceUnavailable`` means."""
    message, code, host = (*error.args, None, None)[:3]  # host: (host API type, its error code, its text)
    why = str(message)
    if host and host[2]:
        why += f" ({host[2]})"
    if code == DEVICE_UNAVAILABLE:
        why += " (busy: another program may hold it)"
    return why
