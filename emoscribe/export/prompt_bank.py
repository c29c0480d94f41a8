"""The prompt bank: every acoustic prompt the templates can say, which the daemon ranks each utterance against."""

from __future__ import annotations

from collections.abc import Sequence

from emoscribe.cues.binning import FAMILIES, Token
from emoscribe.cues.prompts import Prompt, PromptTemplates, acoustic_prompts

LEVELS = ("low", "high")
SEXES = (None, "male", "female")


def bank_prompts(emotions: Sequence[str | None], templates: PromptTemplates | None = None) -> list[Prompt]:
    """Class prompts and every family x level (x sex for pitch) prompt, for each emotion and for none.

    The emotion-less prompts ("high pitch") let the daemon describe the voice even when the emotion is
    uncertain. Duplicates are dropped, order is stable.
    """
    templates = templates or PromptTemplates()
    seen: dict[str, Prompt] = {}
    for emotion in emotions:
        for family in FAMILIES:
            for level in LEVELS:
                for sex in SEXES if family == "pitch" else (None,):
                    tokens = {family: Token(family, level, sex, "", None)}
                    for prompt in acoustic_prompts(tokens, emotion, templates):
                        seen.setdefault(prompt.text, prompt)
    return list(seen.values())
