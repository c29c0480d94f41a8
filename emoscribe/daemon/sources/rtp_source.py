"""RTP over UDP: one socket, many call legs, each SSRC (optionally per sender address) a stream of its own.

Every datagram is checked in this order, and the first failure is counted in ``rejected`` under its reason
and dropped: sender allowlist (``not_allowed``), RTP parsing (``short``, ``version``, ``rtcp``, ...), payload
type (``payload_type``), payload size (``payload_length``), stream cap (``too_many_streams``) and a clock-rate
change inside a stream (``format_change``). Nothing a peer sends can stop the loop: anything else that goes
wrong is logged and counted as ``internal``.

Accepted packets go through the stream's jitter buffer and a streaming resampler to 16 kHz float32 frames. A
stream ends after ``inactivity_timeout`` seconds without packets (``"timeout"``: call legs rarely send an RTCP
BYE) or when the source stops (``"shutdown"``), its buffered audio flushed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

import numpy as np
import soxr

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo
from emoscribe.daemon.jitter import Chunk, JitterBuffer, JitterConfig
from emoscribe.daemon.rtp import (
    PayloadFormat,
    RtpError,
    decode_payload,
    parse_rtp,
    payload_format,
    payload_formats,
)
from emoscribe.daemon.udp_sockets import bind_udp

logger = logging.getLogger(__name__)

STREAM_KEYS = ("ssrc", "ssrc+addr")
TICK_S = 0.025
"""How often idle streams are checked: bounds how late a timeout or a stalled jitter buffer is noticed."""


@dataclass(frozen=True)
class RtpConfig:
    """Where to listen and how to treat the streams. ``allow`` lists the sender networks (CIDR) accepted,
    ``None`` accepts any sender that can reach the socket (loopback only, unless ``host`` says otherwise);
    ``payload_types`` maps dynamic payload types to ``(encoding, rate, channels)`` as negotiated in SDP."""

    host: str = "127.0.0.1"
    port: int = 5004
    stream_key: str = "ssrc"
    allow: tuple[str, ...] | None = None
    inactivity_timeout: float = 2.0
    max_streams: int = 256
    payload_types: Mapping[int, tuple[str, int, int]] = field(default_factory=dict)
    jitter: JitterConfig = field(default_factory=JitterConfig)

    def __post_init__(self) -> None:
        if self.stream_key not in STREAM_KEYS:
            raise ValueError(f"stream_key must be one of {STREAM_KEYS}, got {self.stream_key!r}")
        if self.inactivity_timeout <= 0 or self.max_streams < 1:
            raise ValueError("inactivity_timeout and max_streams must be positive")


class _Stream:
    """One call leg: its jitter buffer, its resampler and how much 16 kHz audio it has delivered."""

    __slots__ = ("emitted", "format", "jitter", "last_seen", "name", "resampler")

    def __init__(
        self, name: str, fmt: PayloadFormat, config: JitterConfig, counts: Counter[str], now: float
    ) -> None:
        self.name = name
        self.format = fmt
        self.jitter = JitterBuffer(fmt.rate, config, counts)
        # Variable-rate mode processes each chunk at once (about 20 ms delay at 8 kHz); the fixed-rate mode holds
        # audio back in DFT blocks of about 100 ms. Both keep images and aliases below -120 dB.
        self.resampler = (
            None
            if fmt.rate == SAMPLE_RATE
            else soxr.ResampleStream(fmt.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ", vr=True)
        )
        self.emitted = 0
        self.last_seen = now


class RtpSource:
    """The RTP source. ``packets`` counts datagrams accepted as audio, ``rejected`` the others by reason,
    ``jitter`` the jitter buffers' events (``lost``, ``late``, ``duplicate``, ...) over all streams."""

    kind = "rtp"

    def __init__(self, config: RtpConfig | None = None, sock: socket.socket | None = None) -> None:
        """With ``sock`` (bound already, as the daemon does at start-up) the source uses it and ignores the
        config's host and port; without, it binds them itself when it runs."""
        self.config = config or RtpConfig()
        self._sock = sock
        self.rejected: Counter[str] = Counter()
        self.jitter: Counter[str] = Counter()
        self.packets = 0
        self.address: tuple[str, int] | None = None
        self.listening = asyncio.Event()
        self._formats = payload_formats(self.config.payload_types)
        self._allow: tuple[IPv4Network | IPv6Network, ...] | None = (
            None
            if self.config.allow is None
            else tuple(ip_network(cidr, strict=False) for cidr in self.config.allow)
        )
        self._streams: dict[Hashable, _Stream] = {}
        self._sink: FrameSink | None = None

    @property
    def streams(self) -> int:
        """Streams open now."""
        return len(self._streams)

    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None:
        """Receive until ``stop`` is set, then end every stream with ``"shutdown"``. A socket that cannot be
        bound raises ``OSError`` naming the address and port."""
        loop = asyncio.get_running_loop()
        self._sink = sink
        sock = self._sock if self._sock is not None else bind_udp(self.config.host, self.config.port)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self, loop), sock=sock)
        self.address = transport.get_extra_info("sockname")[:2]
        self.listening.set()
        logger.info("listening for RTP on %s:%d", *self.address)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_S)
                self._expire(loop.time())
        finally:
            transport.close()
            self.listening.clear()
            for key in list(self._streams):
                self._guarded(self._close, key, "shutdown")

    def receive(self, data: bytes, addr: tuple[Any, ...], now: float) -> None:
        """Handle one datagram from ``addr`` at loop time ``now`` (the socket's entry point, open to tests and to
        other transports while :meth:`run` runs); never raises."""
        try:
            self._accept(data, addr, now)
        except RtpError as error:
            self.rejected[error.reason] += 1
            if error.reason != "rtcp":
                logger.debug("rejected datagram from %s: %s", addr[0], error)
        except Exception:
            self._internal_error("datagram from %s", addr[0])

    def _accept(self, data: bytes, addr: tuple[Any, ...], now: float) -> None:
        host, port = addr[0], addr[1]
        if self._allow is not None and not _allowed(host, self._allow):
            raise RtpError("not_allowed", host)
        packet = parse_rtp(data)
        fmt = payload_format(packet.payload_type, self._formats)
        samples = decode_payload(packet.payload, fmt)
        key = packet.ssrc if self.config.stream_key == "ssrc" else (packet.ssrc, host, port)
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= self.config.max_streams:
                raise RtpError("too_many_streams", f"SSRC {packet.ssrc:08x}")
            stream = self._open(key, packet.ssrc, packet.payload_type, fmt, host, port, now)
        elif fmt.rate != stream.format.rate:
            raise RtpError("format_change", f"{stream.name}: {stream.format.rate} Hz to {fmt.rate} Hz")
        stream.last_seen = now
        self.packets += 1
        self._deliver(stream, stream.jitter.push(packet.sequence, packet.timestamp, samples))

    def _open(
        self, key: Hashable, ssrc: int, payload_type: int, fmt: PayloadFormat, host: str, port: int, now: float
    ) -> _Stream:
        name = f"rtp-{ssrc:08x}" if self.config.stream_key == "ssrc" else f"rtp-{ssrc:08x}-{host}-{port}"
        stream = self._streams[key] = _Stream(name, fmt, self.config.jitter, self.jitter, now)
        details = {
            "ssrc": ssrc,
            "payload_type": payload_type,
            "encoding": fmt.encoding,
            "rate": fmt.rate,
            "channels": fmt.channels,
            "peer": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "port": self.config.port,
        }
        logger.info("stream %s started: %s", name, details)
        self._require_sink().stream_started(StreamInfo(name, self.kind, details))
        return stream

    def _expire(self, now: float) -> None:
        """End streams idle past the timeout; drain jitter buffers whose missing packet will not come (the
        sender went quiet right after a loss), so their audio does not wait for the next talkspurt."""
        stall = self.config.jitter.depth_ms / 1000
        for key, stream in list(self._streams.items()):
            idle = now - stream.last_seen
            if idle >= self.config.inactivity_timeout:
                self._guarded(self._close, key, "timeout")
            elif idle >= stall and stream.jitter.buffered:
                self._guarded(self._drain, key)

    def _drain(self, key: Hashable) -> None:
        stream = self._streams[key]
        self._deliver(stream, stream.jitter.drain())

    def _close(self, key: Hashable, reason: str) -> None:
        stream = self._streams.pop(key)
        try:
            self._deliver(stream, stream.jitter.drain(), last=True)
        finally:
            logger.info("stream %s ended: %s", stream.name, reason)
            self._require_sink().stream_ended(stream.name, reason)

    def _deliver(self, stream: _Stream, chunk: Chunk, last: bool = False) -> None:
        samples = chunk.samples
        if stream.resampler is not None and (samples.size or last):
            samples = stream.resampler.resample_chunk(samples, last=last)
        if samples.size:
            frame = Frame(stream.name, stream.emitted / SAMPLE_RATE, np.ascontiguousarray(samples, np.float32))
            stream.emitted += samples.size
            self._require_sink().frame(frame)

    def _require_sink(self) -> FrameSink:
        if self._sink is None:
            raise RuntimeError("the RTP source is not running")
        return self._sink

    def _guarded(self, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except Exception:
            self._internal_error("housekeeping of %s", args[0])

    def _internal_error(self, what: str, subject: Any) -> None:
        """Count and log a failure of our own; the log thins out exponentially so a persistent fault cannot
        flood it (1st, 2nd, 4th, 8th ... occurrence)."""
        self.rejected["internal"] += 1
        count = self.rejected["internal"]
        if count & (count - 1) == 0:
            logger.exception("RTP source failed on " + what + " (%d such failures)", subject, count)


@functools.lru_cache(maxsize=4096)
def _allowed(host: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    """Whether a sender is in the allowlist; cached, as a call sends from the same few addresses all along."""
    address = ip_address(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, source: RtpSource, loop: asyncio.AbstractEventLoop) -> None:
        self._source = source
        self._loop = loop

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._source.receive(data, addr, self._loop.time())

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP socket error: %s", exc)
