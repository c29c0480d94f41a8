"""Whole-utterance cue extraction, and rolling cues of the utterance so far while it is still being spoken."""

from __future__ import annotations

import numpy as np

from emoscribe.cues.contours import Contours, CueSettings, analyse
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
    """Fed PCM as it arrives, reports the cues of the utterance so far, and the exact cues at its end.

    Each :meth:`cues` report runs Praat only over the audio that arrived since the previous report (plus the
    analysis windows' context) and appends the new frames to the contours already held; the summary over all
    frames is cheap numpy. The newest ``window_s`` of audio waits for the next report, because its windows are
    not complete yet. These rolling cues are estimates: Praat's pitch path and voicing see only the stretch at
    hand, so voice measures can differ a little from a whole-utterance analysis (jitter most).

    :meth:`finish` analyses the whole utterance at once, so the final cues are exactly what
    :func:`extract_cues` gives for the same audio, whether it was heard live or read from a file.

    A chunk that fails validation is refused with :class:`~emoscribe.cues.signal.AudioInputError` and leaves
    what was already accepted untouched. Memory: the utterance's audio as float32 (64 kB per second) plus the
    contours (about 1 kB per second); the segmenter bounds the utterance length.
    """

    def __init__(self, settings: CueSettings | None = None) -> None:
        self.settings = settings or CueSettings()
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self._clipped = 0
        self._sum = 0.0
        self._contours = Contours()
        self._analysed_to = 0.0
        """Frames before this utterance time are already in the rolling contours."""

    @property
    def duration_s(self) -> float:
        return self._samples / SAMPLE_RATE

    def push(self, samples: object) -> None:
        """Accept the next chunk of 16 kHz mono PCM (int or float)."""
        chunk, clipped = clip_to_full_scale(as_mono_float(samples, SAMPLE_RATE))
        if chunk.size:
            self._chunks.append(chunk.astype(np.float32))
            self._samples += chunk.size
            self._clipped += clipped
            self._sum += float(chunk.sum())

    def cues(self) -> Cues:
        """Rolling cues of everything pushed so far but the newest ``window_s``."""
        if not self._samples:
            return Cues(duration_s=0.0)
        end = self.duration_s - self.settings.window_s
        if end > self._analysed_to:
            self._analyse_to(end)
        return summarise(
            self._contours,
            self.duration_s,
            self.settings,
            clipped_fraction=self._clipped / self._samples,
            dc_offset=self._sum / self._samples,
        )

    def finish(self) -> Cues:
        """Exact cues of the whole utterance (as :func:`extract_cues`); raises if nothing was pushed."""
        return extract_cues(self._audio().astype(np.float64), SAMPLE_RATE, self.settings)

    def _audio(self) -> np.ndarray:
        """All accepted samples, joined once so later calls do not join again."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.empty(0, dtype=np.float32)

    def _analyse_to(self, end_s: float) -> None:
        """Append the frames between the last analysed time and ``end_s`` to the rolling contours."""
        first = max(0, round((self._analysed_to - self.settings.window_s) * SAMPLE_RATE))
        stretch = self._audio()[first:].astype(np.float64) - self._sum / self._samples
        self._contours.extend(analyse(stretch, first / SAMPLE_RATE, (self._analysed_to, end_s), self.settings))
        self._analysed_to = end_s
