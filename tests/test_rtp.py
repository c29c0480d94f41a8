"""RTP parsing and payload decoding: hand-built packets, every rejection reason, and fuzzing."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rtp_packets import build_rtp

from emoscribe.daemon.rtp import (
    PayloadFormat,
    RtpError,
    RtpPacket,
    decode_payload,
    parse_rtp,
    payload_format,
    payload_formats,
)
from emoscribe.g711 import alaw_decode, ulaw_decode


def reason(data: bytes) -> str:
    with pytest.raises(RtpError) as caught:
        parse_rtp(data)
    return caught.value.reason


def test_plain_packet() -> None:
    packet = parse_rtp(build_rtp(b"\x01\x02", payload_type=8, sequence=65535, timestamp=2**32 - 1, ssrc=7))
    assert packet == RtpPacket(8, 65535, 2**32 - 1, 7, False, (), b"\x01\x02")


def test_padding_extension_csrc_and_marker_are_read_and_removed() -> None:
    data = build_rtp(
        b"audio", marker=True, csrc=(1, 2, 3), extension=b"\xaa" * 8, padding=3, payload_type=96, sequence=9
    )
    packet = parse_rtp(data)
    assert packet.payload == b"audio"
    assert packet.csrc == (1, 2, 3)
    assert packet.marker
    assert packet.payload_type == 96
    assert packet.sequence == 9


def test_empty_extension_is_allowed() -> None:
    assert parse_rtp(build_rtp(b"x", extension=b"")).payload == b"x"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "short"),
        (build_rtp(b"")[:11], "short"),
        (build_rtp(version=1), "version"),
        (build_rtp(version=0), "version"),
        (build_rtp(b"ab", padding=1)[:-1] + b"\x00", "padding"),
        (build_rtp(b"ab", padding=1)[:-1] + b"\x10", "padding"),
        (build_rtp(b"", csrc=(1, 2))[:-3], "csrc"),
        (build_rtp(b"", extension=b"")[:14], "extension"),
        (build_rtp(b"", extension=b"\x00" * 8)[:-4], "extension"),
        (build_rtp(b""), "empty_payload"),
        (build_rtp(b"", padding=4), "empty_payload"),
        (build_rtp(b"", csrc=(5,)), "empty_payload"),
        (bytes([0x80, 200]) + b"\x00\x06" + b"\x00" * 24, "rtcp"),
        (bytes([0x81, 201, 0, 1, 0, 0, 0, 1]), "rtcp"),
        (bytes([0x81, 203, 0, 1, 0, 0, 0, 1]), "rtcp"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_malformed_packets_are_rejected_with_their_reason(data: bytes, expected: str) -> None:
    assert reason(data) == expected


def test_payload_types_64_to_95_with_marker_are_not_mistaken_for_audio() -> None:
    assert reason(build_rtp(payload_type=72, marker=True)) == "rtcp"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError as error:
        assert error.reason
    else:
        assert packet.payload
        assert len(packet.payload) <= len(data) - 12


@given(
    payload=st.binary(min_size=1, max_size=64),
    payload_type=st.integers(0, 127).filter(lambda pt: not 64 <= pt < 96),
    sequence=st.integers(0, 2**16 - 1),
    timestamp=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    extension=st.none() | st.binary(max_size=12).map(lambda body: body[: len(body) // 4 * 4]),
    padding=st.integers(0, 255),
)
def test_round_trip(
    payload: bytes,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    marker: bool,
    csrc: tuple[int, ...],
    extension: bytes | None,
    padding: int,
) -> None:
    data = build_rtp(
        payload,
        payload_type=payload_type,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        marker=marker,
        csrc=csrc,
        extension=extension,
        padding=padding,
    )
    assert parse_rtp(data) == RtpPacket(payload_type, sequence, timestamp, ssrc, marker, csrc, payload)


def test_g711_payloads_decode_through_the_tables() -> None:
    codes = bytes(range(256))
    formats = payload_formats()
    pcmu = decode_payload(codes, payload_format(0, formats))
    pcma = decode_payload(codes, payload_format(8, formats))
    assert pcmu.dtype == np.float32
    np.testing.assert_array_equal(pcmu, ulaw_decode(codes) / np.float32(32768))
    np.testing.assert_array_equal(pcma, alaw_decode(codes) / np.float32(32768))
    assert np.abs(pcmu).max() < 1.0


def test_l16_is_big_endian_and_stereo_is_averaged() -> None:
    formats = payload_formats({96: ("L16", 16000, 1)})
    assert payload_format(96, formats) == PayloadFormat("L16", 16000, 1)
    mono = decode_payload(struct.pack("!3h", 16384, -32768, 1), formats[96])
    np.testing.assert_array_equal(mono, np.array([0.5, -1.0, 1 / 32768], dtype=np.float32))
    assert payload_format(10, formats) == PayloadFormat("L16", 44100, 2)
    stereo = decode_payload(struct.pack("!4h", 16384, 0, -16384, -16384), formats[10])
    np.testing.assert_array_equal(stereo, np.array([0.25, -0.5], dtype=np.float32))


@pytest.mark.parametrize(("payload", "pt"), [(b"\x00" * 3, 11), (b"\x00" * 6, 10)])
def test_l16_payload_of_partial_sample_frames_is_rejected(payload: bytes, pt: int) -> None:
    with pytest.raises(RtpError) as caught:
        decode_payload(payload, payload_format(pt, payload_formats()))
    assert caught.value.reason == "payload_length"


@pytest.mark.parametrize("pt", [13, 18, 96, 101])
def test_unconfigured_payload_type_is_rejected(pt: int) -> None:
    with pytest.raises(RtpError) as caught:
        payload_format(pt, payload_formats())
    assert caught.value.reason == "payload_type"


@pytest.mark.parametrize(
    "mapping",
    [{8: ("L16", 16000, 1)}, {96: ("opus", 48000, 2)}, {97: ("L16", 0, 1)}, {98: ("PCMU", 8000, 0)}],
)
def test_bad_dynamic_mappings_are_configuration_errors(mapping: dict[int, tuple[str, int, int]]) -> None:
    with pytest.raises(ValueError, match="payload type"):
        payload_formats(mapping)
