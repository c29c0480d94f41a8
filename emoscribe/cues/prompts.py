"""Acoustic prompts of Dhamyal et al. 2023 (arXiv 2310.02298, Table 2) and a one-sentence description.

The prompts pair an emotion with what the voice did ("high female pitch anger", "low intensity sadness"); the
sentence says the same in prose for people. Wording lives in :class:`PromptTemplates` so it can be changed
without touching code, and every template is checked for its placeholders when it is built.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from emoscribe.cues.binning import FAMILIES, Token
from emoscribe.cues.vocabulary import emotion_adjective, emotion_noun
from emoscribe.mappings import refuse_unknown_keys

QUANTITIES: dict[str, str] = {
    "pitch": "pitch",
    "intensity": "intensity",
    "speech_rate": "speech rate",
    "articulation_rate": "articulation rate",
}
PROMPT_LEVELS: dict[str, str] = {"low": "low", "mid": "medium", "high": "high"}
SENTENCE_LEVELS: dict[str, dict[str, str]] = {
    "pitch": {"low": "low", "mid": "moderate", "high": "high"},
    "intensity": {"low": "low", "mid": "moderate", "high": "high"},
    "speech_rate": {"low": "slow", "mid": "moderate", "high": "fast"},
    "articulation_rate": {"low": "slow", "mid": "moderate", "high": "fast"},
}

_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "class_label": frozenset({"emotion"}),
    "pitch": frozenset({"level", "emotion"}),
    "pitch_sex": frozenset({"level", "sex", "emotion"}),
    "intensity": frozenset({"level", "emotion"}),
    "speech_rate": frozenset({"level", "emotion"}),
    "articulation_rate": frozenset({"level", "emotion"}),
    "relative_low": frozenset({"quantity", "emotion"}),
    "relative_mid": frozenset({"quantity", "emotion"}),
    "relative_high": frozenset({"quantity", "emotion"}),
    "detail_pitch": frozenset({"level"}),
    "detail_intensity": frozenset({"level"}),
    "detail_speech_rate": frozenset({"level"}),
    "detail_articulation_rate": frozenset({"level"}),
    "detail_relative_low": frozenset({"quantity"}),
    "detail_relative_mid": frozenset({"quantity"}),
    "detail_relative_high": frozenset({"quantity"}),
    "subject": frozenset(),
    "subject_sex": frozenset({"sex"}),
    "sentence_details": frozenset({"details"}),
    "sentence_emotion": frozenset({"emotion"}),
}


@dataclass(frozen=True, slots=True)
class PromptTemplates:
    """All wording. Prompt templates (``class_label`` to ``relative_high``) use the emotion *noun*; the sentence
    pieces (``detail_*``, ``subject*``, ``sentence_*``) build "A female voice with high pitch, ..., sounding
    angry." and use the emotion *adjective*. ``quantity`` is the family's name ("speech rate") in relative
    wording, which compares the clip with the speaker's usual voice.
    """

    class_label: str = "{emotion}"
    pitch: str = "{level} pitch {emotion}"
    pitch_sex: str = "{level} {sex} pitch {emotion}"
    intensity: str = "{level} intensity {emotion}"
    speech_rate: str = "{level} speech rate {emotion}"
    articulation_rate: str = "{level} articulation rate {emotion}"
    relative_low: str = "lower {quantity} than usual {emotion}"
    relative_mid: str = "usual {quantity} {emotion}"
    relative_high: str = "higher {quantity} than usual {emotion}"
    detail_pitch: str = "{level} pitch"
    detail_intensity: str = "{level} intensity"
    detail_speech_rate: str = "a {level} speech rate"
    detail_articulation_rate: str = "a {level} articulation rate"
    detail_relative_low: str = "lower {quantity} than usual"
    detail_relative_mid: str = "its usual {quantity}"
    detail_relative_high: str = "higher {quantity} than usual"
    subject: str = "A voice"
    subject_sex: str = "A {sex} voice"
    sentence_details: str = "with {details}"
    sentence_emotion: str = "sounding {emotion}"

    def __post_init__(self) -> None:
        for name, required in _PLACEHOLDERS.items():
            template = getattr(self, name)
            if not isinstance(template, str):
                raise TypeError(f"template {name} must be a string, got {type(template).__name__}")
            try:
                found = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
            except ValueError as exc:
                raise ValueError(f"template {name} ({template!r}) is not a valid format string: {exc}") from None
            if found != required:
                want = ", ".join(f"{{{p}}}" for p in sorted(required)) or "no placeholders"
                raise ValueError(f"template {name} ({template!r}) must use exactly {want}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, str]) -> PromptTemplates:
        """From a config mapping; unknown keys are refused so that a typo never leaves a default in place."""
        refuse_unknown_keys(cls, data, "template(s)")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Prompt:
    family: str
    text: str


def acoustic_prompts(
    tokens: Mapping[str, Token],
    emotion: str | None,
    templates: PromptTemplates = PromptTemplates(),
) -> list[Prompt]:
    """The class prompt, then one prompt per family whose level is known, in :data:`FAMILIES` order.

    This list *is* the prompt augmentation of Dhamyal et al.: each prompt of a clip makes its own
    (clip, prompt) training pair. With ``emotion=None`` (describing unlabelled audio) the emotion word is left
    out and so is the class prompt, which would be empty.
    """
    _check_families(tokens)
    noun = "" if emotion is None else emotion_noun(emotion)
    prompts = [] if emotion is None else [Prompt("class", _fill(templates.class_label, emotion=noun))]
    for family in FAMILIES:
        token = tokens.get(family)
        if token is None or token.level is None:
            continue
        if token.relative:
            template = getattr(templates, f"relative_{token.level}")
            text = _fill(template, quantity=QUANTITIES[family], emotion=noun)
        elif family == "pitch" and token.sex is not None:
            text = _fill(templates.pitch_sex, level=PROMPT_LEVELS[token.level], sex=token.sex, emotion=noun)
        else:
            text = _fill(getattr(templates, family), level=PROMPT_LEVELS[token.level], emotion=noun)
        prompts.append(Prompt(family, text))
    return prompts


def describe_sentence(
    tokens: Mapping[str, Token],
    emotion: str | None,
    templates: PromptTemplates = PromptTemplates(),
) -> str:
    """One sentence for people, e.g. "A female voice with high pitch, high intensity, a fast speech rate and a
    fast articulation rate, sounding angry."; families of unknown level are left out, and with nothing known
    it is still a sentence ("A voice sounding angry.", or "A voice." without an emotion either).
    """
    _check_families(tokens)
    pitch = tokens.get("pitch")
    sex = pitch.sex if pitch is not None else None
    subject = templates.subject if sex is None else _fill(templates.subject_sex, sex=sex)
    details = []
    for family in FAMILIES:
        token = tokens.get(family)
        if token is None or token.level is None:
            continue
        if token.relative:
            details.append(
                _fill(getattr(templates, f"detail_relative_{token.level}"), quantity=QUANTITIES[family])
            )
        else:
            level = SENTENCE_LEVELS[family][token.level]
            details.append(_fill(getattr(templates, f"detail_{family}"), level=level))
    parts = [subject]
    if details:
        listed = details[0] if len(details) == 1 else f"{', '.join(details[:-1])} and {details[-1]}"
        parts.append(" " + _fill(templates.sentence_details, details=listed))
    if emotion is not None:
        parts.append(
            (", " if details else " ") + _fill(templates.sentence_emotion, emotion=emotion_adjective(emotion))
        )
    return "".join(parts) + "."


def _fill(template: str, **values: str) -> str:
    """Format and collapse the doubled or trailing spaces an empty emotion leaves behind."""
    return " ".join(template.format(**values).split())


def _check_families(tokens: Mapping[str, Token]) -> None:
    unknown = sorted(set(tokens) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown token famil(ies): {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
