"""G.711 against the standard's quantisation tables, exhaustively over all 256 codes and all int16 samples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from emoscribe.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def _table(starts: list[int], steps: list[int], scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower decision values and reconstruction values (the interval midpoints) of the 128 magnitude intervals of
    one sign, segment by segment as G.711 tabulates them, on the 16-bit scale."""
    lower = np.array([start + step * m for start, step in zip(starts, steps, strict=True) for m in range(16)])
    middle = np.array(
        [start + step * m + step // 2 for start, step in zip(starts, steps, strict=True) for m in range(16)]
    )
    return lower, middle * scale


# Mu-law, 14-bit magnitudes: segment edges 31, 95, 223, ... 8159 with steps 2 .. 256; the first interval (0) is
# half as wide, which the start of -1 expresses.
ULAW_LOWER, ULAW_LEVELS = _table([-1, 31, 95, 223, 479, 991, 2015, 4063], [2 << s for s in range(8)], 4)
# A-law, 13-bit magnitudes: two segments of step 2, then steps 4 .. 128 from 64 up to 4096.
ALAW_LOWER, ALAW_LEVELS = _table([0, 32, 64, 128, 256, 512, 1024, 2048], [2, 2, 4, 8, 16, 32, 64, 128], 8)


def _expected_ulaw_codes() -> np.ndarray:
    """Code of segment s, step m for each sign: the bits (sign, s, m) inverted, sign bit set for positive."""
    interval = np.arange(128)
    return np.concatenate([(~interval & 0x7F) | 0x80, ~interval & 0x7F])


def test_ulaw_decodes_every_code_to_the_standard_value() -> None:
    codes = _expected_ulaw_codes()
    expected = np.zeros(256, dtype=np.int64)
    expected[codes[:128]] = ULAW_LEVELS
    expected[codes[128:]] = -ULAW_LEVELS
    assert np.array_equal(ulaw_decode(ALL_CODES), expected)
    assert ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xEF])).tolist() == [0, 0, 32124, -32124, 132]


def test_alaw_decodes_every_code_to_the_standard_value() -> None:
    interval = np.arange(128)
    expected = np.zeros(256, dtype=np.int64)
    expected[(interval | 0x80) ^ 0x55] = ALAW_LEVELS
    expected[interval ^ 0x55] = -ALAW_LEVELS
    assert np.array_equal(alaw_decode(ALL_CODES), expected)
    assert alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]


def test_codes_reencode_to_themselves() -> None:
    ulaw = ulaw_encode(ulaw_decode(ALL_CODES))
    assert np.array_equal(ulaw[ALL_CODES != 0x7F], ALL_CODES[ALL_CODES != 0x7F])
    assert ulaw[0x7F] == 0xFF  # negative zero decodes to 0, which encodes as positive zero
    assert np.array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


@pytest.mark.parametrize(
    ("encode", "decode", "lower", "levels", "shift"),
    [
        (ulaw_encode, ulaw_decode, ULAW_LOWER, ULAW_LEVELS, 2),
        (alaw_encode, alaw_decode, ALAW_LOWER, ALAW_LEVELS, 3),
    ],
    ids=["ulaw", "alaw"],
)
def test_every_sample_gets_the_level_of_its_decision_interval(encode, decode, lower, levels, shift) -> None:
    x = ALL_SAMPLES.astype(np.int64)
    magnitude = np.where(x < 0, -1 - x, x) >> shift  # one's complement magnitude on the 14/13-bit scale
    level = levels[np.searchsorted(lower, magnitude, side="right") - 1]
    assert np.array_equal(decode(encode(ALL_SAMPLES)), np.where(x < 0, -level, level))


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode], ids=["ulaw", "alaw"])
def test_monotonic_and_symmetric(encode) -> None:
    decode = ulaw_decode if encode is ulaw_encode else alaw_decode
    decoded = decode(encode(ALL_SAMPLES)).astype(np.int64)
    assert np.all(np.diff(decoded) >= 0)
    positive = ALL_SAMPLES[32768:]
    assert np.array_equal(encode(-1 - positive), encode(positive) ^ 0x80)


def test_matches_audioop_over_all_samples() -> None:
    audioop = pytest.importorskip("audioop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        raw = ALL_SAMPLES.tobytes()
        ulaw = np.frombuffer(audioop.lin2ulaw(raw, 2), dtype=np.uint8)
        alaw = np.frombuffer(audioop.lin2alaw(raw, 2), dtype=np.uint8)
        codes = ALL_CODES.tobytes()
        assert np.array_equal(ulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes, 2), dtype=np.int16))
        assert np.array_equal(alaw_decode(codes), np.frombuffer(audioop.alaw2lin(codes, 2), dtype=np.int16))
        # audioop negates negative samples for mu-law instead of taking the one's complement: its thresholds
        # sit one 14-bit step (4) lower, so it agrees with this module on x + 4.
        below = ALL_SAMPLES[ALL_SAMPLES < 0].astype(np.int32)
        shifted = np.frombuffer(audioop.lin2ulaw((below + 4).astype(np.int16).tobytes(), 2), dtype=np.uint8)
    assert np.array_equal(alaw_encode(ALL_SAMPLES), alaw)
    assert np.array_equal(ulaw_encode(ALL_SAMPLES)[32768:], ulaw[32768:])
    assert np.array_equal(ulaw_decode(ulaw_encode(below.astype(np.int16))), ulaw_decode(shifted))


def test_types() -> None:
    assert ulaw_decode(bytearray(b"\xff\x80")).dtype == np.int16
    assert alaw_encode(np.zeros((2, 3), dtype=np.int16)).shape == (2, 3)
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(4))
    with pytest.raises(TypeError, match="uint8"):
        alaw_decode(np.zeros(4, dtype=np.int16))
