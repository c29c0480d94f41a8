"""The quality gate: SNR, clipping, band, speech ratio; each abstention reason from an input that earns it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RATE
from signals import dtmf, narrowband, ringback, with_noise

from emoscribe.audio import load_audio
from emoscribe.cues import extract_cues
from emoscribe.daemon.abstention import AbstainSettings, audio_reason, label_reason
from emoscribe.daemon.quality import SNR_CAP_DB, assess, estimate_snr_db
from emoscribe.demo import demo_clips

SETTINGS = AbstainSettings()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """A demo sentence (RAVDESS, neutral), with 0.3 s of silence each side as the segmenter's pre-roll."""
    samples = load_audio(demo_clips()[0])[0]
    pad = np.zeros(int(0.3 * RATE))
    return np.concatenate([pad, samples, pad])


def judged(samples: np.ndarray) -> tuple[str | None, dict]:
    cues = extract_cues(samples)
    quality = assess(samples, cues)
    return audio_reason(quality, cues, SETTINGS), quality.to_dict()


def test_clean_speech_is_fit_to_label(speech: np.ndarray) -> None:
    reason, quality = judged(speech)
    assert reason is None, quality
    assert quality["band"] == "wideband"
    assert quality["snr_db"] > 25
    assert 0.2 < quality["speech_ratio"] < 1.0
    assert quality["duration_s"] == pytest.approx(speech.size / RATE, abs=1e-3)


def test_snr_estimate_follows_added_noise(speech: np.ndarray) -> None:
    """The estimate is monotone in the true SNR and within a few dB of it where noise dominates the floor."""
    estimates = [estimate_snr_db(with_noise(speech, snr, seed=1)) for snr in (0, 10, 20, 30)]
    assert estimates == sorted(estimates) and len(set(estimates)) == 4, estimates
    assert estimates[1] == pytest.approx(10, abs=6), estimates
    assert estimate_snr_db(np.zeros(RATE)) == 0.0
    with_silence = np.concatenate([np.zeros(RATE), speech])
    assert estimate_snr_db(with_silence) == SNR_CAP_DB


def test_noise_masked_speech_abstains_low_snr(speech: np.ndarray) -> None:
    reason, quality = judged(with_noise(speech, 0.0, seed=2))
    assert reason == "low_snr", quality
    assert quality["snr_db"] < SETTINGS.min_snr_db


def test_clipped_speech_abstains(speech: np.ndarray) -> None:
    loud = np.clip(speech * 40.0, -1.0, 1.0)
    reason, quality = judged(loud)
    assert reason == "clipped", quality
    assert quality["clipped_fraction"] > SETTINGS.max_clipped_fraction


@pytest.mark.parametrize("make", [dtmf, lambda: ringback(1)[: 3 * RATE]], ids=["dtmf", "ringback"])
def test_tones_abstain_non_speech(make) -> None:
    reason, quality = judged(make())
    assert reason == "non_speech", quality
    assert not quality["speech"]


def test_very_short_speech_abstains(speech: np.ndarray) -> None:
    """A third of a second of the sentence, between silences: speech, but too little to judge."""
    middle = speech.size // 2
    pad = np.zeros(int(0.2 * RATE))
    reason, quality = judged(np.concatenate([pad, speech[middle : middle + int(0.35 * RATE)], pad]))
    assert reason == "too_short", quality


def test_telephone_band_is_narrowband(speech: np.ndarray) -> None:
    assert judged(narrowband(speech))[1]["band"] == "narrowband"


def test_label_reasons() -> None:
    assert label_reason(0.2, 0.35, False, SETTINGS) == "low_confidence"
    assert label_reason(0.9, 0.35, True, AbstainSettings(on_contradiction=True)) == "contradiction"
    assert label_reason(0.9, 0.35, True, SETTINGS) is None, "flagged, not withheld, by default"
    assert label_reason(0.9, 0.35, False, SETTINGS) is None


def test_disabled_gate_labels_anything() -> None:
    samples = dtmf()
    cues = extract_cues(samples)
    assert audio_reason(assess(samples, cues), cues, AbstainSettings(enabled=False)) is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_clipped_fraction"):
        AbstainSettings(max_clipped_fraction=2.0)
