"""Building RTP packets for tests (RFC 3550 fixed header, CSRCs, extension, padding)."""

from __future__ import annotations

import struct


def build_rtp(
    payload: bytes = b"\xff" * 160,
    *,
    payload_type: int = 0,
    sequence: int = 0,
    timestamp: int = 0,
    ssrc: int = 0x1234ABCD,
    marker: bool = False,
    csrc: tuple[int, ...] = (),
    extension: bytes | None = None,
    padding: int = 0,
    version: int = 2,
) -> bytes:
    """An RTP packet with the given fields; ``extension`` is the extension body (a multiple of 4 bytes)."""
    first = version << 6 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | len(csrc)
    second = (0x80 if marker else 0) | payload_type
    packet = struct.pack("!BBHII", first, second, sequence, timestamp, ssrc)
    packet += b"".join(struct.pack("!I", source) for source in csrc)
    if extension is not None:
        packet += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    return packet + payload + (bytes(padding - 1) + bytes([padding]) if padding else b"")
