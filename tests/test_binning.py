"""Literature, quantile and speaker-relative binners: thresholds, sex handling, fitting and persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.binning import (
    FAMILIES,
    BinContext,
    Binner,
    LiteratureBinner,
    LiteratureThresholds,
    QuantileBinner,
    SexThresholds,
    SpeakerRelativeBinner,
    Token,
    infer_sex,
)
from emoscribe.cues.model import Cues


def clip(
    f0: float | None = None,
    db: float | None = None,
    sr: float | None = None,
    ar: float | None = None,
    st_: float | None = None,
) -> Cues:
    return Cues(
        duration_s=2.0,
        f0_median_hz=f0,
        f0_median_st=st_,
        intensity_mean_db=db,
        speech_rate=sr,
        articulation_rate=ar,
    )


def levels(tokens: dict[str, Token]) -> dict[str, str | None]:
    return {family: token.level for family, token in tokens.items()}


# --- sex inference -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f0", "sex"),
    [
        (None, None),
        (90.0, "male"),
        (145.0, "male"),
        (145.1, None),
        (160.0, None),
        (174.9, None),
        (175.0, "female"),
    ],
)
def test_infer_sex_leaves_the_overlap_unknown(f0: float | None, sex: str | None) -> None:
    assert infer_sex(clip(f0=f0)) == sex


def test_infer_sex_thresholds_are_configurable_and_checked() -> None:
    assert infer_sex(clip(f0=160.0), SexThresholds(male_max_hz=165.0, female_min_hz=200.0)) == "male"
    with pytest.raises(ValueError):
        SexThresholds(male_max_hz=180.0, female_min_hz=170.0)


def test_context_refuses_unknown_sex_words() -> None:
    with pytest.raises(ValueError, match="sex"):
        BinContext(sex="M")


# --- literature binner -----------------------------------------------------------------------------------------


def test_every_binner_gives_all_four_families_even_for_empty_cues() -> None:
    empty = Cues(duration_s=0.1)
    binners: list[Binner] = [
        LiteratureBinner(),
        QuantileBinner({f: [1.0] for f in FAMILIES}),
        SpeakerRelativeBinner(),
    ]
    for binner in binners:
        tokens = binner.tokens(empty)
        assert tuple(tokens) == FAMILIES
        assert all(token.level is None and token.value is None for token in tokens.values())
        assert [token.family for token in tokens.values()] == list(FAMILIES)


@pytest.mark.parametrize(
    ("family", "split", "make"),
    [
        ("intensity", 65.0, lambda v: clip(db=v)),
        ("speech_rate", 4.0, lambda v: clip(sr=v)),
        ("articulation_rate", 4.5, lambda v: clip(ar=v)),
    ],
)
def test_literature_two_bins_around_each_threshold(family: str, split: float, make) -> None:
    binner = LiteratureBinner()
    assert binner.tokens(make(split - 0.01))[family].level == "low"
    assert binner.tokens(make(split))[family].level == "high"  # an edge value falls in the upper bin
    assert binner.tokens(make(split + 0.01))[family].level == "high"
    token = binner.tokens(make(split + 1))[family]
    assert token.value == split + 1 and token.sex is None and not token.relative


@pytest.mark.parametrize(
    ("f0", "sex", "level"),
    [
        (119.0, "male", "low"),
        (120.0, "male", "high"),
        (140.0, "male", "high"),  # high for a man although below the sex-independent split
        (180.0, "female", "low"),  # low for a woman although above the sex-independent split
        (209.0, "female", "low"),
        (210.0, "female", "high"),
    ],
)
def test_literature_pitch_with_given_sex(f0: float, sex: str, level: str) -> None:
    token = LiteratureBinner().tokens(clip(f0=f0), BinContext(sex=sex))["pitch"]
    assert (token.level, token.sex, token.cue, token.value) == (level, sex, "f0_median_hz", f0)


def test_literature_pitch_with_inferred_sex() -> None:
    binner = LiteratureBinner()
    male = binner.tokens(clip(f0=130.0))["pitch"]
    female = binner.tokens(clip(f0=190.0))["pitch"]
    assert (male.sex, male.level) == ("male", "high")
    assert (female.sex, female.level) == ("female", "low")


@pytest.mark.parametrize(("f0", "level"), [(150.0, "low"), (159.9, "low"), (160.0, "high"), (170.0, "high")])
def test_literature_pitch_unknown_sex_uses_two_sex_independent_bins(f0: float, level: str) -> None:
    token = LiteratureBinner().tokens(clip(f0=f0))["pitch"]
    assert (token.level, token.sex) == (level, None)


def test_given_sex_wins_over_inference_and_can_be_switched_off() -> None:
    token = LiteratureBinner().tokens(clip(f0=200.0), BinContext(sex="male"))["pitch"]
    assert (token.sex, token.level) == ("male", "high")
    plain = LiteratureBinner(sex_specific_pitch=False)
    token = plain.tokens(clip(f0=200.0), BinContext(sex="female"))["pitch"]
    assert (token.sex, token.level) == (None, "high")
    assert plain.tokens(clip(f0=130.0))["pitch"].level == "low"


def test_sex_comes_from_the_speakers_usual_f0_once_the_baseline_knows_it() -> None:
    """An angry man's 200 Hz utterance stays male once his usual F0 (about 115 Hz) is known."""
    baseline = SpeakerBaseline()
    binner = LiteratureBinner()
    angry = clip(f0=200.0)
    assert binner.tokens(angry, BinContext(baseline=baseline))["pitch"].sex == "female", "nothing known yet"
    baseline.update(clip(f0=110.0))
    baseline.update(clip())  # an utterance without F0 tells nothing of it
    assert binner.tokens(angry, BinContext(baseline=baseline))["pitch"].sex == "female", "one F0 is no habit"
    baseline.update(clip(f0=120.0))
    assert binner.tokens(angry, BinContext(baseline=baseline))["pitch"].sex == "male"
    assert binner.tokens(angry, BinContext(sex="female", baseline=baseline))["pitch"].sex == "female"
    ambiguous = SpeakerBaseline()
    for f0 in (150.0, 160.0):
        ambiguous.update(clip(f0=f0))
    assert binner.tokens(angry, BinContext(baseline=ambiguous))["pitch"].sex is None


