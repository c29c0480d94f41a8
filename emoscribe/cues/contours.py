"""Frame-level analysis of one stretch of audio with Praat: the contours that utterance cues are summarised from.

Cues are computed in two steps, contours then summary, so that a rolling tracker can analyse only the audio that
is new since its last report and keep appending contours, instead of re-running Praat over the whole utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import parselmouth
import soxr
from parselmouth.praat import call

from emoscribe.cues.signal import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class CueSettings:
    """Analysis parameters; the defaults follow Praat's own and de Jong & Wempe (2009) where they apply."""

    time_step_s: float = 0.01
    """Intensity frame step: syllable peaks need the resolution."""
    pitch_time_step_s: float = 0.02
    """De Jong & Wempe's pitch step; halves Praat's pitch cost, which dominates the budget, at no loss for
    utterance statistics."""
    pitch_floor_hz: float = 75.0
    pitch_ceiling_hz: float = 600.0
    intensity_min_pitch_hz: float = 50.0
    """De Jong & Wempe's intensity setting: a long window smooths the contour to one peak per syllable."""
    max_formant_hz: float = 5500.0
    """Praat's default formant ceiling for adult female voices; 5000 suits adult male voices better."""
    spectral_time_step_s: float = 0.04
    """Formants and spectral balance are sampled this often in voiced speech: their utterance means need no
    more, and they cost as much as the pitch analysis at its full rate."""
    silence_threshold_db: float = 25.0
    """Frames this many dB below the 99th-percentile intensity are silent (de Jong & Wempe 2009)."""
    silence_floor_db: float = 20.0
    """Frames below this absolute level (Praat dB, about -74 dBFS) are silent whatever the relative threshold,
    so that digital silence or dither never counts as speech."""
    min_pause_s: float = 0.3
    min_sounding_s: float = 0.1
    min_dip_db: float = 2.0
    """A syllable peak must rise this far above the dip that separates it from the next (de Jong & Wempe 2009)."""
    period_floor_s: float = 0.0001
    period_ceiling_s: float = 0.02
    max_period_factor: float = 1.3
    max_amplitude_factor: float = 1.6

    @property
    def window_s(self) -> float:
        """The longest analysis window (Praat's intensity window is 6.4 / minimum pitch long).

        It is both the context kept on each side of a frame and the shortest input that can be analysed at all.
        """
        return max(6.4 / self.intensity_min_pitch_hz, 3.0 / self.pitch_floor_hz, 0.05)


PITCH_RATE = 8000
"""Pitch, HNR, jitter and shimmer are measured on the telephone band (0-4 kHz): the same numbers for wideband
and G.711 input, and half the work for Praat's glottal-pulse search."""

SPECTRUM_SIZE = 512
"""32 ms frames at 16 kHz (31.25 Hz bins) for the spectral balance measures of voiced frames."""


@dataclass(slots=True)
class Contours:
    """Frame contours of an utterance, in utterance time (seconds).

    Voice measures are aligned with the pitch frames and hold NaN where a frame is unvoiced or the measure is
    undefined, so the summary can select frames by time (e.g. only those inside speech) for all of them at once.
    """

    pitch_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    f0_hz: np.ndarray = field(default_factory=lambda: np.empty(0))
    hnr_db: np.ndarray = field(default_factory=lambda: np.empty(0))
    intensity_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    intensity_db: np.ndarray = field(default_factory=lambda: np.empty(0))
    formants_hz: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    """F1-F3 per pitch frame."""
    spectral: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))
    """Per pitch frame: alpha ratio, Hammarberg index (dB), slopes 0-500 and 500-1500 Hz (dB/kHz)."""
    periods: float = 0.0
    jitter_weighted: float = 0.0
    shimmer_weighted: float = 0.0
    """Jitter and shimmer of each analysed stretch times its number of periods, so that stretches combine
    into a period-weighted mean; for a single stretch this is exactly Praat's value."""

    def extend(self, other: Contours) -> None:
        """Append the frames of a later stretch."""
        for name in (
            "pitch_times",
            "f0_hz",
            "hnr_db",
            "intensity_times",
            "intensity_db",
            "formants_hz",
            "spectral",
        ):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        self.periods += other.periods
        self.jitter_weighted += other.jitter_weighted
        self.shimmer_weighted += other.shimmer_weighted


