"""The Cues record round-trips through JSON and refuses what it does not know."""

from __future__ import annotations

import json

import pytest
from conftest import vowel

from emoscribe.cues import CUE_NAMES, Cues, extract_cues


def test_json_round_trip() -> None:
    cues = extract_cues(vowel(150.0))
    assert Cues.from_dict(json.loads(json.dumps(cues.to_dict()))) == cues


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown cue field.*f0_meen_hz"):
        Cues.from_dict({"duration_s": 1.0, "f0_meen_hz": 120.0})


def test_get_names_a_wrong_cue() -> None:
    cues = Cues(duration_s=1.0, f0_median_hz=120.0)
    assert cues.get("f0_median_hz") == 120.0
    assert cues.get("hnr_db") is None
    with pytest.raises(KeyError, match="not a cue"):
        cues.get("loudness")
    assert "f0_median_hz" in CUE_NAMES
