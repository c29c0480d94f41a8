"""RTP packets (RFC 3550) and their audio payloads (RFC 3551): pure parsing and decoding, no I/O.

Anything a socket can deliver goes through :func:`parse_rtp`; what is not a usable RTP packet raises
:class:`RtpError` whose ``reason`` is a short stable label, so the source can count rejections by reason instead
of logging every stray datagram.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from emoscribe.g711 import ALAW_TABLE, ULAW_TABLE

RTP_VERSION = 2
HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")

RTCP_PACKET_TYPES = range(192, 224)
"""Second byte of RTCP packets (RFC 5761 §4): SR/RR/SDES/BYE/APP are 200-204, feedback and XR lie around them.
RTP payload types 64-95 collide with these, so RTP multiplexed with RTCP on one port never uses them."""

PCM_SCALE = 1.0 / 32768.0
"""16-bit linear samples to floats within ±1."""


class RtpError(ValueError):
    """A datagram that is not a usable RTP packet; ``reason`` is the label it is counted under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RtpPacket(NamedTuple):
    """The fields of an RTP header that a receiver uses, and the payload with header, extension and padding
    removed (a tuple: it is built for every datagram)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    csrc: tuple[int, ...]
    payload: bytes


def parse_rtp(data: bytes | bytearray | memoryview) -> RtpPacket:
    """Parse one datagram; raises :class:`RtpError` for RTCP, truncated or inconsistent packets."""
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size >= 2 and data[0] >> 6 == RTP_VERSION and data[1] in RTCP_PACKET_TYPES:
        raise RtpError("rtcp", f"packet type {data[1]}")
    if size < HEADER_SIZE:
        raise RtpError("short", f"{size} bytes, the fixed header alone is {HEADER_SIZE}")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError("version", f"version {first >> 6}")
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or padding > size - HEADER_SIZE:
            raise RtpError("padding", f"{padding} padding bytes in a {size}-byte packet")
        end -= padding
    csrc_count = first & 0x0F
    offset = HEADER_SIZE + 4 * csrc_count
    if offset > end:
        raise RtpError("csrc", f"{csrc_count} CSRCs do not fit in {end} bytes")
    csrc = struct.unpack_from(f"!{csrc_count}I", data, HEADER_SIZE) if csrc_count else ()
    if first & 0x10:
        if offset + _EXTENSION.size > end:
            raise RtpError("extension", "extension header truncated")
        _profile, words = _EXTENSION.unpack_from(data, offset)
        offset += _EXTENSION.size + 4 * words
        if offset > end:
            raise RtpError("extension", f"{words}-word extension does not fit in {end} bytes")
    if offset == end:
        raise RtpError("empty_payload")
    return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, bool(second & 0x80), csrc, data[offset:end])


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """An audio encoding with its RTP clock rate (samples per second per channel) and channel count."""

    encoding: str
    rate: int
    channels: int


ENCODINGS = ("PCMU", "PCMA", "L16")
"""Encodings :func:`decode_payload` understands."""

STATIC_FORMATS: Mapping[int, PayloadFormat] = {
    0: PayloadFormat("PCMU", 8000, 1),
    8: PayloadFormat("PCMA", 8000, 1),
    10: PayloadFormat("L16", 44100, 2),
    11: PayloadFormat("L16", 44100, 1),
}
"""The audio payload types of RFC 3551 table 4 that are decoded."""

DYNAMIC_PAYLOAD_TYPES = range(96, 128)


def payload_formats(dynamic: Mapping[int, tuple[str, int, int]] | None = None) -> dict[int, PayloadFormat]:
    """The static formats plus dynamic ones such as ``{96: ("L16", 16000, 1)}`` (as negotiated in SDP).

    A bad mapping is a configuration error (``ValueError``), caught at start rather than per packet.
    """
    formats = dict(STATIC_FORMATS)
    for payload_type, (encoding, rate, channels) in (dynamic or {}).items():
        if payload_type not in DYNAMIC_PAYLOAD_TYPES:
            raise ValueError(f"payload type {payload_type} is not dynamic (96-127)")
        if encoding not in ENCODINGS:
            raise ValueError(f"payload type {payload_type}: encoding {encoding!r} is not one of {ENCODINGS}")
        if rate <= 0 or channels <= 0:
            raise ValueError(f"payload type {payload_type}: rate and channels must be positive")
        formats[payload_type] = PayloadFormat(encoding, int(rate), int(channels))
    return formats


def payload_format(payload_type: int, formats: Mapping[int, PayloadFormat]) -> PayloadFormat:
    """The format of a payload type; one not configured raises ``RtpError("payload_type")`` (comfort noise and
    telephone events among them: the jitter buffer fills their time like any gap)."""
    fmt = formats.get(payload_type)
    if fmt is None:
        raise RtpError("payload_type", f"payload type {payload_type} is not configured")
    return fmt


_G711_FLOAT = {
    "PCMU": (ULAW_TABLE.astype(np.float32) * np.float32(PCM_SCALE)),
    "PCMA": (ALAW_TABLE.astype(np.float32) * np.float32(PCM_SCALE)),
}
"""Float sample of each G.711 code: decoding and scaling in one lookup."""

_EMPTY = np.zeros(0, dtype=np.float32)
_EMPTY.flags.writeable = False


def check_payload(payload: bytes, fmt: PayloadFormat) -> None:
    """Raise ``RtpError("payload_length")`` for a payload that does not hold a whole number of sample frames."""
    if len(payload) % ((2 if fmt.encoding == "L16" else 1) * fmt.channels):
        raise RtpError("payload_length", f"{len(payload)} bytes of {fmt.encoding}/{fmt.channels}")


def decode_payload(payload: bytes, fmt: PayloadFormat) -> np.ndarray:
    """Mono float32 samples (±1) at ``fmt.rate``; channels are averaged. A payload that does not hold a whole
    number of sample frames raises ``RtpError("payload_length")``."""
    check_payload(payload, fmt)
    if fmt.encoding == "L16":
        samples = np.frombuffer(payload, dtype=">i2").astype(np.float32) * np.float32(PCM_SCALE)
    else:
        samples = _G711_FLOAT[fmt.encoding][np.frombuffer(payload, dtype=np.uint8)]
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)
    return samples


def decode_payloads(
    payloads: Sequence[bytes], formats: Sequence[PayloadFormat]
) -> tuple[list[np.ndarray], list[float]]:
    """Each payload's samples (as :func:`decode_payload`, lengths checked already) and their mean square.

    The mono G.711 payloads of a batch, nearly all of them on a telephone network, are decoded together: one
    join, one table lookup and one reduction per encoding instead of a few numpy calls per packet. Their
    samples are views of one array per batch.
    """
    samples: list[np.ndarray] = [_EMPTY] * len(payloads)
    power = [0.0] * len(payloads)
    groups: dict[str, list[int]] = {}
    alone: list[int] = []
    for i, fmt in enumerate(formats):
        if fmt.channels == 1 and fmt.encoding in _G711_FLOAT:
            groups.setdefault(fmt.encoding, []).append(i)
        else:
            alone.append(i)
    for encoding, picked in groups.items():
        if len(picked) == 1:
            alone += picked
            continue
        decoded = _G711_FLOAT[encoding][np.frombuffer(b"".join([payloads[i] for i in picked]), dtype=np.uint8)]
        sizes = np.fromiter((len(payloads[i]) for i in picked), dtype=np.int64, count=len(picked))
        ends = np.cumsum(sizes)
        starts = ends - sizes
        squares = np.add.reduceat(decoded * decoded, starts) / sizes
        for i, start, end, square in zip(picked, starts.tolist(), ends.tolist(), squares.tolist(), strict=True):
            samples[i] = decoded[start:end]
            power[i] = square
    for i in alone:
        samples[i] = decode_payload(payloads[i], formats[i])
        power[i] = float(np.dot(samples[i], samples[i])) / samples[i].size
    return samples, power
