"""ITU-T G.711 companding (mu-law and A-law) for 16-bit linear PCM, vectorised with numpy.

The tables :data:`ULAW_TABLE`/:data:`ALAW_TABLE` decode (one lookup per byte; the RTP parser scales them to
float once, to decode payloads straight to float); training's telephone channel runs audio through the
encoders. Both follow the standard's segment and mantissa definition on the 14-bit (mu-law) or 13-bit (A-law)
magnitude of left-justified 16-bit samples.

Negative samples take the one's complement of the sample as their magnitude, as the ITU-T G.191 reference
encoder does, so the quantiser is symmetric: ``x`` and ``-1 - x`` give codes of opposite sign and equal magnitude.
(Python's ``audioop`` does this for A-law but negates for mu-law, which moves its negative mu-law decision
thresholds one 14-bit step: it maps -1 to -8 where this module maps it to 0.)
"""

from __future__ import annotations

import numpy as np

ULAW_BIAS = 0x84
"""The mu-law bias (132 on the 16-bit scale, 33 on the 14-bit one): it makes segment edges powers of two."""

_ULAW_BIAS_14 = ULAW_BIAS >> 2
_ULAW_MAX_BIASED = 0x1FFF
"""Largest biased 14-bit magnitude; larger ones saturate at the top code."""

ALAW_TOGGLE = 0x55
"""A-law inverts the even bits of each code, which keeps idle channels from sending long runs of zeros."""


def _codes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(data, dtype=np.uint8)
    codes = np.asarray(data)
    if codes.dtype != np.uint8:
        raise TypeError(f"G.711 codes must be bytes or a uint8 array, got {codes.dtype}")
    return codes


def _linear(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encoders take int16 samples, got {samples.dtype}")
    return samples.astype(np.int32)


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Bits needed for each non-negative integer (0 for 0), without a Python loop."""
    return np.frexp(values.astype(np.float64))[1]


def _ulaw_table() -> np.ndarray:
    code = ~np.arange(256) & 0xFF
    segment = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + ULAW_BIAS) << segment) - ULAW_BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    code = np.arange(256) ^ ALAW_TOGGLE
    segment = (code >> 4) & 0x07
    step = (code & 0x0F) << 4
    magnitude = np.where(segment == 0, step + 8, (step + 0x108) << np.maximum(segment - 1, 0))
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


ULAW_TABLE = _ulaw_table()
"""Linear value of each mu-law code (both 0x7F and 0xFF, negative and positive zero, decode to 0)."""

ALAW_TABLE = _alaw_table()
"""Linear value of each A-law code (A-law has no zero level: the smallest are +-8)."""

ULAW_TABLE.flags.writeable = False
ALAW_TABLE.flags.writeable = False


def ulaw_decode(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """16-bit linear samples of mu-law codes (a PCMU payload)."""
    return ULAW_TABLE[_codes(data)]


def alaw_decode(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """16-bit linear samples of A-law codes (a PCMA payload)."""
    return ALAW_TABLE[_codes(data)]


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """Mu-law codes of int16 samples: 8 segments of 16 steps on the biased 14-bit magnitude, bits inverted."""
    x = _linear(samples)
    negative = x < 0
    biased = np.minimum((np.where(negative, ~x, x) >> 2) + _ULAW_BIAS_14, _ULAW_MAX_BIASED)
    segment = _bit_length(biased) - 6  # biased magnitudes 32..8191 span bit lengths 6..13
    mantissa = (biased >> (segment + 1)) & 0x0F
    code = np.where(negative, 0x80, 0) | (segment << 4) | mantissa
    return (~code & 0xFF).astype(np.uint8)


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    """A-law codes of int16 samples: 8 segments of 16 steps on the 13-bit magnitude, even bits inverted."""
    x = _linear(samples)
    negative = x < 0
    magnitude = np.where(negative, ~x, x) >> 3
    segment = np.maximum(_bit_length(magnitude) - 5, 0)  # magnitudes below 32 share segment 0
    mantissa = (magnitude >> np.maximum(segment, 1)) & 0x0F
    code = np.where(negative, 0, 0x80) | (segment << 4) | mantissa
    return (code ^ ALAW_TOGGLE).astype(np.uint8)
