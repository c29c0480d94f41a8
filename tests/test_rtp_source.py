"""The RTP source over real UDP on loopback: streams, impairments, garbage, timeouts, shutdown, refusals.

Every wait is bounded, so a failure shows as an assertion within seconds, never as a hung run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest
from rtp_packets import build_rtp

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, StreamInfo
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.rtp_streams import StreamPolicy
from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource
from emoscribe.daemon.udp_sockets import prepare_receive
from emoscribe.g711 import ulaw_encode

PTIME = 160  # 20 ms of 8 kHz PCMU


class Recorder:
    """A FrameSink that keeps everything."""

    def __init__(self) -> None:
        self.started: list[StreamInfo] = []
        self.frames: dict[str, list[Frame]] = {}
        self.ended: dict[str, str] = {}
        self.ended_at: dict[str, float] = {}

    def stream_started(self, info: StreamInfo) -> None:
        self.started.append(info)
        self.frames[info.stream] = []

    def frame(self, frame: Frame) -> None:
        self.frames[frame.stream].append(frame)

    def stream_ended(self, stream: str, reason: str) -> None:
        self.ended[stream] = reason
        self.ended_at[stream] = time.monotonic()

    def audio(self, stream: str) -> np.ndarray:
        frames = self.frames[stream]
        assert all(f.samples.dtype == np.float32 for f in frames)
        assert [f.start for f in frames] == pytest.approx(
            np.cumsum([0] + [f.samples.size for f in frames])[:-1] / SAMPLE_RATE
        )
        return np.concatenate([f.samples for f in frames])


def tone_packets(ssrc: int, hz: float, count: int, seq0: int = 0) -> list[bytes]:
    t = np.arange(count * PTIME) / 8000
    codes = ulaw_encode(np.round(0.4 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)).tobytes()
    return [
        build_rtp(
            codes[k * PTIME : (k + 1) * PTIME],
            sequence=(seq0 + k) % 2**16,
            timestamp=k * PTIME,
            ssrc=ssrc,
            marker=k == 0,
        )
        for k in range(count)
    ]


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(source: RtpSource, sink: Recorder) -> AsyncIterator[socket.socket]:
    """Run the source on an ephemeral loopback port; yields a UDP socket connected to it."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    try:
        async with asyncio.timeout(2):
            await source.listening.wait()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.connect(source.address)
            yield sender
    finally:
        stop.set()
        async with asyncio.timeout(2):
            await task


POLICY_KEYS = frozenset(StreamPolicy.__dataclass_fields__)


def config(**overrides: Any) -> RtpConfig:
    """A source config on an ephemeral port with a 0.3 s inactivity timeout; policy keys go to its policy."""
    policy = {"inactivity_timeout": 0.3, **{k: v for k, v in overrides.items() if k in POLICY_KEYS}}
    rest = {k: v for k, v in overrides.items() if k not in POLICY_KEYS}
    return RtpConfig(port=0, policy=StreamPolicy(**policy), **rest)


def peak_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)[spectrum.argmax()])


def test_two_impaired_streams_with_garbage_come_out_whole_and_end_on_timeout() -> None:
    a, b = tone_packets(0xA, 1000.0, 50, seq0=65500), tone_packets(0xB, 1500.0, 50)
    a[10], a[11] = a[11], a[10]
    a.insert(25, a[20])
    del a[40]  # lost: concealed
    b[5], b[7] = b[7], b[5]
    b.insert(30, b[30])
    garbage = [
        b"",
        b"\x80\x00\x00",
        bytes(range(100)),  # version 0
        bytes([0x81, 201, 0, 1]) + b"\x00" * 4,  # RTCP receiver report
        build_rtp(b"\x00" * 20, payload_type=18),  # G.729: not configured
        build_rtp(b"\x00" * 3, payload_type=11),  # half an L16 sample
    ]
    datagrams = [packet for pair in itertools.zip_longest(a, b) for packet in pair if packet is not None]
    for i, junk in enumerate(garbage):
        datagrams.insert(7 * i + 3, junk)

    async def scenario() -> tuple[Recorder, RtpSource]:
        source, sink = RtpSource(config(allow=("127.0.0.0/8",))), Recorder()
        async with running(source, sink) as sender:
            for datagram in datagrams:
                sender.send(datagram)
            sent = time.monotonic()
            await until(lambda: len(sink.ended) == 2)
            assert source.streams == 0
        assert all(0.3 <= ended - sent < 1.0 for ended in sink.ended_at.values())
        return sink, source

    sink, source = asyncio.run(scenario())
    assert [info.stream for info in sink.started] == ["rtp-0000000a", "rtp-0000000b"]
    assert sink.started[0].details["encoding"] == "PCMU"
    assert sink.ended == {"rtp-0000000a": "timeout", "rtp-0000000b": "timeout"}
    for stream, hz in (("rtp-0000000a", 1000.0), ("rtp-0000000b", 1500.0)):
        audio = sink.audio(stream)
        assert abs(audio.size - SAMPLE_RATE) <= 2 * PTIME  # 1 s sent, ± one 16 kHz packet
        assert abs(peak_hz(audio) - hz) < 10
    assert source.rejected == {"short": 2, "version": 1, "rtcp": 1, "payload_type": 1, "payload_length": 1}
    assert source.packets == 101
    assert source.jitter == {"duplicate": 2, "lost": 1}


