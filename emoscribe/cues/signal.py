"""Validation of PCM before analysis: bad input becomes a clear error or a measured, reported condition."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
"""The one rate the cue analysis runs at; sources resample to it (``emoscribe.audio``)."""

CLIP_LEVEL = 0.999
"""Samples at or beyond this magnitude (of full scale 1.0) count as clipped."""


class AudioInputError(ValueError):
    """The samples cannot be analysed as 16 kHz mono PCM; the message says why and what to do."""


def as_mono_float(samples: object, sample_rate: int) -> np.ndarray:
    """Check shape, rate and finiteness and return float64 samples scaled to full scale 1.0.

    Integer PCM is scaled by its type's full scale. Float samples beyond ±1 are kept here and clipped by
    :func:`clip_to_full_scale`, so that the clipping is counted instead of hidden.
    """
    if sample_rate != SAMPLE_RATE:
        raise AudioInputError(
            f"sample rate {sample_rate} Hz: cue analysis needs {SAMPLE_RATE} Hz; "
            "resample first (emoscribe.audio.resample or load_audio)"
        )
    array = np.asarray(samples)
    if array.ndim != 1:
        raise AudioInputError(
            f"expected mono samples as a 1-D array, got shape {array.shape}; "
            "downmix first (emoscribe.audio.to_mono)"
        )
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        offset = (int(info.max) + int(info.min) + 1) / 2.0
        return (array.astype(np.float64) - offset) / (info.max - offset + 1)
    if array.dtype.kind != "f":
        raise AudioInputError(f"expected integer or float PCM, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.argmax(bad))
        raise AudioInputError(
            f"{int(bad.sum())} non-finite sample(s) (NaN or inf), the first at index {first} "
            f"({first / sample_rate:.3f} s); refusing to analyse corrupt audio"
        )
    return array


def clip_to_full_scale(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Clip to ±1 and return the number of samples that were at or past :data:`CLIP_LEVEL`."""
    clipped = int(np.count_nonzero(np.abs(samples) >= CLIP_LEVEL))
    return np.clip(samples, -1.0, 1.0), clipped
