"""Streaming 2x interpolation from 8 kHz telephony audio to the daemon's 16 kHz, for nearly every RTP leg.

Upsampling by exactly 2 needs no general resampler: every other output sample is an input sample, and the
others come from one half-band FIR filter (Kaiser-windowed sinc, 64 taps at 8 kHz). It is flat to 0.001 dB up to
3.4 kHz, attenuates the images at and above 4.4 kHz by more than 90 dB, and delays the audio by 4 ms. One numpy
correlation per packet costs about a third of soxr's variable-rate mode (the fixed-rate mode is as cheap but
holds audio back in 100 ms blocks), which was half of the RTP receive path's CPU time. Other rates go through
soxr.
"""

from __future__ import annotations

import numpy as np

HALF_TAPS = 32
"""Input samples the filter reaches on each side of the point it interpolates (its delay, at 8 kHz)."""
KAISER_BETA = 10.0


def _phase() -> np.ndarray:
    """The filter's odd phase: a half-band sinc's taps at odd distances from its centre, normalised to unit gain
    (its even phase is the centre tap alone, which passes the input samples through)."""
    length = 4 * HALF_TAPS - 1
    offsets = np.arange(length) - (length - 1) / 2
    prototype = np.sinc(offsets / 2) * np.kaiser(length, KAISER_BETA)
    phase = prototype[0::2]
    return (phase / phase.sum()).astype(np.float32)


PHASE = _phase()
PHASE.flags.writeable = False
_LEAD = np.zeros(HALF_TAPS - 1, dtype=np.float32)
_FLUSH = np.zeros(HALF_TAPS, dtype=np.float32)


class Upsampler2x:
    """One stream's 8 to 16 kHz interpolator, called like ``soxr.ResampleStream``: each chunk in, what can be
    computed out (twice the input, once the first 4 ms are in); ``last=True`` flushes the rest."""

    __slots__ = ("_history",)

    def __init__(self) -> None:
        self._history = _LEAD

    def resample_chunk(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        window = np.concatenate((self._history, samples, _FLUSH) if last else (self._history, samples))
        count = window.size - 2 * HALF_TAPS + 1
        if count <= 0:
            self._history = window
            return np.zeros(0, dtype=np.float32)
        out = np.empty(2 * count, dtype=np.float32)
        out[0::2] = window[HALF_TAPS - 1 : HALF_TAPS - 1 + count]
        out[1::2] = np.correlate(window, PHASE, "valid")  # the filter is symmetric: no need to flip it
        self._history = _LEAD if last else window[count:]
        return out