def test_literature_thresholds_from_mapping() -> None:
    thresholds = LiteratureThresholds.from_mapping({"intensity_split_db": 50, "speech_rate_split": 3.0})
    binner = LiteratureBinner(thresholds)
    assert levels(binner.tokens(clip(db=55.0, sr=3.5, ar=4.4))) == {
        "pitch": None,
        "intensity": "high",
        "speech_rate": "high",
        "articulation_rate": "low",
    }
    with pytest.raises(ValueError, match="intensity_split"):
        LiteratureThresholds.from_mapping({"intensity_split": 50})
    with pytest.raises(ValueError):
        LiteratureThresholds(speech_rate_split=-1.0)
    with pytest.raises(ValueError):
        LiteratureThresholds(sex_male_max_hz=190.0)


# --- quantile binner --------------------------------------------------------------------------------------------


def corpus(n: int, seed: int = 0) -> list[Cues]:
    rng = np.random.default_rng(seed)
    return [
        clip(f0=float(f0), db=float(db), sr=float(sr), ar=float(ar))
        for f0, db, sr, ar in zip(
            rng.uniform(80, 300, n), rng.normal(60, 8, n), rng.uniform(2, 6, n), rng.uniform(3, 7, n), strict=True
        )
    ]


@settings(max_examples=60, deadline=None)
@given(
    ints=st.lists(st.integers(0, 1_000_000), min_size=15, max_size=200, unique=True),
    n_bins=st.sampled_from([2, 3]),
)
def test_quantile_bins_are_balanced_on_the_fitting_data(ints: list[int], n_bins: int) -> None:
    values = [40.0 + i / 1000 for i in ints]
    cues = [clip(f0=v, db=v, sr=v, ar=v) for v in values]
    binner = QuantileBinner.fit(cues, n_bins=n_bins)
    assert binner.n_bins == n_bins
    for family in FAMILIES:
        counts = {}
        for c in cues:
            level = binner.tokens(c)[family].level
            counts[level] = counts.get(level, 0) + 1
        assert len(counts) == n_bins
        assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_quantile_three_bins_use_mid_and_undefined_values_are_ignored() -> None:
    cues = [clip(f0=float(v), db=float(v), sr=float(v), ar=float(v)) for v in range(1, 31)]
    binner = QuantileBinner.fit([*cues, Cues(duration_s=1.0)], n_bins=3)
    assert binner.edges["intensity"] == pytest.approx((10.666667, 20.333333))
    assert levels(binner.tokens(clip(db=15.0, sr=1.0, ar=30.0))) == {
        "pitch": None,
        "intensity": "mid",
        "speech_rate": "low",
        "articulation_rate": "high",
    }


