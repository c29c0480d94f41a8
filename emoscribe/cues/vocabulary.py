"""One emotion vocabulary across corpora, so that prompts and training labels never depend on a corpus' spelling.

Only textual labels are handled here. Numeric or single-letter codes (RAVDESS ``05``, EmoDB ``W``) belong to the
corpus loaders, which know which corpus a code came from.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "bored",
    "excited",
    "frustrated",
    "contempt",
)
"""Canonical labels: the adjectives of the corpora's manifest, plus extras that other corpora annotate."""

_ALIASES: dict[str, tuple[str, ...]] = {
    "neutral": ("neu", "neutral"),
    "calm": ("cal", "calm"),
    "happy": ("hap", "happy", "happiness", "joy"),
    "sad": ("sad", "sadness"),
    "angry": ("ang", "anger", "angry", "mad"),
    "fearful": ("fea", "fear", "fearful", "afraid"),
    "disgust": ("dis", "disgust", "disgusted"),
    # TESS writes pleasant surprise as "ps" in file names and spells it out in folder names.
    "surprised": ("sur", "surprise", "surprised", "ps", "pleasant surprise", "pleasant surprised"),
    "bored": ("bored", "boredom"),
    "excited": ("exc", "excited", "excitement"),
    "frustrated": ("fru", "frustrated", "frustration"),
    "contempt": ("contempt",),
}

_NOUNS: dict[str, str] = {
    "neutral": "neutral",
    "calm": "calm",
    "happy": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
    "bored": "boredom",
    "excited": "excitement",
    "frustrated": "frustration",
    "contempt": "contempt",
}

_ADJECTIVES: dict[str, str] = {label: label for label in EMOTIONS} | {
    "disgust": "disgusted",
    "contempt": "contemptuous",
}


def _key(label: str) -> str:
    """Fold case, underscores, hyphens and runs of whitespace so that ``Pleasant_Surprise`` finds its alias."""
    return " ".join(label.lower().replace("_", " ").replace("-", " ").split())


_LOOKUP: dict[str, str] = {_key(alias): label for label, aliases in _ALIASES.items() for alias in aliases}


def normalise_emotion(label: str) -> str:
    """Canonical label for any known alias; an unknown label is an error, never a silent default class."""
    if not isinstance(label, str):
        raise TypeError(f"emotion label must be a string, got {type(label).__name__}")
    try:
        return _LOOKUP[_key(label)]
    except KeyError:
        raise ValueError(f"unknown emotion label {label!r}; canonical labels are: {', '.join(EMOTIONS)}") from None


def emotion_noun(label: str) -> str:
    """Noun for prompts in the style of Dhamyal et al. 2023 ("high pitch anger"); accepts any alias."""
    return _NOUNS[normalise_emotion(label)]


def emotion_adjective(label: str) -> str:
    """Adjective for sentences ("sounding disgusted"); accepts any alias."""
    return _ADJECTIVES[normalise_emotion(label)]
