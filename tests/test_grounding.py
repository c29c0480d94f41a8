"""Grounding: the shipped per-emotion cue model flags a label its cues contradict, and lists the evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soxr
from conftest import RATE

from emoscribe.audio import load_audio
from emoscribe.cues import extract_cues
from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.grounding import CALLER, POPULATION, GroundingModel, LabelledCues, fit_grounding
from emoscribe.cues.model import Cues
from emoscribe.demo import demo_clips

LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@pytest.fixture(scope="module")
def model() -> GroundingModel:
    return GroundingModel.default()


def spoken(path, speed: float, gain: float) -> np.ndarray:
    """A demo sentence played at ``speed`` (pitch and tempo both scale with it) and ``gain``."""
    slowed = soxr.resample(load_audio(path)[0], RATE, RATE / speed)
    return np.clip(slowed * gain, -1.0, 1.0)


@pytest.fixture(scope="module")
def actor03() -> list:
    return [path for path in demo_clips() if path.stem.endswith("-03")]


@pytest.fixture(scope="module")
def caller(actor03) -> SpeakerBaseline:
    """The caller's usual voice: their three demo sentences (neutral, sad, angry)."""
    baseline = SpeakerBaseline()
    for path in actor03:
        baseline.update(extract_cues(load_audio(path)[0]))
    return baseline


@pytest.fixture(scope="module")
def subdued(actor03) -> Cues:
    """The neutral sentence quiet (-20 dB), low and slow (played at 0.7 of its speed)."""
    return extract_cues(spoken(actor03[0], 0.7, 0.1))


def test_shipped_model_was_fitted_without_the_validation_speakers(model: GroundingModel) -> None:
    speakers = set(model.provenance["speakers"])
    assert speakers and not speakers & {"ravdess-17", "ravdess-18", "ravdess-19", "ravdess-20", "tess-YAF"}
    assert set(model.labels) == set(LABELS)


def test_quiet_low_slow_speech_contradicts_angry(model: GroundingModel, caller, subdued) -> None:
    angry = model.judge(subdued, "angry", LABELS, "male", caller, contradiction_below=0.01)
    assert angry.space == CALLER
    assert angry.contradiction and angry.score < 0.01, angry
    against = {item.cue for item in angry.evidence if not item.supports}
    assert {"intensity_mean_db", "f0_median_st"} <= against, angry.evidence
    assert all(item.vs_caller is not None and item.vs_population is not None for item in angry.evidence)
    for label in ("calm", "neutral"):
        fitting = model.judge(subdued, label, LABELS, "male", caller, contradiction_below=0.01)
        assert not fitting.contradiction and fitting.score > 100 * angry.score, fitting
        assert {"intensity_mean_db", "f0_median_st"} <= {item.cue for item in fitting.evidence if item.supports}


def test_population_space_before_the_caller_is_known(model: GroundingModel, subdued) -> None:
    result = model.judge(subdued, "angry", LABELS, "male", None, contradiction_below=0.01)
    assert result.space == POPULATION and result.contradiction
    assert all(item.vs_caller is None for item in result.evidence)
    assert model.judge(subdued, "bored", LABELS, "male").score is None, "a label the model lacks"
    assert model.judge(Cues(duration_s=0.1), "angry", LABELS).score is None, "no cues to judge"
    assert model.judge(subdued, None, LABELS).score is None


def test_round_trip_and_malformed_files(model: GroundingModel, subdued, tmp_path) -> None:
    path = tmp_path / "grounding.json"
    model.save(path)
    again = GroundingModel.load(path)
    assert again.judge(subdued, "sad", LABELS).score == pytest.approx(model.judge(subdued, "sad", LABELS).score)
    document = json.loads(path.read_text())
    document["spaces"]["caller"]["covariance"] = [[1.0]]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="do not fit"):
        GroundingModel.load(path)
    path.write_text('{"kind": "bins"}')
    with pytest.raises(ValueError, match="not a grounding document"):
        GroundingModel.load(path)


def test_fit_learns_what_separates_the_classes() -> None:
    """Two speakers' demo sentences played loud, high and fast ("angry") or quiet, low and slow ("sad"), each
    speaker's clips heard as one stream; a calibrated model tells the two apart on a sentence not fitted on."""
    clips = []
    for actor in ("03", "10"):
        paths = [path for path in demo_clips() if path.stem.endswith(f"-{actor}")]
        for path in paths:
            for shift in (0.95, 1.05):
                loud = spoken(path, 1.25 * shift, 2.0)
                quiet = spoken(path, 0.8 * shift, 0.15)
                clips.append(LabelledCues(extract_cues(loud), "angry", actor, actor, None))
                clips.append(LabelledCues(extract_cues(quiet), "sad", actor, actor, None))
    fitted = fit_grounding(clips[:-2], cues=("intensity_mean_db", "f0_median_st", "f0_range_st", "hnr_db"))
    assert fitted.labels == ("angry", "sad")
    assert all(space.temperature > 0 for space in fitted.spaces.values())
    held_out = clips[-2]
    assert held_out.emotion == "angry"
    assert fitted.judge(held_out.cues, "angry", ("angry", "sad")).score > 0.5
    with pytest.raises(ValueError, match="no clips"):
        fit_grounding([])