def analyse(samples: np.ndarray, start_s: float, keep: tuple[float, float], settings: CueSettings) -> Contours:
    """Run Praat over ``samples`` (which begin at utterance time ``start_s``) and keep the frames in ``keep``.

    The caller passes :attr:`CueSettings.window_s` of audio beyond ``keep`` where it has it, so kept frames
    see the same windows as in an analysis of the whole utterance.
    """
    lo, hi = keep
    sound = parselmouth.Sound(samples, sampling_frequency=SAMPLE_RATE, start_time=start_s)
    intensity = sound.to_intensity(minimum_pitch=settings.intensity_min_pitch_hz, time_step=settings.time_step_s)
    intensity_times, level = intensity.xs(), intensity.values[0]
    in_intensity = (intensity_times >= lo) & (intensity_times < hi)
    contours = Contours(intensity_times=intensity_times[in_intensity], intensity_db=level[in_intensity])

    active = intensity_times[(level >= settings.silence_floor_db) & (level >= level.max() - INACTIVE_DB)]
    first = int(max(0.0, (active.min() - settings.window_s - start_s) * SAMPLE_RATE)) if active.size else 0
    last = int(min(samples.size, (active.max() + settings.window_s - start_s) * SAMPLE_RATE)) if active.size else 0
    if last - first < settings.window_s * SAMPLE_RATE:
        return contours
    _add_voice(contours, samples[first:last], start_s + first / SAMPLE_RATE, lo, hi, settings)
    return contours


INACTIVE_DB = 40.0
"""Stretches this far below the loudest frame are too quiet to be voiced (Praat's pitch silence threshold is
0.03 of the peak, -30 dB), so the costly voice analyses skip them: typically the silence around an utterance."""


def _add_voice(
    contours: Contours,
    samples: np.ndarray,
    start_s: float,
    lo: float,
    hi: float,
    settings: CueSettings,
) -> None:
    """Pitch, HNR, formants, spectral balance, jitter and shimmer of the active stretch ``samples``."""
    narrowband = parselmouth.Sound(
        soxr.resample(samples, SAMPLE_RATE, PITCH_RATE), sampling_frequency=PITCH_RATE, start_time=start_s
    )
    pitch = narrowband.to_pitch_ac(
        time_step=settings.pitch_time_step_s,
        pitch_floor=settings.pitch_floor_hz,
        pitch_ceiling=settings.pitch_ceiling_hz,
    )
    pitch_times = pitch.xs()
    selected = pitch.selected_array
    in_pitch = (pitch_times >= lo) & (pitch_times < hi)
    f0 = selected["frequency"][in_pitch]
    voiced = f0 > 0
    pitch_times = pitch_times[in_pitch]
    contours.pitch_times = pitch_times
    contours.f0_hz = np.where(voiced, f0, np.nan)
    contours.hnr_db = hnr_from_strength(selected["strength"][in_pitch], voiced)
    contours.formants_hz = np.full((pitch_times.size, 3), np.nan)
    contours.spectral = np.full((pitch_times.size, 4), np.nan)
    if not voiced.any():
        return
    every = max(1, round(settings.spectral_time_step_s / settings.pitch_time_step_s))
    sampled = voiced & (np.round(pitch_times / settings.pitch_time_step_s).astype(int) % every == 0)
    contours.formants_hz[sampled] = _formants_at(samples, start_s, pitch_times[sampled], settings)
    contours.spectral[sampled] = spectral_balance(samples, start_s, pitch_times[sampled])
    _add_voice_quality(contours, narrowband, pitch, lo, hi, settings)


