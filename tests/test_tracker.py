"""Rolling cues: incremental analysis that agrees with whole-utterance extraction."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RATE, syllables, vowel

from emoscribe.audio import load_audio
from emoscribe.cues import AudioInputError, CueTracker, extract_cues
from emoscribe.cues import tracker as tracker_module


def _feed(tracker: CueTracker, x: np.ndarray, frame: int = 320, report_every_s: float = 0.5) -> list:
    """Push ``x`` in 20 ms frames, as a segmenter would, taking partial cues every ``report_every_s``."""
    partials = []
    next_report = report_every_s
    for start in range(0, x.size, frame):
        tracker.push(x[start : start + frame])
        if tracker.duration_s >= next_report:
            partials.append(tracker.cues())
            next_report += report_every_s
    return partials


def test_final_cues_are_exactly_the_whole_utterance_cues(demo_dir) -> None:
    x = load_audio(demo_dir / "03-01-05-02-01-01-03.flac")[0]
    tracker = CueTracker()
    _feed(tracker, x)
    assert tracker.finish() == extract_cues(x.astype(np.float32).astype(np.float64))


def test_last_partial_estimates_the_final_cues(demo_dir) -> None:
    """Rolling estimates of the robust cues stay close to the exact whole-utterance values."""
    for clip in sorted(demo_dir.glob("*.flac")):
        x = load_audio(clip)[0]
        tracker = CueTracker()
        partials = _feed(tracker, x)
        final = tracker.finish()
        last = partials[-1]
        assert len(partials) == int(x.size / RATE / 0.5)
        assert last.f0_median_hz == pytest.approx(final.f0_median_hz, rel=0.03), clip.name
        assert last.intensity_mean_db == pytest.approx(final.intensity_mean_db, abs=0.5), clip.name
        assert last.hnr_db == pytest.approx(final.hnr_db, abs=1.5), clip.name
        assert last.alpha_ratio_db == pytest.approx(final.alpha_ratio_db, abs=1.0), clip.name
        assert abs(last.syllable_count - final.syllable_count) <= 1, clip.name


def test_partial_cues_grow_with_the_utterance() -> None:
    x = syllables(12, rate_hz=4.0)
    tracker = CueTracker()
    partials = _feed(tracker, x)
    counts = [p.syllable_count or 0 for p in partials]
    assert counts == sorted(counts), "syllables so far never decrease"
    assert 0 < counts[len(counts) // 2] < 12
    assert tracker.finish().syllable_count == 12
    durations = [p.duration_s for p in partials]
    assert durations == sorted(durations)


def test_each_report_analyses_only_new_audio(monkeypatch) -> None:
    """Praat runs over the audio since the last report plus window context, not the whole utterance."""
    seen: list[int] = []
    real = tracker_module.analyse

    def spy(samples, start_s, keep, settings):
        seen.append(samples.size)
        return real(samples, start_s, keep, settings)

    monkeypatch.setattr(tracker_module, "analyse", spy)
    tracker = CueTracker()
    _feed(tracker, vowel(150.0, seconds=6.0))
    context = 2 * tracker.settings.window_s * RATE
    assert len(seen) == 12
    assert max(seen[1:]) <= 0.5 * RATE + context + 320
    assert sum(seen) < 6.0 * RATE + len(seen) * context
    tracker.finish()
    assert seen[-1] == 6 * RATE, "the final cues are one whole-utterance analysis"


def test_rejected_chunk_keeps_what_was_accepted() -> None:
    tracker = CueTracker()
    tracker.push(vowel(150.0, seconds=1.0))
    bad = np.full(160, np.nan)
    with pytest.raises(AudioInputError):
        tracker.push(bad)
    assert tracker.duration_s == 1.0
    tracker.push(vowel(150.0, seconds=0.5))
    cues = tracker.finish()
    assert cues.duration_s == 1.5
    assert cues.f0_median_hz == pytest.approx(150.0, rel=0.02)


def test_tracker_too_short_so_far_reports_none() -> None:
    tracker = CueTracker()
    tracker.push(vowel(150.0, seconds=0.05))
    cues = tracker.cues()
    assert cues.duration_s == pytest.approx(0.05)
    assert cues.f0_median_hz is None
