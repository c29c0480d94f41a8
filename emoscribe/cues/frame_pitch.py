"""Praat's autocorrelation pitch (Boersma 1993) in numpy, frame by frame as audio arrives, for rolling cues.

The rolling cues need pitch every 20 ms of a growing utterance, at a fraction of what Praat costs when it is
run again over each new stretch with its context. This follows Praat's ``To Pitch (ac)`` with the settings of
the whole-utterance cues (``CueSettings``: 75-600 Hz, 20 ms step; Praat's default voicing and silence
thresholds and octave, octave-jump and voiced/unvoiced costs; the 0-4 kHz telephone band): each frame is a
3-period Hanning window with its local mean removed; its autocorrelation, divided by the window's, has local
maxima above half the voicing threshold as candidates; Praat's path finder chooses among them and "unvoiced".

Where it differs, as measured against Praat in ``tests/test_frame_pitch.py``: the band is taken in the
frequency domain of each 16 kHz frame (the autocorrelation from the power spectrum below 4 kHz, at 8 kHz lags)
instead of resampling the signal first, so no resampler delays the frames; a candidate's lag and strength come
from a parabola through the peak instead of Praat's sinc refinement; Praat keeps 15 candidates, this the
strongest :data:`MAX_CANDIDATES`; the path through each batch of frames is final when the batch is (Praat
decides it over the whole utterance); and the silence threshold is relative to the loudest frame so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from emoscribe.cues.contours import PITCH_RATE
from emoscribe.cues.signal import SAMPLE_RATE

MAX_CANDIDATES = 3
"""Voiced candidates kept per frame (Praat keeps 15): more change the measured agreement with Praat by less
than its frame-to-frame noise and cost a longer path search."""
VOICING_THRESHOLD = 0.45
SILENCE_THRESHOLD = 0.03
OCTAVE_COST = 0.01
OCTAVE_JUMP_COST = 0.35
VOICED_UNVOICED_COST = 0.14
"""Praat's defaults for ``To Pitch (ac)``, which the whole-utterance cues use."""
SURELY_UNVOICED = 0.025
"""Frames quieter than this share of the loudest are unvoiced whatever their candidates: their "unvoiced"
strength (above 1.2) beats any voiced one (at most 1) by more than the path's two voiced/unvoiced switches
(0.14) could win back, so their autocorrelation is not computed."""
FACTOR = SAMPLE_RATE // PITCH_RATE


@dataclass(frozen=True, slots=True)
class PitchFrames:
    """Frames centred on ``centres`` (sample indices): F0 in Hz (0 where unvoiced) and the chosen candidate's
    strength (the normalised autocorrelation peak, for HNR)."""

    centres: np.ndarray
    f0_hz: np.ndarray
    strength: np.ndarray