def hnr_from_strength(strength: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """HNR of each voiced frame from its normalised autocorrelation peak r: 10·log10(r / (1 - r)).

    This is Boersma's (1993) definition, the one Praat's Harmonicity uses, taken from the pitch analysis that is
    run anyway instead of a second cross-correlation pass that would cost several times the whole budget.
    """
    r = np.clip(strength, 1e-4, 1.0 - 1e-4)
    return np.where(voiced, 10.0 * np.log10(r / (1.0 - r)), np.nan)


def _formants_at(samples: np.ndarray, start_s: float, times: np.ndarray, settings: CueSettings) -> np.ndarray:
    """F1-F3 (Burg) interpolated at each voiced time; NaN where Praat finds no such formant.

    The sound is resampled with soxr to twice the formant ceiling first: Praat would otherwise do it with its
    own slower sinc resampler.
    """
    rate = 2.0 * settings.max_formant_hz
    narrow = soxr.resample(samples, SAMPLE_RATE, rate)
    sound = parselmouth.Sound(narrow, sampling_frequency=rate, start_time=start_s)
    formant = sound.to_formant_burg(
        time_step=settings.spectral_time_step_s, max_number_of_formants=5, maximum_formant=settings.max_formant_hz
    )
    values = [formant.get_value_at_time(n, t) for t in times for n in (1, 2, 3)]
    return np.array(values, dtype=float).reshape(-1, 3)


_FREQS = np.fft.rfftfreq(SPECTRUM_SIZE, 1.0 / SAMPLE_RATE)
_WINDOW = np.hanning(SPECTRUM_SIZE)
_BANDS = {
    name: (lo <= _FREQS) & (hi > _FREQS)
    for name, (lo, hi) in {
        "alpha_low": (50, 1000),
        "alpha_high": (1000, 5000),
        "hammarberg_low": (0, 2000),
        "hammarberg_high": (2000, 5000),
        "slope_low": (0, 500),
        "slope_high": (500, 1500),
    }.items()
}


def spectral_balance(samples: np.ndarray, start_s: float, times: np.ndarray) -> np.ndarray:
    """eGeMAPS spectral balance of voiced frames (Eyben et al. 2016): alpha ratio, Hammarberg index, slopes.

    Alpha ratio is the energy above 1 kHz relative to below (1-5 kHz over 50 Hz-1 kHz, dB), so brighter, more
    tense voices score higher; the Hammarberg index is the strongest peak in 0-2 kHz over that in 2-5 kHz (dB).
    Frames whose window would reach past the samples are NaN.
    """
    starts = np.round((times - start_s) * SAMPLE_RATE).astype(int) - SPECTRUM_SIZE // 2
    inside = (starts >= 0) & (starts + SPECTRUM_SIZE <= samples.size)
    result = np.full((times.size, 4), np.nan)
    if not inside.any():
        return result
    frames = samples[starts[inside, None] + np.arange(SPECTRUM_SIZE)] * _WINDOW
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-20
    level = 10.0 * np.log10(power)
    alpha = 10.0 * np.log10(power[:, _BANDS["alpha_high"]].sum(1) / power[:, _BANDS["alpha_low"]].sum(1))
    hammarberg = level[:, _BANDS["hammarberg_low"]].max(1) - level[:, _BANDS["hammarberg_high"]].max(1)
    result[inside] = np.column_stack(
        [alpha, hammarberg, _slope(level, _BANDS["slope_low"]), _slope(level, _BANDS["slope_high"])]
    )
    return result


def _slope(level: np.ndarray, band: np.ndarray) -> np.ndarray:
    """Least-squares slope of the dB spectrum over ``band``, per frame, in dB/kHz."""
    x = _FREQS[band] / 1000.0
    x = x - x.mean()
    y = level[:, band]
    return (y - y.mean(1, keepdims=True)) @ x / (x @ x)


def _add_voice_quality(
    contours: Contours,
    sound: parselmouth.Sound,
    pitch: parselmouth.Pitch,
    lo: float,
    hi: float,
    settings: CueSettings,
) -> None:
    """Praat's local jitter and shimmer over the kept span, weighted by its number of periods."""
    pulses = call([sound, pitch], "To PointProcess (cc)")
    period_args = (settings.period_floor_s, settings.period_ceiling_s, settings.max_period_factor)
    periods = call(pulses, "Get number of periods", lo, hi, *period_args)
    if periods < 2:
        return
    jitter = call(pulses, "Get jitter (local)", lo, hi, *period_args)
    shimmer = call([sound, pulses], "Get shimmer (local)", lo, hi, *period_args, settings.max_amplitude_factor)
    if np.isfinite(jitter) and np.isfinite(shimmer):
        contours.periods += periods
        contours.jitter_weighted += jitter * periods
        contours.shimmer_weighted += shimmer * periods
