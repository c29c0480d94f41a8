"""Per-speaker exponentially weighted baselines: convergence, half-life, warm-up, persistence, LRU bound."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emoscribe.cues.baseline import DEFAULT_CUES, SpeakerBaseline, SpeakerBaselines
from emoscribe.cues.model import Cues


def cue(st: float | None = None, db: float | None = None) -> Cues:
    return Cues(duration_s=2.0, f0_median_st=st, intensity_mean_db=db)


def test_default_tracks_voice_cues_but_not_recording_properties() -> None:
    assert "f0_median_st" in DEFAULT_CUES and "hnr_db" in DEFAULT_CUES
    assert not {"duration_s", "clipped_fraction", "dc_offset"} & set(DEFAULT_CUES)
    assert SpeakerBaseline().cues == DEFAULT_CUES


def test_first_updates_are_a_plain_mean_and_sample_sd() -> None:
    baseline = SpeakerBaseline(half_life=20)
    values = [10.0, 12.0, 17.0]
    for v in values:
        baseline.update(cue(st=v))
    decay = 0.5 ** (1 / 20)
    weights = np.array([decay**2, decay, 1.0])
    mean = float(np.average(values, weights=weights))
    assert baseline.mean("f0_median_st") == pytest.approx(mean)
    # Almost equal weights: close to the ordinary sample statistics.
    assert baseline.mean("f0_median_st") == pytest.approx(np.mean(values), rel=0.02)
    assert baseline.sd("f0_median_st") == pytest.approx(np.std(values, ddof=1), rel=0.05)


def test_equal_weights_limit_is_exactly_the_sample_statistics() -> None:
    baseline = SpeakerBaseline(half_life=1e12)
    values = [3.0, -1.0, 4.0, 1.0, 5.0]
    for v in values:
        baseline.update(cue(st=v))
    assert baseline.mean("f0_median_st") == pytest.approx(np.mean(values))
    assert baseline.sd("f0_median_st") == pytest.approx(np.std(values, ddof=1))


def test_converges_to_mean_and_sd_of_stationary_stream() -> None:
    rng = np.random.default_rng(0)
    baseline = SpeakerBaseline(half_life=500)
    for v in rng.normal(7.0, 2.0, 20_000):
        baseline.update(cue(st=float(v)))
    assert baseline.mean("f0_median_st") == pytest.approx(7.0, abs=0.15)
    assert baseline.sd("f0_median_st") == pytest.approx(2.0, rel=0.08)


@pytest.mark.parametrize("half_life", [5, 20, 50])
def test_step_change_is_half_followed_after_one_half_life(half_life: int) -> None:
    baseline = SpeakerBaseline(half_life=half_life)
    for _ in range(100 * half_life):
        baseline.update(cue(st=0.0))
    for _ in range(half_life):
        baseline.update(cue(st=10.0))
    assert baseline.mean("f0_median_st") == pytest.approx(5.0, abs=1e-6)
    for _ in range(half_life):
        baseline.update(cue(st=10.0))
    assert baseline.mean("f0_median_st") == pytest.approx(7.5, abs=1e-6)


def test_undefined_values_skip_only_that_cue() -> None:
    baseline = SpeakerBaseline()
    baseline.update(cue(st=5.0, db=60.0))
    baseline.update(cue(st=None, db=70.0))
    assert baseline.count("f0_median_st") == 1
    assert baseline.count("intensity_mean_db") == 2
    assert baseline.count("hnr_db") == 0
    assert baseline.mean("hnr_db") is None
    assert baseline.sd("f0_median_st") is None
    assert baseline.mean("f0_median_st") == 5.0


def test_zscore_is_none_until_warm_then_defined() -> None:
    baseline = SpeakerBaseline(half_life=1e9, min_updates=3)
    probe = cue(st=14.0)
    assert baseline.zscore(probe, "f0_median_st") is None
    baseline.update(cue(st=10.0))
    baseline.update(cue(st=12.0))
    assert baseline.zscore(probe, "f0_median_st") is None  # 2 < min_updates
    baseline.update(cue(st=8.0))
    # mean 10, sample sd 2
    assert baseline.zscore(probe, "f0_median_st") == pytest.approx(2.0)
    assert baseline.zscore(cue(st=None), "f0_median_st") is None


def test_zscore_is_none_for_a_constant_cue() -> None:
    baseline = SpeakerBaseline()
    for _ in range(10):
        baseline.update(cue(st=12.3))
    assert baseline.sd("f0_median_st") == pytest.approx(0.0, abs=1e-9)
    assert baseline.zscore(cue(st=13.0), "f0_median_st") is None


def test_untracked_cue_is_a_key_error() -> None:
    baseline = SpeakerBaseline(cues=["f0_median_st"])
    assert baseline.cues == ("f0_median_st",)
    with pytest.raises(KeyError, match="not tracked"):
        baseline.mean("intensity_mean_db")
    with pytest.raises(KeyError):
        baseline.count("duration_s")


@pytest.mark.parametrize(
    "kwargs",
    [{"half_life": 0}, {"half_life": math.inf}, {"min_updates": 1}, {"cues": ["nope"]}, {"cues": []}],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SpeakerBaseline(**kwargs)


def test_round_trip_through_json_continues_identically() -> None:
    rng = np.random.default_rng(1)
    a = SpeakerBaseline(half_life=7, min_updates=4, cues=["f0_median_st", "intensity_mean_db"])
    for st, db in rng.normal([10, 60], [2, 5], size=(30, 2)):
        a.update(cue(st=float(st), db=float(db)))
    b = SpeakerBaseline.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.cues == a.cues and b.half_life == 7 and b.min_updates == 4
    for baseline in (a, b):
        baseline.update(cue(st=13.0, db=None))
    for name in a.cues:
        assert b.mean(name) == a.mean(name)
        assert b.sd(name) == a.sd(name)
        assert b.count(name) == a.count(name)
    assert b.zscore(cue(st=9.0), "f0_median_st") == a.zscore(cue(st=9.0), "f0_median_st")


def test_from_dict_refuses_other_versions_and_malformed_state() -> None:
    state = SpeakerBaseline(cues=["hnr_db"]).to_dict()
    with pytest.raises(ValueError, match="version"):
        SpeakerBaseline.from_dict(state | {"version": 99})
    broken = json.loads(json.dumps(state))
    del broken["cues"]["hnr_db"]["m2"]
    with pytest.raises(ValueError, match="malformed"):
        SpeakerBaseline.from_dict(broken)


def test_speaker_baselines_are_separate_and_lru_bounded() -> None:
    baselines = SpeakerBaselines(max_speakers=3, half_life=10, cues=["f0_median_st"])
    for speaker, st in [("a", 1.0), ("b", 2.0), ("c", 3.0)]:
        baselines.update(speaker, cue(st=st))
    assert baselines["b"].mean("f0_median_st") == 2.0
    assert baselines["a"].half_life == 10
    baselines.baseline("a")  # a is now the most recently used; b the least
    baselines.update("d", cue(st=4.0))
    assert len(baselines) == 3
    assert set(baselines) == {"a", "c", "d"}
    assert "b" not in baselines
    assert baselines["a"].count("f0_median_st") == 1  # survived with its state


def test_speaker_baselines_never_exceed_the_bound() -> None:
    baselines = SpeakerBaselines(max_speakers=50)
    for i in range(1000):
        baselines.update(f"spk{i}", cue(st=float(i)))
    assert len(baselines) == 50
    assert list(baselines) == [f"spk{i}" for i in range(950, 1000)]


def test_speaker_baselines_refuse_bad_settings_up_front() -> None:
    with pytest.raises(ValueError):
        SpeakerBaselines(max_speakers=0)
    with pytest.raises(ValueError):
        SpeakerBaselines(half_life=-1)