def test_stop_flushes_buffered_audio_and_ends_streams_with_shutdown() -> None:
    async def scenario() -> Recorder:
        source, sink = RtpSource(config(inactivity_timeout=5.0)), Recorder()
        async with running(source, sink) as sender:
            for packet in tone_packets(0x1234, 1000.0, 2):  # 40 ms: less than the jitter window
                sender.send(packet)
            await until(lambda: source.packets == 2)
        return sink

    sink = asyncio.run(scenario())
    assert sink.ended == {"rtp-00001234": "shutdown"}
    assert sink.audio("rtp-00001234").size == 2 * 2 * PTIME


def test_wideband_l16_on_a_dynamic_payload_type_passes_through_unchanged() -> None:
    pcm = np.round(np.random.default_rng(1).uniform(-0.5, 0.5, 3 * 320) * 32768).astype(">i2")
    packets = [
        build_rtp(pcm[k * 320 : (k + 1) * 320].tobytes(), payload_type=96, sequence=k, timestamp=k * 320)
        for k in range(3)
    ]

    async def scenario() -> Recorder:
        source, sink = RtpSource(config(payload_types={96: ("L16", 16000, 1)})), Recorder()
        async with running(source, sink) as sender:
            for packet in packets:
                sender.send(packet)
            await until(lambda: source.packets == 3)
        return sink

    sink = asyncio.run(scenario())
    assert sink.started[0].details["rate"] == 16000
    np.testing.assert_array_equal(sink.audio("rtp-1234abcd"), pcm.astype(np.float32) / 32768)


def test_senders_outside_the_allowlist_are_rejected() -> None:
    async def scenario() -> RtpSource:
        source, sink = RtpSource(config(allow=("10.0.0.0/8", "::1/128"))), Recorder()
        async with running(source, sink) as sender:
            for packet in tone_packets(1, 1000.0, 5):
                sender.send(packet)
            await until(lambda: source.rejected["not_allowed"] == 5)
        assert not sink.started
        return source

    assert asyncio.run(scenario()).packets == 0


def test_streams_beyond_the_cap_are_rejected() -> None:
    async def scenario() -> tuple[RtpSource, Recorder]:
        source, sink = RtpSource(config(max_streams=1)), Recorder()
        async with running(source, sink) as sender:
            for first, second in zip(tone_packets(1, 1000.0, 4), tone_packets(2, 1000.0, 4), strict=True):
                sender.send(first)
                sender.send(second)
            await until(lambda: source.packets + source.rejected.total() == 8)
        return source, sink

    source, sink = asyncio.run(scenario())
    assert source.rejected == {"too_many_streams": 4}
    assert [info.stream for info in sink.started] == ["rtp-00000001"]


def test_ssrc_plus_address_keys_the_same_ssrc_from_two_ports_apart() -> None:
    async def scenario() -> tuple[Recorder, list[int]]:
        source, sink = RtpSource(config(stream_key="ssrc+addr")), Recorder()
        async with running(source, sink) as sender:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                other.connect(source.address)
                for packet in tone_packets(7, 1000.0, 3):
                    sender.send(packet)
                    other.send(packet)
                await until(lambda: source.packets == 6)
                ports = [sender.getsockname()[1], other.getsockname()[1]]
        return sink, ports

    sink, ports = asyncio.run(scenario())
    assert sorted(sink.ended) == sorted(f"rtp-00000007-127.0.0.1-{port}" for port in ports)


def test_a_busy_port_is_an_os_error_naming_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]

        async def scenario() -> None:
            await RtpSource(RtpConfig(port=port)).run(Recorder(), asyncio.Event())

        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            asyncio.run(scenario())


