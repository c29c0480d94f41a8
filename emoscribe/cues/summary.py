"""Utterance statistics from frame contours: the one place where contours become :class:`Cues`."""

from __future__ import annotations

import numpy as np

from emoscribe.cues.contours import Contours, CueSettings
from emoscribe.cues.model import Cues
from emoscribe.cues.stats import median, quantile
from emoscribe.cues.syllables import segment

SEMITONE_REFERENCE_HZ = 100.0


def summarise(
    contours: Contours,
    duration_s: float,
    settings: CueSettings,
    clipped_fraction: float = 0.0,
    dc_offset: float = 0.0,
) -> Cues:
    """Summarise contours into cues; anything without the frames to define it stays ``None``.

    Voice measures use only the pitch frames inside sounding intervals, so quiet voicing in pauses and around
    the utterance (breaths, room noise, the segmenter's padding) does not dilute them.
    """
    base = {"duration_s": duration_s, "clipped_fraction": clipped_fraction, "dc_offset": dc_offset}
    timing = segment(contours, settings)
    if timing is None:
        return Cues(**base)

    speech = timing.sounding_at(contours.pitch_times)
    f0 = contours.f0_hz[speech]
    voiced = np.isfinite(f0)
    f0 = f0[voiced]
    has_voice = f0.size > 0
    syllables = timing.nuclei_s.size
    formants = contours.formants_hz[speech]
    spectral = contours.spectral[speech]

    return Cues(
        **base,
        speech_span_s=timing.span_s,
        phonation_time_s=timing.phonation_s,
        **_f0_stats(f0),
        **_level_stats(contours.intensity_db[timing.sounding]),
        syllable_count=syllables if has_voice else None,
        speech_rate=syllables / timing.span_s if has_voice else None,
        articulation_rate=syllables / timing.phonation_s if has_voice else None,
        pause_count=timing.pause_count,
        pause_ratio=timing.pause_s / timing.span_s,
        voiced_fraction=float(voiced.mean()) if speech.any() else None,
        jitter_local=_ratio(contours.jitter_weighted, contours.periods),
        shimmer_local=_ratio(contours.shimmer_weighted, contours.periods),
        hnr_db=_mean(contours.hnr_db[speech]),
        alpha_ratio_db=_mean(spectral[:, 0]),
        hammarberg_db=_mean(spectral[:, 1]),
        slope_0_500_db_per_khz=_mean(spectral[:, 2]),
        slope_500_1500_db_per_khz=_mean(spectral[:, 3]),
        f1_mean_hz=_mean(formants[:, 0]),
        f2_mean_hz=_mean(formants[:, 1]),
        f3_mean_hz=_mean(formants[:, 2]),
    )


def _f0_stats(f0: np.ndarray) -> dict[str, float | None]:
    """Mean, median, spread and 5-95 % range of voiced F0, in Hz and in semitones re 100 Hz."""
    if f0.size == 0:
        return {}
    semitones = 12.0 * np.log2(f0 / SEMITONE_REFERENCE_HZ)
    stats: dict[str, float | None] = {
        "f0_mean_hz": float(f0.mean()),
        "f0_median_hz": median(f0),
        "f0_mean_st": float(semitones.mean()),
        "f0_median_st": median(semitones),
    }
    if f0.size >= 2:
        p5, p95 = quantile(f0, 0.05), quantile(f0, 0.95)
        stats |= {
            "f0_sd_hz": float(f0.std(ddof=1)),
            "f0_p5_hz": float(p5),
            "f0_p95_hz": float(p95),
            "f0_range_hz": float(p95 - p5),
            "f0_sd_st": float(semitones.std(ddof=1)),
            "f0_range_st": float(12.0 * np.log2(p95 / p5)),
        }
    return stats


def _level_stats(level: np.ndarray) -> dict[str, float | None]:
    """Intensity of the sounding frames: energy mean (as Praat averages dB), spread and 5-95 % range."""
    stats: dict[str, float | None] = {"intensity_mean_db": float(10.0 * np.log10(np.mean(10.0 ** (level / 10.0))))}
    if level.size >= 2:
        p5, p95 = quantile(level, 0.05), quantile(level, 0.95)
        stats |= {"intensity_sd_db": float(level.std(ddof=1)), "intensity_range_db": float(p95 - p5)}
    return stats


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _ratio(weighted: float, weight: float) -> float | None:
    return weighted / weight if weight > 0 else None
