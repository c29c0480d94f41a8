"""RTP over UDP: one socket, many call legs, each SSRC (optionally per sender address) a stream of its own.

The source reads its socket itself: up to :data:`READ_BATCH` datagrams per wake-up of the event loop, with
``recvmsg`` so the kernel's count of datagrams it dropped on a full receive buffer comes along (kept in
``kernel_drops["receive_buffer"]``). Every datagram is then checked in this order, and the first failure is
counted in ``rejected`` under its reason and dropped: sender allowlist (``not_allowed``), RTP parsing (``short``,
``version``, ``rtcp``, ...), payload type (``payload_type``), payload size (``payload_length``), admission of a
new stream (``dormant``, ``address_limit``, ``too_many_streams``: see :mod:`emoscribe.daemon.rtp_streams`) and
a clock-rate change inside a stream (``format_change``). Nothing a peer sends can stop the loop: anything else
that goes wrong is logged and counted as ``internal``.

Accepted packets go through the stream's jitter buffer (its events in ``jitter``: ``lost``, ``late``,
``duplicate``, ...) and a streaming resampler to 16 kHz float32 frames; per wake-up, G.711 payloads are decoded
in one table lookup and each stream's released audio is resampled in one call. Until a stream carries speech
(a packet at ``speech_level_dbfs``), only its last :data:`HOLD_S` of audio is kept, unanalysed, to be delivered
at its place in stream time when it speaks: idle legs cost no segmenter or VAD work. Streams opened and ended are
counted by reason in ``stream_events``; a stream ends after ``inactivity_timeout`` seconds without packets
(``"timeout"``: call legs rarely send an RTCP BYE), when the admission rules end it, or when the source stops
(``"shutdown"``), its buffered audio flushed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

import numpy as np
import soxr

from emoscribe.daemon.frames import SAMPLE_RATE, Frame, FrameSink, StreamInfo
from emoscribe.daemon.jitter import JitterBuffer, JitterConfig, joined
from emoscribe.daemon.rtp import (
    PayloadFormat,
    RtpError,
    RtpPacket,
    check_payload,
    decode_payloads,
    parse_rtp,
    payload_format,
    payload_formats,
)
from emoscribe.daemon.rtp_streams import StreamPolicy, StreamTable
from emoscribe.daemon.udp_sockets import DROPS_CMSG_SPACE, bind_udp, kernel_drops, prepare_receive
from emoscribe.daemon.upsampler import Upsampler2x

logger = logging.getLogger(__name__)

Resampler = Upsampler2x | soxr.ResampleStream
TICK_S = 0.025
"""How often idle streams are checked: bounds how late a timeout or a stalled jitter buffer is noticed."""
READ_BATCH = 256
"""Datagrams read per wake-up at most: enough to spread the loop's cost over many packets, few enough that
timers and the engine's results are not held up for long under a flood."""
SENDERS_REMEMBERED = 4096
"""Sender addresses whose allowlist verdict is kept (all are forgotten when it is full)."""
HOLD_S = 1.0
"""Audio kept back while a stream has not carried speech: more than the segmenter's pre-roll, start window and
the VAD's warm-up together, so speech that opens a stream is analysed as if all of the stream had been."""
CATCH_UP_BATCHES = 64
"""Batches read at most before the idle streams are checked."""
MAX_DATAGRAM = 8192
"""Larger datagrams (no RTP audio packet on an Ethernet path) are cut by the kernel and rejected (``oversize``)."""


@dataclass(frozen=True)
class RtpConfig:
    """Where to listen and how to treat the streams; ``payload_types`` maps dynamic payload types to
    ``(encoding, rate, channels)`` as negotiated in SDP."""

    host: str = "127.0.0.1"
    port: int = 5004
    policy: StreamPolicy = field(default_factory=StreamPolicy)
    receive_buffer_bytes: int = 8 << 20
    payload_types: Mapping[int, tuple[str, int, int]] = field(default_factory=dict)
    jitter: JitterConfig = field(default_factory=JitterConfig)

    def __post_init__(self) -> None:
        if self.receive_buffer_bytes < 1:
            raise ValueError(f"receive_buffer_bytes must be positive, got {self.receive_buffer_bytes}")