@pytest.mark.parametrize("n_bins", [1, 4])
def test_quantile_refuses_other_bin_counts(n_bins: int) -> None:
    with pytest.raises(ValueError, match="n_bins"):
        QuantileBinner.fit(corpus(100), n_bins=n_bins)


def test_quantile_fit_with_too_few_values_names_the_family() -> None:
    cues = corpus(40)
    sparse = [clip(f0=c.f0_median_hz, db=c.intensity_mean_db, sr=c.speech_rate) for c in cues]
    sparse[:9] = [clip(f0=c.f0_median_hz, db=c.intensity_mean_db, sr=c.speech_rate, ar=5.0) for c in cues[:9]]
    with pytest.raises(ValueError, match="articulation_rate: 9 defined values, need at least 10"):
        QuantileBinner.fit(sparse)
    QuantileBinner.fit(corpus(10))  # exactly n_bins * 5 is enough


def test_quantile_pitch_edges_per_sex_and_pooled() -> None:
    men = [clip(f0=float(f), db=60.0, sr=4.0, ar=5.0) for f in np.linspace(90, 150, 20)]
    women = [clip(f0=float(f), db=60.0, sr=4.0, ar=5.0) for f in np.linspace(170, 250, 20)]
    unknown = [clip(f0=160.0, db=60.0, sr=4.0, ar=5.0)] * 5
    binner = QuantileBinner.fit(men + women + unknown, sexes=["male"] * 20 + ["female"] * 20 + [None] * 5)
    assert binner.pitch_by_sex["male"] == pytest.approx((120.0,))
    assert binner.pitch_by_sex["female"] == pytest.approx((210.0,))
    assert binner.edges["pitch"] == pytest.approx((160.0,))
    given = binner.tokens(clip(f0=130.0), BinContext(sex="male"))["pitch"]
    assert (given.sex, given.level) == ("male", "high")
    inferred = binner.tokens(clip(f0=200.0))["pitch"]
    assert (inferred.sex, inferred.level) == ("female", "low")
    pooled = binner.tokens(clip(f0=165.0))["pitch"]  # sex unknown: pooled edges
    assert (pooled.sex, pooled.level) == (None, "high")


def test_quantile_without_sex_edges_falls_back_to_pooled() -> None:
    binner = QuantileBinner.fit(corpus(50))
    token = binner.tokens(clip(f0=100.0), BinContext(sex="male"))["pitch"]
    assert token.sex is None and token.level == "low"
    assert binner.pitch_by_sex == {}


def test_quantile_sex_fit_errors() -> None:
    cues = corpus(30)
    with pytest.raises(ValueError, match="sexes"):
        QuantileBinner.fit(cues, sexes=["male"] * 29)
    with pytest.raises(ValueError, match=r"pitch \(female\)"):
        QuantileBinner.fit(cues, sexes=["male"] * 25 + ["female"] * 5)
    with pytest.raises(ValueError, match="sex"):
        QuantileBinner.fit(cues, sexes=["m"] * 30)


