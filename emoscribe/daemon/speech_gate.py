"""A quality gate for closed utterances: telephone tones and synthetic music that voice detectors take for speech.

Two physical properties separate them from speech:

- **Steady tones.** Call-progress tones, DTMF and synthetic music are sums of sinusoids of exactly constant
  frequency, so the strongest spectral peak stays put from frame to frame. A voice never holds its pitch that
  well: intonation and jitter move every harmonic by more than half a hertz within 32 ms. ``tone_lock`` is the
  share of sounding frame pairs (64 ms Hann windows, 32 ms apart) whose strongest peak between 100 and
  3800 Hz (the telephone band, so 8 kHz input scores alike) moved by less than 0.5 Hz.
- **Flat envelope.** A ringback burst is one level for two seconds (its two tones beat at 40 Hz, too close to
  resolve, so it escapes ``tone_lock``). Speech rises and falls with every syllable. ``envelope_iqr_db`` is the
  interquartile range of the frame levels of the sounding frames.

Thresholds, chosen on data (``tests/test_speech_gate.py`` holds the synthetic cases): over all 4000 RAVDESS and
TESS clips of the shared corpus ``tone_lock`` reaches at most 0.34 (99th percentile 0.18; the highest are
monotone TESS "neutral" words) and ``envelope_iqr_db`` at least 1.5 dB (1st percentile 3.0 dB), while DTMF
and music on hold, clean, with white noise at 20 dB SNR or band-limited to 8 kHz sampling, score
``tone_lock`` of 0.49 or more, and ringback an ``envelope_iqr_db`` of 0.23 dB or less. The thresholds sit
between: 0.40 and 1.0 dB. Known limit: real music with singing or vibrato passes as speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from emoscribe.daemon.frames import SAMPLE_RATE

WINDOW = 1024
"""64 ms: 15.6 Hz bins resolve the tones of a DTMF digit and a chord's notes; still fits a 100 ms DTMF burst."""
HOP = 256
LAG = 2
"""Frames compared are ``LAG`` hops (32 ms) apart."""
BAND_HZ = (100.0, 3800.0)
LOCK_HZ = 0.5
SOUNDING_DB = 25.0
"""Frames within this many dB of the 95th-percentile frame level count as sounding."""
FLOOR_DB = -70.0
"""Frames below this level (dB re full scale) never count as sounding: digital silence and dither."""
MIN_PAIRS = 4
"""Fewer sounding frame pairs than this cannot be judged, and pass."""

TONE_LOCK_MAX = 0.40
ENVELOPE_IQR_MIN_DB = 1.0


@dataclass(frozen=True, slots=True)
class GateResult:
    """``speech`` False with ``reason`` (``silence``, ``steady_tones``, ``flat_envelope``) for a rejection."""

    speech: bool
    reason: str | None
    scores: dict[str, float]


def _frame_spectra(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band power spectra of the frames and their levels in dB re full scale."""
    if samples.size < WINDOW:
        samples = np.pad(samples, (0, WINDOW - samples.size))
    window = np.hanning(WINDOW)
    frames = sliding_window_view(samples, WINDOW)[::HOP]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / SAMPLE_RATE)
    band = power[:, (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])]
    # Parseval: mean square of the windowed frame, one-sided spectrum; a full-scale sine is about -3 dB.
    level = 10.0 * np.log10(2.0 * band.sum(axis=1) / (WINDOW * np.sum(window**2)) + 1e-20)
    return band, level


def _peak_hz(band: np.ndarray) -> np.ndarray:
    """Frequency of each frame's strongest peak, refined by a parabola through the log power around it."""
    first_bin = int(np.ceil(BAND_HZ[0] * WINDOW / SAMPLE_RATE))
    k = np.clip(np.argmax(band, axis=1), 1, band.shape[1] - 2)
    rows = np.arange(band.shape[0])
    left, centre, right = (np.log(band[rows, k + d] + 1e-30) for d in (-1, 0, 1))
    curvature = left - 2.0 * centre + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
    return (first_bin + k + offset) * SAMPLE_RATE / WINDOW


def check(samples: np.ndarray) -> GateResult:
    """Judge a closed utterance (16 kHz float PCM): speech, or a tone / music that fooled the VAD."""
    samples = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    band, level = _frame_spectra(samples)
    sounding = level >= max(np.percentile(level, 95) - SOUNDING_DB, FLOOR_DB)
    scores: dict[str, float] = {"sounding_frames": float(sounding.sum())}
    if not sounding.any():
        return GateResult(False, "silence", scores)
    pairs = sounding[LAG:] & sounding[:-LAG]
    if pairs.sum() < MIN_PAIRS:
        return GateResult(True, None, scores)
    peaks = _peak_hz(band)
    drift = np.abs(peaks[LAG:] - peaks[:-LAG])[pairs]
    quartiles = np.percentile(level[sounding], [25, 75])
    scores["tone_lock"] = float(np.mean(drift < LOCK_HZ))
    scores["envelope_iqr_db"] = float(quartiles[1] - quartiles[0])
    if scores["tone_lock"] >= TONE_LOCK_MAX:
        return GateResult(False, "steady_tones", scores)
    if scores["envelope_iqr_db"] < ENVELOPE_IQR_MIN_DB:
        return GateResult(False, "flat_envelope", scores)
    return GateResult(True, None, scores)
