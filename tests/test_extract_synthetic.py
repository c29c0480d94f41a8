"""Cue extraction on synthetic signals whose truth is known by construction."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import RATE, pulse_train, syllables, vowel

from emoscribe.audio import load_audio
from emoscribe.cues import extract_cues


@pytest.mark.parametrize("f0", [90.0, 120.0, 180.0, 250.0, 400.0])
def test_pulse_train_f0_within_two_percent(f0: float) -> None:
    cues = extract_cues(pulse_train(f0))
    assert cues.f0_median_hz == pytest.approx(f0, rel=0.02)
    assert cues.f0_mean_hz == pytest.approx(f0, rel=0.02)
    assert cues.f0_median_st == pytest.approx(12 * math.log2(f0 / 100.0), abs=0.35)


@pytest.mark.parametrize("f0", [100.0, 150.0, 220.0, 300.0])
def test_vowel_f0_voicing_and_periodicity(f0: float) -> None:
    cues = extract_cues(vowel(f0))
    assert cues.f0_median_hz == pytest.approx(f0, rel=0.02)
    assert cues.voiced_fraction is not None and cues.voiced_fraction > 0.9
    assert cues.hnr_db is not None and cues.hnr_db > 15.0, "a steady synthetic vowel is strongly periodic"
    assert cues.jitter_local is not None and cues.jitter_local < 0.002
    assert cues.f0_range_st is not None and cues.f0_range_st < 0.5


@pytest.mark.parametrize("f0", [100.0, 150.0])
def test_vowel_first_formant(f0: float) -> None:
    cues = extract_cues(vowel(f0, formants=(700.0, 1220.0, 2600.0)))
    assert cues.f1_mean_hz == pytest.approx(700.0, rel=0.15)


def test_gliding_pitch_spread() -> None:
    """A glide from 100 to 200 Hz spans an octave: its 5-95 % range is close to 0.9 of 12 semitones."""
    t = np.arange(2 * RATE) / RATE
    f0 = 100.0 * 2.0 ** (t / 2.0)
    x = 0.3 * np.sign(np.sin(2 * np.pi * np.cumsum(f0) / RATE)) * 0.5
    cues = extract_cues(x)
    assert cues.f0_range_st == pytest.approx(0.9 * 12, abs=1.0)
    assert cues.f0_p5_hz < 115 < 185 < cues.f0_p95_hz


@pytest.mark.parametrize("drop_db", [3.0, 10.0, 20.0])
def test_level_change_within_one_db(drop_db: float) -> None:
    loud = vowel(150.0, amplitude=0.4)
    quiet = loud * 10 ** (-drop_db / 20)
    difference = extract_cues(loud).intensity_mean_db - extract_cues(quiet).intensity_mean_db
    assert difference == pytest.approx(drop_db, abs=1.0)


def test_level_step_inside_one_utterance() -> None:
    """Half the utterance 12 dB down: the 5-95 % intensity range spans the step, the mean sits in between."""
    x = np.concatenate([vowel(150.0, amplitude=0.4), vowel(150.0, amplitude=0.4 * 10 ** (-12 / 20))])
    cues = extract_cues(x)
    loud = extract_cues(x[:RATE]).intensity_mean_db
    assert cues.intensity_range_db == pytest.approx(12.0, abs=1.5)
    assert loud - 12.0 < cues.intensity_mean_db < loud


@pytest.mark.parametrize(("count", "rate"), [(4, 3.0), (8, 3.0), (6, 5.0), (10, 6.0)])
def test_syllable_bursts_counted_and_timed(count: int, rate: float) -> None:
    cues = extract_cues(syllables(count, rate_hz=rate))
    assert cues.syllable_count == count
    assert cues.speech_rate == pytest.approx(rate, rel=0.15)
    assert cues.pause_count == 0


def test_pauses_are_counted_and_excluded_from_articulation_rate() -> None:
    """Two phrases 0.8 s apart: one pause; articulation rate (no pauses) exceeds speech rate."""
    phrase = syllables(5, rate_hz=5.0)
    x = np.concatenate([phrase, np.zeros(int(0.8 * RATE)), phrase])
    cues = extract_cues(x)
    assert cues.syllable_count == 10
    assert cues.pause_count == 1
    assert cues.pause_ratio == pytest.approx((0.8 + 0.6 + 0.08) / cues.speech_span_s, abs=0.1)
    assert cues.articulation_rate > cues.speech_rate * 1.2


def _espeak(tmp_path: Path, words_per_minute: int) -> np.ndarray:
    path = tmp_path / f"espeak-{words_per_minute}.wav"
    text = "The quick brown fox jumps over the lazy dog and runs away into the forest before the evening rain."
    subprocess.run(["espeak-ng", "-s", str(words_per_minute), "-w", str(path), text], check=True)
    return load_audio(path)[0]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (.ci/run installs it)")
def test_espeak_speech_rate_ordered(tmp_path: Path) -> None:
    slow = extract_cues(_espeak(tmp_path, 110))
    fast = extract_cues(_espeak(tmp_path, 240))
    assert fast.speech_rate > 1.5 * slow.speech_rate
    assert fast.articulation_rate > slow.articulation_rate
    for cues in (slow, fast):
        assert cues.articulation_rate >= cues.speech_rate
        assert 10 <= cues.syllable_count <= 40