def test_quantile_json_round_trip(tmp_path: Path) -> None:
    sexes = ["male", "female", None] * 20
    binner = QuantileBinner.fit(corpus(60), n_bins=3, sexes=sexes)
    path = tmp_path / "edges.json"
    binner.save(path)
    document = json.loads(path.read_text())
    assert document["version"] == 1 and document["n_bins"] == 3
    loaded = QuantileBinner.load(path)
    assert loaded.n_bins == 3
    assert loaded.edges == binner.edges
    assert loaded.pitch_by_sex == binner.pitch_by_sex
    for c in corpus(20, seed=5):
        assert loaded.tokens(c) == binner.tokens(c)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=2),
        lambda d: d.update(kind="emoscribe.concept_tokenizer"),
        lambda d: d.update(n_bins=3),
        lambda d: d.pop("edges"),
        lambda d: d["edges"].pop("intensity"),
        lambda d: d["edges"].update(pitch=[200.0, 100.0]),
        lambda d: d["edges"].update(pitch="high"),
        lambda d: d["pitch_by_sex"].update(child=[250.0]),
    ],
)
def test_malformed_quantile_file_is_refused_naming_the_path(tmp_path: Path, mutate) -> None:
    path = tmp_path / "edges.json"
    QuantileBinner.fit(corpus(60), sexes=["male", "female"] * 30).save(path)
    document = json.loads(path.read_text())
    mutate(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"edges\.json"):
        QuantileBinner.load(path)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_non_json_quantile_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.json is not a valid emoscribe\.quantile_binner file"):
        QuantileBinner.load(path)


# --- speaker-relative binner ------------------------------------------------------------------------------------


def warm_baseline() -> SpeakerBaseline:
    baseline = SpeakerBaseline(half_life=1e9, min_updates=3)
    for st_, db, rate in [(10.0, 60.0, 4.0), (12.0, 62.0, 5.0), (8.0, 58.0, 3.0)]:
        baseline.update(clip(st_=st_, db=db, sr=rate, ar=rate))
    return baseline  # means 10 st / 60 dB / 4 syll/s, all sample sds 2 (rates 1)


def test_relative_levels_against_the_speaker_baseline() -> None:
    binner = SpeakerRelativeBinner(z_threshold=0.5)
    probe = clip(f0=500.0, st_=11.2, db=59.5, sr=4.49, ar=3.0)  # z: 0.6, -0.25, 0.49, -1
    tokens = binner.tokens(probe, BinContext(baseline=warm_baseline()))
    assert levels(tokens) == {
        "pitch": "high",
        "intensity": "mid",
        "speech_rate": "mid",
        "articulation_rate": "low",
    }
    assert tokens["pitch"].cue == "f0_median_st" and tokens["pitch"].value == 11.2
    assert all(token.relative and token.sex is None for token in tokens.values())


@pytest.mark.parametrize(
    ("st_", "level"), [(8.9, "low"), (9.1, "mid"), (10.0, "mid"), (10.9, "mid"), (11.1, "high")]
)
def test_relative_levels_around_the_threshold(st_: float, level: str) -> None:
    token = SpeakerRelativeBinner().tokens(clip(st_=st_), BinContext(baseline=warm_baseline()))["pitch"]
    assert token.level == level


@pytest.mark.parametrize(("st_", "level"), [(7.0, "low"), (13.0, "high")])
def test_relative_threshold_is_inclusive(st_: float, level: str) -> None:
    baseline = warm_baseline()
    probe = clip(st_=st_)
    z = baseline.zscore(probe, "f0_median_st")
    assert z is not None
    binner = SpeakerRelativeBinner(z_threshold=abs(z))
    assert binner.tokens(probe, BinContext(baseline=baseline))["pitch"].level == level


def test_relative_levels_unknown_without_warm_baseline() -> None:
    binner = SpeakerRelativeBinner()
    probe = clip(st_=20.0, db=80.0, sr=6.0, ar=7.0)
    assert set(levels(binner.tokens(probe)).values()) == {None}
    cold = SpeakerBaseline()
    cold.update(probe)
    cold.update(clip(st_=10.0, db=60.0, sr=4.0, ar=5.0))
    assert set(levels(binner.tokens(probe, BinContext(baseline=cold))).values()) == {None}
    with pytest.raises(ValueError):
        SpeakerRelativeBinner(z_threshold=0.0)


def test_default_loads_the_shipped_edges_or_says_they_are_missing() -> None:
    shipped = Path(__file__).parents[1] / "emoscribe" / "cues" / "data" / "bins.json"
    if shipped.exists():
        assert QuantileBinner.default().n_bins in (2, 3)
    else:
        with pytest.raises(FileNotFoundError, match=r"bins\.json"):
            QuantileBinner.default()
