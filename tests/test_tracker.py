"""Rolling cues: each frame analysed once, without Praat, within stated tolerances of the final (Praat) cues.

The tolerances below are the ones README.md states for partial cues. Per demo clip (fed in 20 ms packets, a
report every 0.5 s), the last report against ``extract_cues`` of the clip; over a seeded sample of the shared
corpora (where ``EMOSCRIBE_DATA`` is set), the 90th percentile of the same differences.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import RATE, syllables, vowel

from emoscribe.audio import load_audio
from emoscribe.cues import AudioInputError, Cues, CueTracker, extract_cues
from emoscribe.cues import contours as contours_module
from emoscribe.cues.frame_intensity import IntensityWindow
from emoscribe.cues.frame_pitch import PitchTracker

RELATIVE = {"f0_median_hz": 0.03, "f0_mean_hz": 0.03, "f0_p5_hz": 0.08, "f0_p95_hz": 0.08, "speech_rate": 0.25}
ABSOLUTE = {
    "intensity_mean_db": 0.3,
    "intensity_sd_db": 0.3,
    "hnr_db": 1.0,
    "alpha_ratio_db": 1.5,
    "hammarberg_db": 1.5,
    "slope_500_1500_db_per_khz": 2.0,
    "voiced_fraction": 0.1,
    "speech_span_s": 0.05,
    "syllable_count": 2,
    "pause_count": 0,
}
"""Per clip, the last partial report against the final cues (a relative or an absolute difference)."""
CORPUS_P90 = {
    "f0_median_hz": 0.03,
    "intensity_mean_db": 0.1,
    "hnr_db": 1.2,
    "alpha_ratio_db": 1.5,
    "syllable_count": 1,
    "voiced_fraction": 0.06,
    "speech_span_s": 0.02,
}
"""Over corpus clips, the 90th percentile of the same differences, the whole clip heard."""
NOT_ESTIMATED = ("jitter_local", "shimmer_local", "f1_mean_hz", "f2_mean_hz", "f3_mean_hz")


def _feed(tracker: CueTracker, x: np.ndarray, frame: int = 320, report_every_s: float = 0.5) -> list[Cues]:
    """Push ``x`` in 20 ms frames, as the front end does, taking partial cues every ``report_every_s``."""
    partials = []
    next_report = report_every_s
    for start in range(0, x.size, frame):
        tracker.push(x[start : start + frame])
        if tracker.duration_s >= next_report:
            partials.append(tracker.cues())
            next_report += report_every_s
    return partials


def differences(partial: Cues, final: Cues) -> dict[str, float]:
    found = {}
    for name in (*RELATIVE, *ABSOLUTE):
        estimate, exact = getattr(partial, name), getattr(final, name)
        if exact is None:
            continue
        assert estimate is not None, name
        found[name] = abs(estimate / exact - 1) if name in RELATIVE else abs(estimate - exact)
    return found


def test_last_partial_is_within_the_stated_tolerances(demo_dir) -> None:
    for clip in sorted(demo_dir.glob("*.flac")):
        x = load_audio(clip)[0].astype(np.float32)
        partials = _feed(CueTracker(), x)
        final = extract_cues(x.astype(np.float64))
        assert len(partials) == int(x.size / RATE / 0.5)
        for name, difference in differences(partials[-1], final).items():
            assert difference <= {**RELATIVE, **ABSOLUTE}[name], (clip.name, name, difference)
        assert all(getattr(partials[-1], name) is None for name in NOT_ESTIMATED)


def test_corpus_partials_are_within_the_stated_tolerances(corpus) -> None:
    clips = random.Random(5).sample(corpus, 120)
    table: dict[str, list[float]] = {name: [] for name in CORPUS_P90}
    for clip in clips:
        x = load_audio(clip.path)[0].astype(np.float32)
        tracker = CueTracker()
        _feed(tracker, x)
        found = differences(tracker.cues(), extract_cues(x.astype(np.float64)))
        for name in CORPUS_P90:
            if name in found:
                table[name].append(found[name])
    for name, bound in CORPUS_P90.items():
        assert len(table[name]) >= 100, name
        assert np.quantile(table[name], 0.9) <= bound, (name, np.quantile(table[name], 0.9))


def test_partial_cues_grow_with_the_utterance() -> None:
    x = syllables(12, rate_hz=4.0)
    tracker = CueTracker()
    partials = _feed(tracker, x)
    counts = [p.syllable_count or 0 for p in partials]
    assert counts == sorted(counts), "syllables so far never decrease"
    assert 0 < counts[len(counts) // 2] < 12
    assert tracker.cues().syllable_count == extract_cues(x).syllable_count == 12
    durations = [p.duration_s for p in partials]
    assert durations == sorted(durations)


def test_each_frame_is_analysed_once_and_praat_not_at_all(monkeypatch) -> None:
    """Reports compute only the frames completed since the previous one; Praat is left to the final cues."""
    seen = {"intensity": 0, "pitch": 0}
    levels, candidates = IntensityWindow.levels_db, PitchTracker._candidates

    def count_levels(self, samples, centres):
        seen["intensity"] += centres.size
        return levels(self, samples, centres)

    def count_pitch(self, x, centre):
        seen["pitch"] += centre.size
        return candidates(self, x, centre)

    def no_praat(*args, **kwargs):
        raise AssertionError("rolling cues ran Praat")

    monkeypatch.setattr(IntensityWindow, "levels_db", count_levels)
    monkeypatch.setattr(PitchTracker, "_candidates", count_pitch)
    monkeypatch.setattr(contours_module.parselmouth, "Sound", no_praat)
    tracker = CueTracker()
    samples = 6 * RATE
    partials = _feed(tracker, vowel(150.0, seconds=6.0))
    last = tracker.cues()
    assert len(partials) == 12
    half = round(0.064 * RATE)  # every 10 ms frame whose 128 ms window is in, once
    assert seen["intensity"] == len(range(half, samples - half, RATE // 100))
    assert seen["pitch"] == len(range(320, samples - 318 + 1, 320))  # every 20 ms frame whose 40 ms window is in
    assert last.f0_median_hz == pytest.approx(150.0, rel=0.01)


def test_rejected_chunk_keeps_what_was_accepted() -> None:
    tracker = CueTracker()
    tracker.push(vowel(150.0, seconds=1.0))
    for bad in (np.full(160, np.nan), np.zeros((2, 160)), np.array(["x"])):
        with pytest.raises(AudioInputError):
            tracker.push(bad)
    assert tracker.duration_s == 1.0
    tracker.push((vowel(150.0, seconds=0.5) * 32767).astype(np.int16))
    cues = tracker.cues()
    assert cues.duration_s == 1.5
    assert cues.f0_median_hz == pytest.approx(150.0, rel=0.02)


def test_clipping_and_offset_are_counted() -> None:
    tracker = CueTracker()
    tone = vowel(150.0, seconds=1.0, amplitude=1.0) * 2.0 + 0.01
    tracker.push(tone)
    cues = tracker.cues()
    final = extract_cues(tone)
    assert cues.clipped_fraction == final.clipped_fraction > 0.1
    assert cues.dc_offset == pytest.approx(final.dc_offset)


def test_tracker_too_short_so_far_reports_none() -> None:
    tracker = CueTracker()
    assert tracker.cues() == Cues(duration_s=0.0)
    tracker.push(vowel(150.0, seconds=0.05))
    cues = tracker.cues()
    assert cues.duration_s == pytest.approx(0.05)
    assert cues.f0_median_hz is None
