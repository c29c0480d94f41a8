"""Whole-utterance cue extraction, and rolling cues of the utterance so far while it is still being spoken."""

from __future__ import annotations

import numpy as np

from emoscribe.cues.contours import (
    SPECTRUM_SIZE,
    Contours,
    CueSettings,
    analyse,
    hnr_from_strength,
    spectral_balance,
)
from emoscribe.cues.frame_intensity import IntensityWindow
from emoscribe.cues.frame_pitch import PitchTracker
from emoscribe.cues.model import Cues
from emoscribe.cues.signal import SAMPLE_RATE, AudioInputError, as_mono_float, clip_to_full_scale
from emoscribe.cues.summary import summarise


def extract_cues(samples: object, sample_rate: int = SAMPLE_RATE, settings: CueSettings | None = None) -> Cues:
    """Cues of one whole utterance of mono PCM at 16 kHz.

    Raises :class:`~emoscribe.cues.signal.AudioInputError` (a ``ValueError``) for empty, non-finite,
    multi-channel or wrongly sampled input. Input shorter than the longest analysis window
    (``CueSettings.window_s``, 128 ms by default), silence and unvoiced sound give ``None`` for every cue they
    cannot define.
    """
    settings = settings or CueSettings()
    array = as_mono_float(samples, sample_rate)
    if array.size == 0:
        raise AudioInputError("no samples: cannot describe empty audio")
    clipped_samples, clipped = clip_to_full_scale(array)
    dc = float(clipped_samples.mean())
    duration = array.size / SAMPLE_RATE
    contours = Contours()
    if duration >= settings.window_s:
        contours = analyse(clipped_samples - dc, 0.0, (0.0, duration), settings)
    return summarise(contours, duration, settings, clipped_fraction=clipped / array.size, dc_offset=dc)


class CueTracker:
    """Fed PCM as it arrives, reports estimated cues of the utterance so far ("rolling cues") at a small cost.

    Each 10 ms intensity frame and 20 ms pitch frame is computed once, when its window is complete, by numpy
    re-implementations of Praat's intensity and autocorrelation pitch (:mod:`~emoscribe.cues.frame_intensity`,
    :mod:`~emoscribe.cues.frame_pitch`); a report summarises all frames so far with the same
    :func:`~emoscribe.cues.summary.summarise` as the whole-utterance cues. HNR comes from the pitch frames'
    strength and spectral balance from the voiced frames, as there; formants, jitter and shimmer need Praat's
    Burg and glottal-pulse analyses, which would cost more than everything else together, so rolling cues
    leave them ``None``. The newest 64 ms of intensity and 20 ms of pitch wait for their windows to fill.

    Rolling cues are estimates; the final cues of an utterance are :func:`extract_cues` of its samples (Praat,
    the reference). How close the last rolling report comes to them is measured in ``tests/test_tracker.py``.

    A chunk that fails validation is refused with :class:`~emoscribe.cues.signal.AudioInputError` and leaves
    what was already accepted untouched. Memory: the audio the next frames still need (128 ms) and what came
    since the last report, and the contours (about 1 kB per second); the segmenter bounds the utterance length.
    """

    def __init__(self, settings: CueSettings | None = None) -> None:
        self.settings = settings or CueSettings()
        self._pending: list[np.ndarray] = []
        self._tail = np.zeros(0)
        self._tail_from = 0
        """Utterance sample index of ``_tail[0]``."""
        self._samples = 0
        self._clipped = 0
        self._sum = 0.0
        self._pitch = PitchTracker(
            self.settings.pitch_floor_hz, self.settings.pitch_ceiling_hz, self.settings.pitch_time_step_s
        )
        self._intensity = IntensityWindow(self.settings.intensity_min_pitch_hz, SAMPLE_RATE)
        self._intensity_step = round(self.settings.time_step_s * SAMPLE_RATE)
        self._next_intensity = self._intensity.half
        """Centre (sample index) of the next intensity frame."""
        self._contours = Contours()

    @property
    def duration_s(self) -> float:
        return self._samples / SAMPLE_RATE

    def push(self, samples: object) -> None:
        """Accept the next chunk of 16 kHz mono PCM (int or float); clipping is counted at the next report."""
        chunk = np.asarray(samples)
        if chunk.dtype.kind != "f" or chunk.ndim != 1 or not np.isfinite(chunk.sum()):
            chunk = as_mono_float(chunk, SAMPLE_RATE)  # converts integer PCM; raises on bad input
        if chunk.size:
            self._pending.append(chunk)
            self._samples += chunk.size

    def cues(self) -> Cues:
        """Rolling cues of everything pushed so far but the newest frames, whose windows are not complete."""
        if not self._samples:
            return Cues(duration_s=0.0)
        if self._pending:
            self._analyse_new()
        return summarise(
            self._contours,
            self.duration_s,
            self.settings,
            clipped_fraction=self._clipped / self._samples,
            dc_offset=self._sum / self._samples,
        )

    def _analyse_new(self) -> None:
        """Append the frames that the audio pushed since the last report completes."""
        new, clipped = clip_to_full_scale(np.concatenate(self._pending).astype(np.float64))
        self._pending = []
        self._clipped += clipped
        self._sum += float(new.sum())
        self._tail = np.concatenate([self._tail, new])
        pitch = self._pitch.frames(self._tail, self._tail_from)
        times = pitch.centres / SAMPLE_RATE
        voiced = pitch.f0_hz > 0
        half, step = self._intensity.half, self._intensity_step
        first = self._next_intensity
        centres = np.arange(first, self._samples - half, step)
        self._next_intensity = first + step * centres.size
        spectral = np.full((times.size, 4), np.nan)
        every = max(1, round(self.settings.spectral_time_step_s / self.settings.pitch_time_step_s))
        sampled = voiced & (np.round(times / self.settings.pitch_time_step_s).astype(int) % every == 0)
        spectral[sampled] = spectral_balance(self._tail, self._tail_from / SAMPLE_RATE, times[sampled])
        self._contours.extend(
            Contours(
                pitch_times=times,
                f0_hz=np.where(voiced, pitch.f0_hz, np.nan),
                hnr_db=hnr_from_strength(pitch.strength, voiced),
                intensity_times=centres / SAMPLE_RATE,
                intensity_db=self._intensity.levels_db(self._tail, centres - self._tail_from),
                formants_hz=np.full((times.size, 3), np.nan),
                spectral=spectral,
            )
        )
        needed = min(self._next_intensity - half, self._pitch.next_centre - self._pitch.reach)
        keep = min(needed, self._pitch.next_centre - SPECTRUM_SIZE // 2) - self._tail_from
        if keep > 0:
            self._tail = self._tail[keep:]
            self._tail_from += keep
