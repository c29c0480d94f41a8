"""The ``mic:`` source's own logic against a scripted PortAudio (sounddevice's API, no sound device): device
lookup, the bounded queue and its counted drops, resampling, and how the stream ends. The same source against a
real sound server is in ``test_mic_pulse.py``."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pytest

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, StreamInfo
from emoscribe.daemon.sources.audio_devices import device_table, find_device, input_devices
from emoscribe.daemon.sources.mic_source import DEVICE_UNAVAILABLE, MicError, MicSource

DEVICES = [
    {
        "name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)",
        "hostapi": 0,
        "max_input_channels": 2,
        "default_samplerate": 48000.0,
    },
    {"name": "HDMI 0 (hw:0,3)", "hostapi": 0, "max_input_channels": 0, "default_samplerate": 44100.0},
    {"name": "USB Mic (hw:1,0)", "hostapi": 0, "max_input_channels": 1, "default_samplerate": 48000.0},
    {"name": "pulse", "hostapi": 0, "max_input_channels": 32, "default_samplerate": 44100.0},
    {"name": "default", "hostapi": 0, "max_input_channels": 32, "default_samplerate": 44100.0},
]


class PortAudioError(Exception):
    """As sounddevice raises it: ``(message, error code, host error info)``."""


@dataclass
class Status:
    input_overflow: bool = False


@dataclass
class FakePortAudio:
    """What sounddevice offers the source, with the stream's behaviour scripted by the test: ``play`` runs when
    the stream starts (on a thread of its own where the test wants PortAudio's callback thread)."""

    default: int | None = 4
    open_error: PortAudioError | None = None
    play: Callable[[FakeStream], None] | None = None
    streams: list[FakeStream] = field(default_factory=list)

    def module(self) -> types.ModuleType:
        module = types.ModuleType("sounddevice")
        module.PortAudioError = PortAudioError
        module.query_hostapis = lambda: [{"name": "ALSA"}]
        module.query_devices = self.query_devices
        module.InputStream = self.input_stream
        return module

    def query_devices(self, kind: str | None = None):
        if kind is None:
            return DEVICES
        if self.default is None:
            raise PortAudioError("Error querying device -1")
        return {**DEVICES[self.default], "index": self.default}

    def input_stream(self, **settings) -> FakeStream:
        if self.open_error is not None:
            raise self.open_error
        stream = FakeStream(self, settings)
        self.streams.append(stream)
        return stream


class FakeStream:
    def __init__(self, portaudio: FakePortAudio, settings: dict) -> None:
        self.portaudio = portaudio
        self.settings = settings
        self.closed = False

    def start(self) -> None:
        if self.portaudio.play is not None:
            self.portaudio.play(self)

    def block(self, samples: np.ndarray, overflow: bool = False) -> None:
        self.settings["callback"](samples[:, None].astype(np.float32), samples.size, None, Status(overflow))

    def abort(self, ignore_errors: bool = False) -> None:
        pass

    def close(self, ignore_errors: bool = False) -> None:
        self.closed = True


@pytest.fixture
def portaudio(monkeypatch: pytest.MonkeyPatch) -> FakePortAudio:
    fake = FakePortAudio()
    monkeypatch.setitem(sys.modules, "sounddevice", fake.module())
    return fake


class Sink:
    def __init__(self) -> None:
        self.started: list[StreamInfo] = []
        self.frames: list[Frame] = []
        self.ended: list[tuple[str, str]] = []

    def stream_started(self, info: StreamInfo) -> None:
        self.started.append(info)

    def frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def stream_ended(self, stream: str, reason: str) -> None:
        self.ended.append((stream, reason))

    def audio(self) -> np.ndarray:
        return np.concatenate([frame.samples for frame in self.frames])

    def audio_or_empty(self) -> np.ndarray:
        return self.audio() if self.frames else np.zeros(0, dtype=np.float32)


def in_thread(play: Callable[[FakeStream], None]) -> Callable[[FakeStream], None]:
    return lambda stream: threading.Thread(target=play, args=(stream,), daemon=True).start()


async def run_until(source: MicSource, sink: Sink, done: Callable[[], bool], limit: float = 5.0) -> None:
    """Run ``source`` until ``done()`` holds, then stop it; errors from the source propagate."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    for _ in range(int(limit / 0.01)):
        if done() or task.done():
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task


def test_devices_are_found_by_index_exact_name_or_part_of_it(portaudio: FakePortAudio) -> None:
    assert [d.index for d in input_devices()] == [0, 2, 3, 4], "output-only devices are not listed"
    assert find_device(None).name == "default" and find_device("").default
    assert find_device("2").name == "USB Mic (hw:1,0)"
    assert find_device("usb mic").index == 2
    assert find_device("pulse").index == 3, "an exact name wins over a device that merely contains it"
    assert find_device("default").index == 4
    table = device_table(input_devices())
    assert len(table) == 5 and table[-1].startswith("*") and "48000 Hz" in table[1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("webcam", "no input audio device matches 'webcam'"),
        ("1", "no input audio device with index 1"),  # HDMI: output only
        ("9", "no input audio device with index 9"),
    ],
)
def test_a_missing_device_names_the_devices_there_are(portaudio: FakePortAudio, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="mic: ") as error:
        find_device(spec)
    assert message in str(error.value) and "2: 'USB Mic (hw:1,0)' (ALSA, 48000 Hz)" in str(error.value)


def test_no_default_input_is_a_clear_error(portaudio: FakePortAudio) -> None:
    portaudio.default = None
    with pytest.raises(ValueError, match="no default input audio device"):
        MicSource()


def test_without_sounddevice_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes the import fail
    with pytest.raises(RuntimeError, match=r"pip install 'emoscribe\[mic\]'.*libportaudio2"):
        input_devices()


def test_device_audio_is_resampled_to_16_khz_at_its_own_pace(portaudio: FakePortAudio) -> None:
    rate, seconds = 48_000, 1.0
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * np.arange(int(rate * seconds)) / rate)
    portaudio.play = in_thread(lambda stream: [stream.block(block) for block in np.split(tone, 50)])
    sink = Sink()
    source = MicSource("USB")
    asyncio.run(run_until(source, sink, lambda: sum(f.samples.size for f in sink.frames) >= 15_800))
    stream = portaudio.streams[0]
    assert stream.settings["samplerate"] == rate and stream.settings["blocksize"] == 960 and stream.closed
    assert sink.started[0].details == {"device": "USB Mic (hw:1,0)", "index": 2, "host_api": "ALSA", "rate": rate}
    audio = sink.audio()
    assert abs(audio.size - SAMPLE_RATE * seconds) <= 64, "stream time is the device's time"
    assert all(abs(b.start - a.end) < 1e-9 for a, b in pairwise(sink.frames)), "frames are contiguous"
    spectrum = np.abs(np.fft.rfft(audio[1000:15000] * np.hanning(14000)))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 14000 - 440.0) < 2.0
    assert abs(np.sqrt(np.mean(audio[1000:15000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01
    assert sink.ended == [("mic", "shutdown")] and source.rejected == {"queue_full": 0, "input_overflow": 0}


def test_a_full_queue_drops_blocks_counts_them_and_conceals_them_with_silence(portaudio: FakePortAudio) -> None:
    """Blocks that come while the event loop cannot take them are dropped and counted, and the next block that
    fits is preceded by silence of their length, so later audio keeps its time."""
    level = 0.25
    loud = np.full(882, level)  # 20 ms at 44.1 kHz
    # Twelve blocks come before the loop looks (PortAudio flags one as late itself): eight fit, four are dropped.
    portaudio.play = lambda stream: [stream.block(loud, overflow=i == 3) for i in range(12)]
    sink = Sink()
    source = MicSource("pulse", max_pending_blocks=8)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(sink, stop))
        while len(sink.audio_or_empty()) < 7 * 320:
            await asyncio.sleep(0.01)
        portaudio.streams[0].block(np.full(882, 2 * level))
        while sink.audio_or_empty().max(initial=0) < 1.5 * level:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(scenario())
    assert source.rejected == {"queue_full": 4, "input_overflow": 1}
    assert source.tallies == {"rejected": source.rejected}, "the drops reach the metrics"
    audio, block = sink.audio(), 320  # a block at 16 kHz
    assert abs(audio.size - 13 * block) <= 64, "the dropped blocks' time is kept"
    assert np.abs(audio[block : 7 * block] - level).max() < 0.02, "the eight blocks that fit"
    assert np.abs(audio[int(8.5 * block) : int(11.5 * block)]).max() < 0.02, "silence where four were dropped"
    assert np.abs(audio[int(12.3 * block) : int(12.7 * block)] - 2 * level).max() < 0.05, "the next block, on time"


def test_a_busy_device_is_one_error_naming_it_and_no_stream_starts(portaudio: FakePortAudio) -> None:
    portaudio.open_error = PortAudioError(
        "Error opening InputStream: Device unavailable", DEVICE_UNAVAILABLE, None
    )
    sink = Sink()
    source = MicSource("USB")
    with pytest.raises(MicError) as error:
        asyncio.run(run_until(source, sink, lambda: False))
    assert str(error.value) == (
        "mic: cannot open input device 2: 'USB Mic (hw:1,0)' (ALSA, 48000 Hz): Error opening InputStream: "
        "Device unavailable (busy: another program may hold it)"
    )
    assert not sink.started and not sink.ended


def test_a_device_portaudio_finishes_ends_the_stream_as_lost(portaudio: FakePortAudio) -> None:
    def play(stream: FakeStream) -> None:
        for _ in range(10):
            stream.block(np.full(882, 0.1))
        stream.settings["finished_callback"]()

    portaudio.play = in_thread(play)
    sink = Sink()
    with pytest.raises(
        MicError,
        match=r"^mic: input device 3: 'pulse' .* lost after [\d.]+ s: the stream stopped \(device removed",
    ):
        asyncio.run(run_until(MicSource("pulse"), sink, lambda: False))
    assert abs(sink.audio().size - 10 * 320) <= 64, "what came before the loss is delivered"
    assert sink.ended == [("mic", "device_lost")] and portaudio.streams[0].closed


def test_a_device_that_goes_silent_is_lost_after_the_stall_time(portaudio: FakePortAudio) -> None:
    portaudio.play = lambda stream: stream.block(np.full(882, 0.1))
    sink = Sink()
    with pytest.raises(MicError, match=r"lost after [\d.]+ s: no audio for 0\.3 s$"):
        asyncio.run(run_until(MicSource("pulse", stall_s=0.3), sink, lambda: False))
    assert sink.ended == [("mic", "device_lost")]