def test_mutated_packets_never_break_the_loop() -> None:
    """Bit-flipped and truncated copies of valid packets, plus random bytes, straight into the handler."""
    rng = np.random.default_rng(0)
    valid = tone_packets(0x99, 1000.0, 20)
    datagrams = []
    for _ in range(3000):
        packet = bytearray(valid[rng.integers(len(valid))])
        for index in rng.integers(len(packet), size=rng.integers(1, 4)):
            packet[index] ^= 1 << int(rng.integers(8))
        datagrams.append(bytes(packet[: rng.integers(len(packet) + 1)]))
        datagrams.append(rng.bytes(int(rng.integers(0, 64))))

    async def scenario() -> RtpSource:
        source, sink = RtpSource(config(max_streams=1000, inactivity_timeout=30.0)), Recorder()
        async with running(source, sink):
            loop = asyncio.get_running_loop()
            first = 0
            while first < len(datagrams):  # batches of all sizes, as wake-ups read them
                batch = datagrams[first : first + first % 13 + 1]
                source.receive([(datagram, ("127.0.0.1", 5000)) for datagram in batch], loop.time())
                first += len(batch)
        assert set(sink.ended.values()) <= {"shutdown"}
        assert len(sink.ended) == len(sink.started)
        return source

    source = asyncio.run(scenario())
    assert "internal" not in source.rejected
    assert source.packets + source.rejected.total() == len(datagrams)


def test_kernel_drops_and_jitter_events_reach_the_metrics(caplog: pytest.LogCaptureFixture) -> None:
    """A burst into a tiny receive buffer while the loop is busy: the kernel drops most of it, the next datagram
    brings the count, and /metrics shows it beside the jitter buffer's losses; a buffer beyond
    ``net.core.rmem_max`` is logged with the size granted."""
    metrics = Metrics()
    source = RtpSource(config(receive_buffer_bytes=4096))
    metrics.watch_source("RtpSource-0", source.tallies)
    packets = tone_packets(0x77, 1000.0, 400)

    async def scenario() -> None:
        async with running(source, Recorder()) as sender:
            for packet in packets[:-1]:  # no await: the source cannot read meanwhile
                sender.send(packet)
            await asyncio.sleep(0.2)
            sender.send(packets[-1])
            await until(lambda: source.kernel_drops["receive_buffer"] > 0)

    asyncio.run(scenario())
    dropped = source.kernel_drops["receive_buffer"]
    assert source.packets + dropped == len(packets)
    assert source.jitter["lost"] == dropped, "every dropped packet of the leg shows as lost"
    text = generate_latest(metrics.registry).decode()
    assert f'emoscribe_rtp_kernel_drops_total{{cause="receive_buffer",source="RtpSource-0"}} {dropped}.0' in text
    assert f'emoscribe_rtp_jitter_events_total{{event="lost",source="RtpSource-0"}} {dropped}.0' in text
    assert 'emoscribe_rtp_streams_total{event="admitted",source="RtpSource-0"} 1.0' in text

    limit = int(Path("/proc/sys/net/core/rmem_max").read_text())
    with caplog.at_level(logging.WARNING), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert prepare_receive(sock, 2 * limit) == limit
    assert f"RTP receive buffer is {limit} bytes, not the {2 * limit} configured" in caplog.text


def test_audio_before_a_stream_carries_speech_is_held_back_to_its_last_second() -> None:
    """3 s of digital silence, then a tone: the front end gets the tone at its stream time, preceded by the last
    second of silence only; a stream that only ever sends silence gets one empty frame at its end time."""
    silence = [build_rtp(b"\xff" * PTIME, sequence=k, timestamp=k * PTIME, ssrc=0x51) for k in range(150)]
    tone = tone_packets(0x51, 1000.0, 50, seq0=150)
    tone = [
        build_rtp(p[12:], sequence=150 + k, timestamp=(150 + k) * PTIME, ssrc=0x51) for k, p in enumerate(tone)
    ]
    quiet = [build_rtp(b"\xff" * PTIME, sequence=k, timestamp=k * PTIME, ssrc=0x52) for k in range(100)]

    async def scenario() -> Recorder:
        source, sink = RtpSource(config()), Recorder()
        async with running(source, sink) as sender:
            for packet in [*silence, *tone, *quiet]:
                sender.send(packet)
            await until(lambda: len(sink.ended) == 2)
        return sink

    sink = asyncio.run(scenario())
    frames = sink.frames["rtp-00000051"]
    assert frames[0].start == pytest.approx(2.0)
    assert [f.start for f in frames] == pytest.approx(
        2.0 + np.cumsum([0] + [f.samples.size for f in frames])[:-1] / SAMPLE_RATE
    )
    audio = np.concatenate([f.samples for f in frames])
    onset = np.flatnonzero(np.abs(audio) > 0.05)[0] / SAMPLE_RATE + 2.0
    assert onset == pytest.approx(3.0, abs=0.005)
    assert audio.size == pytest.approx(2.0 * SAMPLE_RATE, abs=2 * PTIME)
    (end,) = sink.frames["rtp-00000052"]
    assert end.samples.size == 0 and end.start == pytest.approx(2.0)