class PitchTracker:
    """Frames of one stream of 16 kHz samples, in order: frame ``j`` is centred on sample ``(j + 1) * step``.

    :meth:`frames` takes the samples the caller holds and returns every next frame whose window they contain;
    the path finder's state carries over from one call to the next.
    """

    def __init__(self, floor_hz: float = 75.0, ceiling_hz: float = 600.0, step_s: float = 0.02) -> None:
        self.floor_hz, self.ceiling_hz = floor_hz, ceiling_hz
        self.step = round(step_s * SAMPLE_RATE)
        self._switch_costs = 0.01 / step_s  # Praat scales the transition costs to its 10 ms reference step
        period = int(PITCH_RATE / floor_hz)  # Praat's sample counts at the band's rate, then at ours
        width = 2 * (int(3.0 / floor_hz * PITCH_RATE) // 2 - 1)
        self._half = width // 2 * FACTOR
        self._mean_span = period * FACTOR
        self._peak_span = (period // 2 + 1) * FACTOR
        self._max_lag = min(width // 3 + 2, width) * FACTOR
        size = 1
        while size < width * 1.5:
            size *= 2
        self._band_fft = size
        self._fft = size * FACTOR
        self._window = 0.5 - 0.5 * np.cos(np.arange(1, 2 * self._half + 1) * 2 * np.pi / (2 * self._half + 1))
        window_r = self._autocorrelation(self._window[None, :])[0]
        self._window_r = window_r / window_r[0]
        self.reach = max(self._half, self._mean_span)
        """Samples a frame needs on each side of its centre."""
        self.next_centre = self.step
        self._peak = 0.0
        self._started = False
        self._last: float | None = None
        """log2 F0 of the last frame's choice (``None``: unvoiced), so the path goes on across calls."""

    def frames(self, samples: np.ndarray, start: int) -> PitchFrames:
        """The next frames that ``samples`` (stream samples from index ``start`` on) hold in full."""
        last = start + samples.size - self.reach
        centres = np.arange(self.next_centre, last + 1, self.step)
        if centres.size == 0:
            return PitchFrames(centres, np.empty(0), np.empty(0))
        self.next_centre = int(centres[-1]) + self.step
        self._peak = max(self._peak, float(np.abs(samples).max()))
        frequency, strength, unvoiced = self._candidates(samples, centres - start)
        chosen = self._path(frequency, strength, unvoiced)
        rows = np.arange(centres.size)
        return PitchFrames(centres, frequency[rows, chosen], strength[rows, chosen])

    def _autocorrelation(self, frames: np.ndarray) -> np.ndarray:
        """Of each frame's 0-4 kHz band (the power spectrum cut there), at lags 0 … the longest of our rate."""
        spectrum = np.fft.rfft(frames, self._fft, axis=1)
        spectrum[:, self._band_fft // 2 + 1 :] = 0.0
        return np.fft.irfft(spectrum.real**2 + spectrum.imag**2, self._fft, axis=1)[:, : self._max_lag + 1]

    def _candidates(self, x: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frame, column 0 "unvoiced" then up to :data:`MAX_CANDIDATES` maxima: frequency (0 for none or
        unvoiced) and strength; and the unvoiced candidate's strength."""
        table_f = np.zeros((centre.size, MAX_CANDIDATES + 1))
        table_s = np.zeros((centre.size, MAX_CANDIDATES + 1))
        frames = sliding_window_view(x, self._window.size)[centre - self._half]
        cumulative = np.concatenate([[0.0], np.cumsum(x)])
        low, high = centre - self._mean_span, centre + self._mean_span
        frames = (frames - ((cumulative[high] - cumulative[low]) / (high - low))[:, None]) * self._window
        middle = slice(self._half - self._peak_span, self._half + self._peak_span + 1)
        loudness = np.minimum(1.0, np.abs(frames[:, middle]).max(axis=1) / max(self._peak, 1e-30))
        quiet = 2.0 - loudness * (1 + VOICING_THRESHOLD) / SILENCE_THRESHOLD
        unvoiced = VOICING_THRESHOLD + np.maximum(0.0, quiet)
        audible = np.flatnonzero(loudness >= SURELY_UNVOICED)
        if audible.size == 0:
            return table_f, table_s, unvoiced
        r = self._autocorrelation(frames[audible])
        r = r / np.where(r[:, :1] > 0, r[:, :1], 1.0) / self._window_r
        centre_r, left, right = r[:, 2:-1], r[:, 1:-2], r[:, 3:]
        row, column = np.nonzero((centre_r > 0.5 * VOICING_THRESHOLD) & (centre_r > left) & (centre_r >= right))
        c, lo, hi = centre_r[row, column], left[row, column], right[row, column]
        slope, curvature = 0.5 * (hi - lo), 2.0 * c - lo - hi
        curvature = np.where(curvature > 0, curvature, np.inf)
        frequency = SAMPLE_RATE / (column + 2 + slope / curvature)
        power = c + 0.5 * slope * slope / curvature
        power = np.where(power > 1.0, 1.0 / power, power)  # Praat reflects strengths above 1
        order = np.lexsort((OCTAVE_COST * np.log2(self.floor_hz / frequency) - power, row))
        row, frequency, power = row[order], frequency[order], power[order]
        rank = np.arange(row.size) - np.searchsorted(row, row)
        kept = rank < MAX_CANDIDATES
        row, rank = audible[row[kept]], rank[kept] + 1
        table_f[row, rank] = frequency[kept]
        table_s[row, rank] = power[kept]
        return table_f, table_s, unvoiced

    def _path(self, frequency: np.ndarray, strength: np.ndarray, unvoiced: np.ndarray) -> np.ndarray:
        """Praat's path finder over these frames, on from the previous call's last choice: the column of the
        chosen candidate per frame (0 for unvoiced).

        A plain loop: frames hold few candidates, where numpy's per-call cost would dominate."""
        jump = OCTAVE_JUMP_COST * self._switch_costs
        switch = VOICED_UNVOICED_COST * self._switch_costs
        voiced = (frequency > 0) & (frequency < self.ceiling_hz)
        safe = np.where(voiced, frequency, 1.0)
        pitch = np.log2(safe).tolist()
        local = (strength - OCTAVE_COST * np.log2(self.ceiling_hz / safe)).tolist()
        offered: list[list[int]] = [[0] for _ in range(frequency.shape[0])]
        for row, column in zip(*(index.tolist() for index in np.nonzero(voiced)), strict=True):
            offered[row].append(column)
        previous: list[tuple[float | None, float]] = [(self._last, 0.0)] if self._started else []
        """(log2 F0, None for unvoiced; path value) of each candidate of the previous frame (none before the
        stream's first frame)."""
        links: list[list[int]] = []
        for frame, quiet in enumerate(unvoiced.tolist()):
            current, link = [], []
            for column in offered[frame]:
                tone, gain = (None, quiet) if column == 0 else (pitch[frame][column], local[frame][column])
                best, origin = (-math.inf if previous else 0.0), 0
                for index, (before, value) in enumerate(previous):
                    if before is None:
                        value -= 0.0 if tone is None else switch
                    else:
                        value -= switch if tone is None else jump * abs(before - tone)
                    if value > best:
                        best, origin = value, index
                current.append((tone, best + gain))
                link.append(origin)
            previous = current
            links.append(link)
        chosen = np.zeros(frequency.shape[0], dtype=np.intp)
        index = max(range(len(previous)), key=lambda i: previous[i][1])
        self._last, self._started = previous[index][0], True
        for frame in range(frequency.shape[0] - 1, -1, -1):
            chosen[frame] = offered[frame][index]
            index = links[frame][index]
        return chosen
