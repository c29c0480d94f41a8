"""Emotion labels of every corpus we read map onto one vocabulary; nothing unknown slips through."""

from __future__ import annotations

import pytest

from emoscribe.cues.vocabulary import EMOTIONS, emotion_adjective, emotion_noun, normalise_emotion


@pytest.mark.parametrize(
    ("corpus_labels", "expected"),
    [
        (
            ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"],  # CREMA-D
            ["angry", "disgust", "fearful", "happy", "neutral", "sad"],
        ),
        (
            ["ang", "hap", "exc", "sad", "neu", "fru", "sur", "fea", "dis"],  # IEMOCAP
            ["angry", "happy", "excited", "sad", "neutral", "frustrated", "surprised", "fearful", "disgust"],
        ),
        (
            ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"],  # MELD
            ["angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"],
        ),
        (
            ["angry", "disgust", "fear", "happy", "neutral", "ps", "sad"],  # TESS file names
            ["angry", "disgust", "fearful", "happy", "neutral", "surprised", "sad"],
        ),
    ],
)
def test_corpus_label_sets(corpus_labels: list[str], expected: list[str]) -> None:
    assert [normalise_emotion(label) for label in corpus_labels] == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("  Angry ", "angry"),
        ("MAD", "angry"),
        ("Pleasant_Surprise", "surprised"),
        ("pleasant-surprised", "surprised"),
        ("pleasant   surprise", "surprised"),
        ("Boredom", "bored"),
        ("excitement", "excited"),
        ("frustration", "frustrated"),
        ("afraid", "fearful"),
        ("disgusted", "disgust"),
        ("Contempt", "contempt"),
        ("cal", "calm"),
        ("happiness", "happy"),
    ],
)
def test_aliases_ignore_case_spacing_and_separators(label: str, expected: str) -> None:
    assert normalise_emotion(label) == expected


def test_canonical_labels_are_fixed_points() -> None:
    assert len(EMOTIONS) == 12
    assert all(normalise_emotion(label) == label for label in EMOTIONS)


@pytest.mark.parametrize("label", ["xxx", "oth", "", "05", "W", "angryy"])
def test_unknown_label_is_refused_with_the_vocabulary(label: str) -> None:
    with pytest.raises(ValueError, match="unknown emotion label") as info:
        normalise_emotion(label)
    assert repr(label) in str(info.value)
    assert "neutral" in str(info.value) and "contempt" in str(info.value)


def test_non_string_label_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        normalise_emotion(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "noun"),
    [
        ("angry", "anger"),
        ("HAP", "happiness"),
        ("sadness", "sadness"),
        ("fea", "fear"),
        ("dis", "disgust"),
        ("ps", "surprise"),
        ("neu", "neutral"),
        ("calm", "calm"),
        ("bored", "boredom"),
        ("exc", "excitement"),
        ("fru", "frustration"),
        ("contempt", "contempt"),
    ],
)
def test_emotion_noun(label: str, noun: str) -> None:
    assert emotion_noun(label) == noun


def test_every_canonical_label_has_a_noun_and_an_adjective() -> None:
    for label in EMOTIONS:
        assert emotion_noun(label)
        assert emotion_adjective(label)
    assert emotion_adjective("dis") == "disgusted"
    assert emotion_adjective("ANG") == "angry"
    with pytest.raises(ValueError):
        emotion_noun("nope")
