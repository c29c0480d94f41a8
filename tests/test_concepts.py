"""Concept tokens: tertile edges, levels, text form and persistence."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from emoscribe.cues.concepts import CONCEPT_CUES, CONCEPTS, ConceptTokenizer
from emoscribe.cues.model import Cues

EDGES = {
    "energy": (55.0, 65.0),
    "pitch": (5.0, 10.0),
    "dynamics": (20.0, 30.0),
    "brightness": (-20.0, -10.0),
    "formants": (450.0, 650.0),
    "voice_quality": (8.0, 15.0),
}


def concept_cues(**values: float | None) -> Cues:
    return Cues(duration_s=2.0, **{CONCEPT_CUES[concept]: value for concept, value in values.items()})


def test_concepts_are_the_six_egemaps_style_cues() -> None:
    assert CONCEPTS == ("energy", "pitch", "dynamics", "brightness", "formants", "voice_quality")
    assert CONCEPT_CUES["pitch"] == "f0_median_st"
    assert CONCEPT_CUES["voice_quality"] == "hnr_db"


def test_levels_from_explicit_edges() -> None:
    tokenizer = ConceptTokenizer(EDGES)
    cues = concept_cues(energy=70.0, pitch=5.0, dynamics=25.0, brightness=-25.0, formants=None, voice_quality=14.9)
    tokens = tokenizer.tokens(cues)
    assert tokens == {
        "energy": "high",
        "pitch": "mid",  # an edge value goes to the upper bin
        "dynamics": "mid",
        "brightness": "low",
        "formants": None,
        "voice_quality": "mid",
    }
    assert ConceptTokenizer.as_text(tokens) == [
        "<energy_high>",
        "<pitch_mid>",
        "<dynamics_mid>",
        "<brightness_low>",
        "<voice_quality_mid>",
    ]
    assert ConceptTokenizer.as_text(tokenizer.tokens(Cues(duration_s=1.0))) == []


def test_fit_gives_tertiles() -> None:
    rng = np.random.default_rng(3)
    n = 300
    columns = {concept: rng.normal(i * 10.0, 1.0 + i, n) for i, concept in enumerate(CONCEPTS)}
    cues = [concept_cues(**{c: float(columns[c][k]) for c in CONCEPTS}) for k in range(n)]
    tokenizer = ConceptTokenizer.fit(cues)
    for concept in CONCEPTS:
        assert tokenizer.edges[concept] == pytest.approx(tuple(np.quantile(columns[concept], [1 / 3, 2 / 3])))
        counts = Counter(tokenizer.tokens(c)[concept] for c in cues)
        assert set(counts) == {"low", "mid", "high"}
        assert max(counts.values()) - min(counts.values()) <= 1


def test_fit_needs_fifteen_defined_values_per_concept() -> None:
    cues = [concept_cues(**dict.fromkeys(CONCEPTS, float(i))) for i in range(20)]
    cues += [concept_cues(**dict.fromkeys(CONCEPTS[:-1], 1.0))] * 10
    ConceptTokenizer.fit(cues)
    with pytest.raises(ValueError, match="voice_quality: 14 defined values"):
        ConceptTokenizer.fit(cues[6:])


def test_constructor_refuses_missing_or_wrongly_sized_edges() -> None:
    with pytest.raises(ValueError, match="concepts"):
        ConceptTokenizer({k: v for k, v in EDGES.items() if k != "energy"})
    with pytest.raises(ValueError, match="energy"):
        ConceptTokenizer(EDGES | {"energy": (60.0,)})
    with pytest.raises(ValueError, match="non-decreasing"):
        ConceptTokenizer(EDGES | {"pitch": (10.0, 5.0)})


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "concept_edges.json"
    ConceptTokenizer(EDGES).save(path)
    document = json.loads(path.read_text())
    assert document["kind"] == "emoscribe.concept_tokenizer"
    assert document["version"] == 1 and document["n_bins"] == 3
    assert ConceptTokenizer.load(path).edges == EDGES


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=0),
        lambda d: d.update(kind="emoscribe.quantile_binner"),
        lambda d: d.update(n_bins=2),
        lambda d: d["edges"].pop("formants"),
        lambda d: d["edges"].update(energy=[1.0, None]),
    ],
)
def test_malformed_file_is_refused_naming_the_path(tmp_path: Path, mutate) -> None:
    path = tmp_path / "edges.json"
    ConceptTokenizer(EDGES).save(path)
    document = json.loads(path.read_text())
    mutate(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"edges\.json"):
        ConceptTokenizer.load(path)


def test_default_loads_the_shipped_edges_or_says_they_are_missing() -> None:
    shipped = Path(__file__).parents[1] / "emoscribe" / "cues" / "data" / "concept_edges.json"
    if shipped.exists():
        assert set(ConceptTokenizer.default().edges) == set(CONCEPTS)
    else:
        with pytest.raises(FileNotFoundError, match=r"concept_edges\.json"):
            ConceptTokenizer.default()
