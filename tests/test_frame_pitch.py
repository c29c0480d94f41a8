"""The numpy intensity and pitch of the rolling cues against Praat's, frame by frame."""

from __future__ import annotations

import random

import numpy as np
import parselmouth
import soxr

from emoscribe.audio import load_audio
from emoscribe.cues import CueSettings
from emoscribe.cues.contours import PITCH_RATE
from emoscribe.cues.frame_intensity import IntensityWindow
from emoscribe.cues.frame_pitch import PitchTracker

RATE = 16_000
SETTINGS = CueSettings()


def against_praat(x: np.ndarray) -> tuple[float, float]:
    """(share of frames where voicing agrees, median relative F0 difference where both are voiced) against
    Praat's ``To Pitch (ac)`` of the 8 kHz band, our frames placed on Praat's grid."""
    narrow = soxr.resample(x, RATE, PITCH_RATE)
    pitch = parselmouth.Sound(narrow, sampling_frequency=PITCH_RATE).to_pitch_ac(
        time_step=SETTINGS.pitch_time_step_s,
        pitch_floor=SETTINGS.pitch_floor_hz,
        pitch_ceiling=SETTINGS.pitch_ceiling_hz,
    )
    times, reference = pitch.xs(), pitch.selected_array["frequency"]
    tracker = PitchTracker(SETTINGS.pitch_floor_hz, SETTINGS.pitch_ceiling_hz, SETTINGS.pitch_time_step_s)
    shift = round(times[0] * RATE - 0.5) % tracker.step  # our frame centres on Praat's frame times
    ours = tracker.frames(x[shift:], 0)
    ours_times = (ours.centres + shift + 0.5) / RATE
    index = np.clip(np.searchsorted(times, ours_times - 1e-4), 0, times.size - 1)
    same = np.abs(times[index] - ours_times) < 1e-3
    mine, praat = ours.f0_hz[same], reference[index[same]]
    voiced = (mine > 0) & (praat > 0)
    agreement = float(np.mean((mine > 0) == (praat > 0)))
    return agreement, float(np.median(np.abs(mine[voiced] / praat[voiced] - 1))) if voiced.any() else 0.0


def test_pitch_of_the_demo_clips_follows_praat(demo_dir) -> None:
    for clip in sorted(demo_dir.glob("*.flac")):
        agreement, error = against_praat(load_audio(clip)[0])
        assert agreement >= 0.95, (clip.name, agreement)
        assert error <= 0.002, (clip.name, error)


def test_pitch_of_corpus_clips_follows_praat(corpus) -> None:
    found = np.array([against_praat(load_audio(c.path)[0]) for c in random.Random(3).sample(corpus, 60)])
    assert found[:, 0].mean() >= 0.98 and np.quantile(found[:, 0], 0.1) >= 0.94
    assert np.quantile(found[:, 1], 0.9) <= 0.002


def test_intensity_equals_praat_on_the_same_frames(demo_dir) -> None:
    x = load_audio(demo_dir / "03-01-05-02-01-01-03.flac")[0]
    intensity = parselmouth.Sound(x, sampling_frequency=RATE).to_intensity(
        minimum_pitch=SETTINGS.intensity_min_pitch_hz, time_step=SETTINGS.time_step_s
    )
    window = IntensityWindow(SETTINGS.intensity_min_pitch_hz, RATE)
    centres = np.round(intensity.xs() * RATE - 0.5).astype(int)  # Praat's sample i lies at (i + 0.5) / rate
    inside = (centres >= window.half) & (centres + window.half < x.size)
    ours = window.levels_db(x, centres[inside])
    assert inside.sum() > 300
    assert np.abs(ours - intensity.values[0][inside]).max() < 0.05
