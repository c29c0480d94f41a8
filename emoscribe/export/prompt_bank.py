"""The prompt bank: every acoustic prompt the templates can say, which the daemon ranks each utterance against."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from emoscribe.cues.binning import FAMILIES, Token
from emoscribe.cues.prompts import Prompt, PromptTemplates, acoustic_prompts

LEVELS = ("low", "high")
SEXES = (None, "male", "female")


def bank_prompts(emotions: Sequence[str | None], templates: PromptTemplates | None = None) -> list[Prompt]:
    """Class prompts and every family x level (x sex for pitch) prompt, for each emotion and for none.

    The emotion-less prompts ("high pitch") let the daemon describe the voice even when the emotion is
    uncertain. Duplicates are dropped, order is stable.
    """
    seen: dict[str, Prompt] = {}
    for prompt, _ in _every_prompt(emotions, templates or PromptTemplates()):
        seen.setdefault(prompt.text, prompt)
    return list(seen.values())


def prompt_sexes(emotions: Sequence[str | None], templates: PromptTemplates | None = None) -> dict[str, str]:
    """The bank prompts that name a speaker sex ("high female pitch anger"), each with that sex."""
    every = _every_prompt(emotions, templates or PromptTemplates())
    return {prompt.text: sex for prompt, sex in every if sex is not None}


def _every_prompt(
    emotions: Sequence[str | None], templates: PromptTemplates
) -> Iterator[tuple[Prompt, str | None]]:
    """Each prompt of the bank (with repeats), with the sex it names, if any."""
    for emotion in emotions:
        for family in FAMILIES:
            for level in LEVELS:
                for sex in SEXES if family == "pitch" else (None,):
                    tokens = {family: Token(family, level, sex, "", None)}
                    for prompt in acoustic_prompts(tokens, emotion, templates):
                        yield prompt, sex if prompt.family == family else None