class _Stream:
    """One call leg: its jitter buffer, its resampler, the audio released in this wake-up, the audio held back
    while it has not carried speech (``held``, after ``skipped`` samples at its own rate), and its history."""

    __slots__ = (
        "emitted",
        "format",
        "held",
        "host",
        "jitter",
        "last_seen",
        "last_voice",
        "name",
        "opened",
        "out",
        "resampler",
        "skipped",
    )

    def __init__(
        self,
        name: str,
        fmt: PayloadFormat,
        host: str,
        jitter: JitterBuffer,
        resampler: Resampler | None,
        now: float,
    ) -> None:
        self.name = name
        self.format = fmt
        self.host = host
        self.jitter = jitter
        self.resampler = resampler
        self.out: list[np.ndarray] = []
        self.held: list[np.ndarray] = []
        self.skipped = 0
        self.emitted = 0
        self.opened = self.last_seen = now
        self.last_voice: float | None = None


class RtpSource:
    """The RTP source. ``accepted["packets"]`` counts datagrams accepted as audio, ``rejected`` the others by
    reason,
    ``jitter`` the jitter buffers' events over all streams, ``stream_events`` the streams admitted and ended
    by reason, ``kernel_drops["receive_buffer"]`` the datagrams the kernel dropped before they could be read."""

    kind = "rtp"

    def __init__(self, config: RtpConfig | None = None, sock: socket.socket | None = None) -> None:
        """With ``sock`` (bound already, as the daemon does at start-up) the source uses it and ignores the
        config's host and port; without, it binds them itself when it runs."""
        self.config = config or RtpConfig()
        self._sock = sock
        self.rejected: Counter[str] = Counter()
        self.jitter: Counter[str] = Counter()
        self.stream_events: Counter[str] = Counter()
        self.kernel_drops: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.address: tuple[str, int] | None = None
        self.listening = asyncio.Event()
        self._formats = payload_formats(self.config.payload_types)
        self._allow = self.config.policy.networks()
        self._speech_power = self.config.policy.speech_power
        self._by_ssrc = self.config.policy.stream_key == "ssrc"
        self._table: StreamTable[_Stream] = StreamTable(self.config.policy, self.stream_events)
        self._idle_soxr: dict[int, list[soxr.ResampleStream]] = {}
        self._senders: dict[str, bool] = {}
        self._sink: FrameSink | None = None

    @property
    def packets(self) -> int:
        """Datagrams accepted as audio."""
        return self.accepted["packets"]

    @property
    def streams(self) -> int:
        """Streams open now."""
        return len(self._table)

    @property
    def tallies(self) -> dict[str, Counter[str]]:
        """Every counter of the source by family, for the metrics."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "jitter": self.jitter,
            "streams": self.stream_events,
            "kernel_drops": self.kernel_drops,
        }

    async def run(self, sink: FrameSink, stop: asyncio.Event) -> None:
        """Receive until ``stop`` is set, then end every stream with ``"shutdown"``. A socket that cannot be
        bound raises ``OSError`` naming the address and port."""
        loop = asyncio.get_running_loop()
        self._sink = sink
        sock = self._sock if self._sock is not None else bind_udp(self.config.host, self.config.port)
        try:
            prepare_receive(sock, self.config.receive_buffer_bytes)
            self.address = sock.getsockname()[:2]
            loop.add_reader(sock.fileno(), self._readable, sock, loop)
            self.listening.set()
            logger.info("listening for RTP on %s:%d", *self.address)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_S)
                if self._read_up(sock, loop):
                    self._guarded(self._expire, loop.time())
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
            self.listening.clear()
            for key in self._table.open_keys():
                self._guarded(self._close, key, "shutdown")

    def _readable(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> int:
        """Read what the socket holds, up to a batch, and handle it together; returns how many were read."""
        datagrams: list[tuple[bytes, tuple[Any, ...]]] = []
        read = 0
        try:
            while read < READ_BATCH:
                data, ancillary, flags, addr = sock.recvmsg(MAX_DATAGRAM, DROPS_CMSG_SPACE)
                read += 1
                if ancillary:
                    dropped = kernel_drops(ancillary)
                    if dropped is not None:
                        self.kernel_drops["receive_buffer"] = dropped
                if flags & socket.MSG_TRUNC:
                    self.rejected["oversize"] += 1
                else:
                    datagrams.append((data, addr))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as error:
            logger.debug("RTP socket error: %s", error)
        self.receive(datagrams, loop.time())
        return read

    def _read_up(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> bool:
        """Before streams are judged idle, read what is already waiting in the socket (the loop may have fallen
        behind, and a leg's next packets be queued there); ``False`` when the backlog outlasts
        :data:`CATCH_UP_BATCHES`, so that no stream is ended on stale information."""
        return any(self._readable(sock, loop) < READ_BATCH for _ in range(CATCH_UP_BATCHES))

    def receive(self, datagrams: Sequence[tuple[bytes, tuple[Any, ...]]], now: float) -> None:
        """Handle datagrams ``(data, sender address)`` that arrived by loop time ``now`` (the socket's entry
        point, open to tests and to other transports while :meth:`run` runs); never raises."""
        try:
            self._receive(datagrams, now)
        except Exception:
            self._internal_error("a batch of %d datagrams", len(datagrams))

    def _receive(self, datagrams: Sequence[tuple[bytes, tuple[Any, ...]]], now: float) -> None:
        parsed: list[tuple[RtpPacket, PayloadFormat, str, int]] = []
        for data, addr in datagrams:
            try:
                parsed.append(self._parse(data, addr))
            except RtpError as error:
                self._reject(error, addr[0])
            except Exception:
                self._internal_error("datagram from %s", addr[0])
        if not parsed:
            return
        decoded, power = decode_payloads([p[0].payload for p in parsed], [p[1] for p in parsed])
        touched: list[_Stream] = []
        for (packet, fmt, host, port), samples, square in zip(parsed, decoded, power, strict=True):
            try:
                stream = self._admit(packet, fmt, host, port, now, square >= self._speech_power)
                released = stream.jitter.push(packet.sequence, packet.timestamp, samples).samples
            except RtpError as error:
                self._reject(error, host)
                continue
            except Exception:
                self._internal_error("datagram from %s", host)
                continue
            if not released.size:
                continue
            if not stream.out and stream.last_voice is not None:
                touched.append(stream)
            self._take(stream, released)
        for stream in touched:
            try:
                self._deliver(stream)
            except Exception:
                self._internal_error("audio of %s", stream.name)

    def _parse(self, data: bytes, addr: tuple[Any, ...]) -> tuple[RtpPacket, PayloadFormat, str, int]:
        host, port = addr[0], addr[1]
        if self._allow is not None:
            allowed = self._senders.get(host)
            if allowed is None:
                allowed = self._judge_sender(host, self._allow)
            if not allowed:
                raise RtpError("not_allowed", host)
        packet = parse_rtp(data)
        fmt = payload_format(packet.payload_type, self._formats)
        check_payload(packet.payload, fmt)
        return packet, fmt, host, port

    def _admit(
        self, packet: RtpPacket, fmt: PayloadFormat, host: str, port: int, now: float, speech: bool
    ) -> _Stream:
        key = packet.ssrc if self._by_ssrc else (packet.ssrc, host, port)
        stream = self._table.heard(key, now, speech)
        if stream is None:
            stream = self._open(key, packet, fmt, host, port, now, speech)
        elif fmt.rate != stream.format.rate:
            raise RtpError("format_change", f"{stream.name}: {stream.format.rate} Hz to {fmt.rate} Hz")
        self.accepted["packets"] += 1
        return stream

    def _open(
        self, key: Hashable, packet: RtpPacket, fmt: PayloadFormat, host: str, port: int, now: float, speech: bool
    ) -> _Stream:
        victim = self._table.admission(key, host, now, speech)
        if victim is not None:
            self._close(*victim)
        ssrc = packet.ssrc
        name = f"rtp-{ssrc:08x}" if self._by_ssrc else f"rtp-{ssrc:08x}-{host}-{port}"
        jitter = JitterBuffer(fmt.rate, self.config.jitter, self.jitter)
        stream = _Stream(name, fmt, host, jitter, self._resampler(fmt.rate), now)
        self._table.add(key, stream, speech)
        details = {
            "ssrc": ssrc,
            "payload_type": packet.payload_type,
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
        """End the streams the table says are due; drain jitter buffers whose missing packet will not come (the
        sender went quiet right after a loss), so their audio does not wait for the next talkspurt."""
        ending, quiet = self._table.due(now, self.config.jitter.depth_ms / 1000)
        for key, reason in ending:
            self._guarded(self._close, key, reason)
        for stream in quiet:
            if stream.jitter.buffered:
                self._guarded(self._drain, stream)

    def _drain(self, stream: _Stream) -> None:
        self._take(stream, stream.jitter.drain().samples)
        self._deliver(stream)

    def _close(self, key: Hashable, reason: str) -> None:
        stream = self._table.remove(key, reason)
        try:
            self._take(stream, stream.jitter.drain().samples)
            self._deliver(stream, last=True)
        finally:
            self._recycle(stream)
            logger.info("stream %s ended: %s", stream.name, reason)
            self._require_sink().stream_ended(stream.name, reason)

    def _deliver(self, stream: _Stream, last: bool = False) -> None:
        """Resample and hand on the audio the stream released in this wake-up (and all of it, if ``last``); a
        stream that has not carried speech yet keeps its audio back instead (:meth:`_hold`)."""
        if stream.last_voice is None:
            if last:  # it ended without speaking: one empty frame at its end tells the front end its length
                held = sum(piece.size for piece in stream.held)
                end = round((stream.skipped + held) * SAMPLE_RATE / stream.format.rate) / SAMPLE_RATE
                stream.held = []
                self._require_sink().frame(Frame(stream.name, end, np.zeros(0, dtype=np.float32)))
            return
        if stream.held:
            stream.out[:0] = stream.held
            stream.held = []
        samples = joined(stream.out)
        stream.out.clear()
        if stream.resampler is not None and (samples.size or last):
            samples = stream.resampler.resample_chunk(samples, last=last)
        if samples.size:
            frame = Frame(stream.name, stream.emitted / SAMPLE_RATE, samples)
            stream.emitted += samples.size
            self._require_sink().frame(frame)

    def _take(self, stream: _Stream, samples: np.ndarray) -> None:
        """Audio the jitter buffer released: to be delivered, or held while the stream has not spoken."""
        if stream.last_voice is None:
            self._hold(stream, samples)
        else:
            stream.out.append(samples)

    def _hold(self, stream: _Stream, samples: np.ndarray) -> None:
        """Keep only the last :data:`HOLD_S` of a stream that has not carried speech, unanalysed: the segmenter
        and VAD would find nothing in it, and a flood of idle streams would cost as much as as many calls. When
        the stream speaks, what is held goes first, at its place in stream time."""
        stream.held.append(samples)
        excess = sum(piece.size for piece in stream.held) - round(HOLD_S * stream.format.rate)
        while excess > 0:
            cut = min(excess, stream.held[0].size)
            stream.held[0] = stream.held[0][cut:]
            if not stream.held[0].size:
                del stream.held[0]
            stream.skipped += cut
            excess -= cut
        stream.emitted = round(stream.skipped * SAMPLE_RATE / stream.format.rate)

    def _resampler(self, rate: int) -> Resampler | None:
        """A resampler to 16 kHz: the 2x interpolator for 8 kHz telephony, else soxr, reused from an ended stream
        where one is idle. soxr's variable-rate mode processes each chunk at once (its fixed-rate mode holds
        audio back in blocks of about 100 ms) and keeps images and aliases below -120 dB."""
        if rate == SAMPLE_RATE:
            return None
        if 2 * rate == SAMPLE_RATE:
            return Upsampler2x()
        idle = self._idle_soxr.get(rate)
        if idle:
            return idle.pop()
        return soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ", vr=True)

    def _recycle(self, stream: _Stream) -> None:
        """Keep an ended stream's soxr resampler, reset, for the next stream: its native buffers, allocated and
        freed for every leg, would otherwise fragment the C heap further with each call."""
        if not isinstance(stream.resampler, soxr.ResampleStream):
            return
        stream.resampler.clear()
        idle = self._idle_soxr.setdefault(stream.format.rate, [])
        if len(idle) < self.config.policy.max_streams:
            idle.append(stream.resampler)

    def _judge_sender(self, host: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
        """Whether a sender is in the allowlist, remembered: calls send from the same few addresses all along
        (a plain dict, as hashing the networks for a general cache costs more than the check)."""
        if len(self._senders) >= SENDERS_REMEMBERED:
            self._senders.clear()
        allowed = self._senders[host] = _allowed(host, networks)
        return allowed

    def _require_sink(self) -> FrameSink:
        if self._sink is None:
            raise RuntimeError("the RTP source is not running")
        return self._sink

    def _reject(self, error: RtpError, host: str) -> None:
        self.rejected[error.reason] += 1
        if error.reason != "rtcp":
            logger.debug("rejected datagram from %s: %s", host, error)

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


def _allowed(host: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    address = ip_address(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
