"""Acoustic prompts (Dhamyal et al. 2023, Table 2) and the one-sentence description."""

from __future__ import annotations

import pytest

from emoscribe.cues.binning import BinContext, LiteratureBinner, Token
from emoscribe.cues.model import Cues
from emoscribe.cues.prompts import Prompt, PromptTemplates, acoustic_prompts, describe_sentence

CUE_OF = {
    "pitch": "f0_median_hz",
    "intensity": "intensity_mean_db",
    "speech_rate": "speech_rate",
    "articulation_rate": "articulation_rate",
}


def tok(family: str, level: str | None, sex: str | None = None, relative: bool = False) -> Token:
    return Token(family, level, sex, CUE_OF[family], None if level is None else 1.0, relative=relative)


def all_tokens(pitch: str | None, intensity: str | None, speech: str | None, artic: str | None, sex=None):
    return {
        "pitch": tok("pitch", pitch, sex),
        "intensity": tok("intensity", intensity),
        "speech_rate": tok("speech_rate", speech),
        "articulation_rate": tok("articulation_rate", artic),
    }


def test_prompts_of_table_2() -> None:
    prompts = acoustic_prompts(all_tokens("high", "low", "high", "low", sex="female"), "ang")
    assert prompts == [
        Prompt("class", "anger"),
        Prompt("pitch", "high female pitch anger"),
        Prompt("intensity", "low intensity anger"),
        Prompt("speech_rate", "high speech rate anger"),
        Prompt("articulation_rate", "low articulation rate anger"),
    ]


def test_sex_independent_pitch_and_unknown_levels_omitted() -> None:
    prompts = acoustic_prompts(all_tokens("low", "low", None, None), "Sadness")
    assert [p.text for p in prompts] == ["sadness", "low pitch sadness", "low intensity sadness"]
    assert [p.family for p in prompts] == ["class", "pitch", "intensity"]


def test_mid_level_reads_medium() -> None:
    prompts = acoustic_prompts({"intensity": tok("intensity", "mid")}, "neu")
    assert [p.text for p in prompts] == ["neutral", "medium intensity neutral"]


def test_without_emotion_the_prompts_describe_only_the_voice() -> None:
    prompts = acoustic_prompts(all_tokens("high", None, "low", None, sex="male"), None)
    assert [p.text for p in prompts] == ["high male pitch", "low speech rate"]


def test_relative_prompts() -> None:
    tokens = {
        "pitch": tok("pitch", "high", relative=True),
        "intensity": tok("intensity", "mid", relative=True),
        "speech_rate": tok("speech_rate", "low", relative=True),
        "articulation_rate": tok("articulation_rate", None, relative=True),
    }
    assert [p.text for p in acoustic_prompts(tokens, "hap")] == [
        "happiness",
        "higher pitch than usual happiness",
        "usual intensity happiness",
        "lower speech rate than usual happiness",
    ]


def test_from_binner_output() -> None:
    cues = Cues(duration_s=2.0, f0_median_hz=250.0, intensity_mean_db=70.0, speech_rate=3.0)
    tokens = LiteratureBinner().tokens(cues, BinContext(sex="female"))
    assert [p.text for p in acoustic_prompts(tokens, "fear")] == [
        "fear",
        "high female pitch fear",
        "high intensity fear",
        "low speech rate fear",
    ]


def test_unknown_emotion_and_unknown_family_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown emotion"):
        acoustic_prompts(all_tokens("high", None, None, None), "grumpy")
    with pytest.raises(ValueError, match="loudness"):
        acoustic_prompts({"loudness": tok("intensity", "high")}, "ang")


def test_templates_are_configurable() -> None:
    templates = PromptTemplates.from_mapping({"pitch_sex": "{emotion} with {level} {sex} pitch"})
    prompts = acoustic_prompts(all_tokens("low", None, None, None, sex="male"), "sad", templates)
    assert prompts[1] == Prompt("pitch", "sadness with low male pitch")


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ({"pitchh": "{level} pitch {emotion}"}, "unknown template"),
        ({"pitch": "{level} pitch"}, r"pitch .* must use exactly \{emotion\}, \{level\}"),
        ({"intensity": "{level} {sex} intensity {emotion}"}, "intensity"),
        ({"class_label": "{emotion"}, "not a valid format string"),
        ({"subject": "A {sex} voice"}, "no placeholders"),
        ({"speech_rate": "{} speech rate {emotion}"}, "speech_rate"),
        ({"relative_high": "higher {level} {emotion}"}, "relative_high"),
    ],
)
def test_template_validation(mapping: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PromptTemplates.from_mapping(mapping)


def test_sentence_with_everything_known() -> None:
    tokens = all_tokens("high", "high", "high", "high", sex="female")
    assert describe_sentence(tokens, "angry") == (
        "A female voice with high pitch, high intensity, a fast speech rate and a fast articulation rate, "
        "sounding angry."
    )


def test_sentence_levels_and_omissions() -> None:
    tokens = all_tokens("low", "mid", None, "low")
    assert describe_sentence(tokens, "dis") == (
        "A voice with low pitch, moderate intensity and a slow articulation rate, sounding disgusted."
    )
    assert describe_sentence(all_tokens(None, None, "mid", None), None) == "A voice with a moderate speech rate."


def test_sentence_with_nothing_known_is_still_a_sentence() -> None:
    nothing = all_tokens(None, None, None, None)
    assert describe_sentence(nothing, "sad") == "A voice sounding sad."
    assert describe_sentence(nothing, None) == "A voice."
    assert describe_sentence({}, "ps") == "A voice sounding surprised."
    assert (
        describe_sentence(all_tokens(None, None, None, None, sex="male"), "calm") == "A male voice sounding calm."
    )


def test_relative_sentence() -> None:
    tokens = {
        "pitch": tok("pitch", "high", relative=True),
        "intensity": tok("intensity", "mid", relative=True),
        "speech_rate": tok("speech_rate", "low", relative=True),
    }
    assert describe_sentence(tokens, "exc") == (
        "A voice with higher pitch than usual, its usual intensity and lower speech rate than usual, "
        "sounding excited."
    )
