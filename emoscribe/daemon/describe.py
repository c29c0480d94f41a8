"""From model outputs and cues to what a subscriber reads: emotion (or why it is withheld) and its grounding in
the cues, prompts, tokens, caption."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from emoscribe.affect import affect_phrase
from emoscribe.bundle import Bundle
from emoscribe.cues.baseline import SpeakerBaseline
from emoscribe.cues.binning import BinContext, QuantileBinner, SpeakerRelativeBinner, Token
from emoscribe.cues.concepts import ConceptTokenizer
from emoscribe.cues.grounding import GroundingModel
from emoscribe.cues.model import Cues
from emoscribe.cues.prompts import PromptTemplates, describe_sentence
from emoscribe.daemon.abstention import AbstainSettings, label_reason
from emoscribe.export.prompt_bank import prompt_sexes


def softmax(logits: np.ndarray) -> np.ndarray:
    """Posteriors along the last axis."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Describer:
    """Holds the prompt bank (as joint-space embeddings) and the bundle's cue thresholds."""

    def __init__(
        self,
        bundle: Bundle,
        top_k: int = 3,
        min_confidence: float = 0.35,
        grounding: GroundingModel | None = None,
        contradiction_below: float = 0.0,
        abstain: AbstainSettings | None = None,
    ) -> None:
        """``grounding`` judges each label against the cues (``None``: not judged); ``abstain`` decides whether
        a label the cues contradict is withheld."""
        bank = np.load(bundle.file("prompts.npz"))
        self.labels = bundle.labels
        self.bank_texts = [str(t) for t in bank["texts"]]
        self.bank_families = [str(f) for f in bank["families"]]
        self.bank = bank["embeddings"].astype(np.float32)
        templates = PromptTemplates(**bundle.manifest["prompt_templates"])
        sexes = prompt_sexes([*self.labels, None], templates)
        self.bank_sexes = np.array([sexes.get(text, "") for text in self.bank_texts])
        """The sex each bank prompt names ("" for none): a prompt naming the other sex than the caption's is
        never offered, however close its embedding."""
        self.top_k = top_k
        self.min_confidence = min_confidence
        self.grounding = grounding
        self.contradiction_below = contradiction_below
        self.abstain = abstain or AbstainSettings()
        thresholds = bundle.manifest["cue_thresholds"]
        self.binner = QuantileBinner.from_document(thresholds["quantile_bins"])
        self.relative = SpeakerRelativeBinner()
        self.concepts = ConceptTokenizer(thresholds["concepts"]["edges"])

    def describe(
        self,
        cues: Cues,
        embedding: np.ndarray | None,
        logits: np.ndarray | None,
        baseline: SpeakerBaseline | None = None,
        reference: int | None = None,
        withheld: str | None = None,
        shed: Collection[str] = (),
        affect: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The description fields of an ``utterance`` message. Without model outputs (bad audio, overload,
        engine failure: ``withheld`` says which) the emotion is ``null`` and the prompts are empty, but cues,
        tokens and caption still stand. ``baseline`` is the caller's before this utterance; ``shed`` may name
        ``caption`` and ``prompts`` (prompt scoring), which are then left out. ``affect`` (valence, arousal and
        their standard deviations, from a bundle that predicts them) adds ``emotion.valence``/``arousal`` and
        their confidences, and the caption names a clear arousal or valence."""
        context = BinContext(baseline=baseline)
        tokens = self.binner.tokens(cues, context)
        pitch = tokens.get("pitch")
        sex = pitch.sex if pitch is not None else None
        emotion: dict[str, Any] = {"label": None, "confidence": 0.0, "posteriors": {}}
        prompts: list[dict[str, Any]] = []
        grounding: dict[str, Any] | None = None
        judged = withheld is None and embedding is not None and logits is not None
        if judged:
            posteriors = softmax(logits.astype(np.float64))
            best = int(posteriors.argmax())
            contradiction = False
            if self.grounding is not None:
                verdict = self.grounding.judge(
                    cues, self.labels[best], self.labels, sex, baseline, self.contradiction_below
                )
                grounding = {"label": self.labels[best], **verdict.to_dict()}
                contradiction = verdict.contradiction
            withheld = label_reason(float(posteriors[best]), self.min_confidence, contradiction, self.abstain)
            emotion = {
                "label": None if withheld else self.labels[best],
                "confidence": float(posteriors[best]),
                "posteriors": {label: float(p) for label, p in zip(self.labels, posteriors, strict=True)},
                "speaker_reference": reference,
            } | affect_fields(affect)
        if judged and "prompts" not in shed:
            scores = self.bank @ embedding
            if sex is not None:
                scores = np.where(np.isin(self.bank_sexes, ["", sex]), scores, -np.inf)
            for index in np.argsort(-scores)[: self.top_k]:
                prompts.append(
                    {
                        "text": self.bank_texts[index],
                        "family": self.bank_families[index],
                        "score": float(scores[index]),
                    }
                )
        relative = self.relative.tokens(cues, context) if baseline is not None else {}
        return {
            "emotion": emotion,
            "prompts": prompts,
            "tokens": {family: token.level for family, token in tokens.items()}
            | {f"{family}_vs_usual": token.level for family, token in relative.items()},
            "concepts": self.concepts.tokens(cues),
            "caption": "" if "caption" in shed else caption(tokens, emotion),
            "abstain_reason": withheld,
            "grounding": grounding,
        }


def affect_fields(affect: np.ndarray | None) -> dict[str, float]:
    """``valence`` and ``arousal`` (-1…1) with ``valence_confidence`` and ``arousal_confidence``: one minus the
    standard deviation the head expects of its own value, clipped to 0…1; nothing for a bundle without them."""
    if affect is None:
        return {}
    valence, arousal, valence_sd, arousal_sd = (float(v) for v in affect[:4])
    return {
        "valence": valence,
        "arousal": arousal,
        "valence_confidence": min(max(1.0 - valence_sd, 0.0), 1.0),
        "arousal_confidence": min(max(1.0 - arousal_sd, 0.0), 1.0),
    }


def caption(tokens: Mapping[str, Token], emotion: dict[str, Any]) -> str:
    """The cue sentence, with "(high arousal, negative valence)" before its full stop where the head gave
    them and they are clear."""
    sentence = describe_sentence(tokens, emotion["label"])
    if "arousal" not in emotion:
        return sentence
    phrase = affect_phrase(emotion["arousal"], emotion.get("valence"))
    return f"{sentence[:-1]} ({phrase})." if phrase else sentence
