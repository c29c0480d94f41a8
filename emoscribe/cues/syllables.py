"""Speech/pause segmentation and syllable nuclei from the intensity and pitch contours.

After de Jong & Wempe (2009), "Praat script to detect syllable nuclei and measure speech rate automatically",
Behavior Research Methods 41(2): a syllable nucleus is an intensity peak that lies above the silence threshold,
stands at least ``min_dip_db`` above the dip that separates it from the next peak, and is voiced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emoscribe.cues.contours import Contours, CueSettings
from emoscribe.cues.stats import quantile


@dataclass(frozen=True, slots=True)
class Timing:
    """Where the speech is: sounding intervals, pauses between them, and the syllable nuclei."""

    sounding: np.ndarray
    """Boolean per intensity frame: inside a sounding interval."""
    span_s: float
    phonation_s: float
    pause_count: int
    pause_s: float
    nuclei_s: np.ndarray
    intensity_times: np.ndarray

    def sounding_at(self, times: np.ndarray) -> np.ndarray:
        """Whether each time falls in a sounding interval (by its nearest intensity frame)."""
        if times.size == 0:
            return np.zeros(0, dtype=bool)
        index = np.clip(np.searchsorted(self.intensity_times, times), 0, self.intensity_times.size - 1)
        return self.sounding[index]


def segment(contours: Contours, settings: CueSettings) -> Timing | None:
    """Sounding intervals and syllable nuclei, or ``None`` when nothing in the contour is sounding."""
    times, level = contours.intensity_times, contours.intensity_db
    if times.size == 0:
        return None
    threshold = max(
        quantile(level, 0.99) - settings.silence_threshold_db,
        float(level.min()),
        settings.silence_floor_db,
    )
    step = settings.time_step_s
    runs = _runs(level >= threshold)
    # Gaps shorter than a pause are part of the speech; then sounding bits too short to be speech are dropped.
    merged: list[list[int]] = []
    for start, stop in runs:
        if merged and (start - merged[-1][1]) * step < settings.min_pause_s:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    intervals = [(a, b) for a, b in merged if (b - a) * step >= settings.min_sounding_s]
    if not intervals:
        return None
    sounding = np.zeros(times.size, dtype=bool)
    for start, stop in intervals:
        sounding[start:stop] = True
    span = (intervals[-1][1] - intervals[0][0]) * step
    phonation = float(sounding.sum()) * step
    return Timing(
        sounding=sounding,
        span_s=span,
        phonation_s=phonation,
        pause_count=len(intervals) - 1,
        pause_s=span - phonation,
        nuclei_s=_nuclei(contours, threshold, settings),
        intensity_times=times,
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index pairs of the True runs of ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _nuclei(contours: Contours, threshold: float, settings: CueSettings) -> np.ndarray:
    """Times of voiced intensity peaks that stand out from their surroundings.

    De Jong & Wempe test each peak against the dip before the next peak, which never counts the last one;
    here the last peak is tested against the dip between it and the end of the contour.
    """
    level = contours.intensity_db
    if level.size < 3:
        return np.empty(0)
    inner = level[1:-1]
    peaks = np.flatnonzero((inner > level[:-2]) & (inner >= level[2:]) & (inner > threshold)) + 1
    if peaks.size == 0:
        return np.empty(0)
    # The dip after each peak: the lowest level from it to the next peak (or the contour's end), both included.
    dips = np.minimum(np.minimum.reduceat(level, peaks), level[np.append(peaks[1:], level.size - 1)])
    peaks = peaks[level[peaks] - dips > settings.min_dip_db]
    times = contours.intensity_times[peaks]
    return times[_voiced_at(contours, times, settings.pitch_time_step_s)]


def _voiced_at(contours: Contours, times: np.ndarray, step_s: float) -> np.ndarray:
    """Whether the pitch frame nearest each time (within one pitch step) is voiced."""
    if contours.pitch_times.size == 0 or times.size == 0:
        return np.zeros(times.size, dtype=bool)
    frames = contours.pitch_times
    after = np.clip(np.searchsorted(frames, times), 0, frames.size - 1)
    before = np.maximum(after - 1, 0)
    to_before, to_after = np.abs(frames[before] - times), np.abs(frames[after] - times)
    earlier = to_before <= to_after  # on a tie the earlier frame, as an argmin over all frames would choose
    nearest = np.where(earlier, before, after)
    near_enough = np.where(earlier, to_before, to_after) <= step_s
    return near_enough & np.isfinite(contours.f0_hz[nearest])
