"""Evaluation of trained heads on held-out clips: SER, zero-shot SER by prompt matching, prompt retrieval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emoscribe.cues.vocabulary import emotion_noun
from emoscribe.training.features import FeatureSet
from emoscribe.training.heads import EmotionHeads, Reference
from emoscribe.training.metrics import classification_metrics, confusion, precision_at_k
from emoscribe.training.records import EMOTIONS, Record
from emoscribe.training.references import ReferenceSampler
from emoscribe.training.train import TextBank

FAMILIES = ("pitch", "intensity", "speech_rate", "articulation_rate")

REFERENCE_CURVE = (0, 1, 3, 10, 20)
"""Earlier utterances of the speaker at which a speaker-normalised model's SER is also reported."""

ONE_EMOTION_CLIPS = 8
"""Reference size of the one-emotion case: every RAVDESS speaker has 7 other clips of each emotion but neutral."""


@torch.inference_mode()
def audio_outputs(
    heads: EmotionHeads, stats: np.ndarray, reference: Reference | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Joint embeddings and SER logits of feature rows."""
    joint, logits = heads.audio(torch.from_numpy(stats.astype(np.float32)), reference)
    return joint.numpy(), logits.numpy()


@torch.inference_mode()
def audio_arousal(heads: EmotionHeads, stats: np.ndarray, reference: Reference | None = None) -> np.ndarray:
    """The arousal output (-1…1) of feature rows; needs heads trained with ``affect``."""
    hidden = heads.audio.hidden(torch.from_numpy(stats.astype(np.float32)), reference)
    return heads.audio.affect_outputs(hidden)[0][:, 1].numpy()


def held_out_reference(
    heads: EmotionHeads,
    features: FeatureSet,
    records: Sequence[Record],
    rows: np.ndarray,
    variant: str,
    clips: int,
    one_emotion: bool = False,
) -> Reference | None:
    """References of ``clips`` other held-out clips of each row's speaker (seeded), for a speaker-normalised
    model; ``None`` for any other."""
    if heads.audio.reference is None or clips == 0:
        return None
    sampler = ReferenceSampler(records, rows)
    n = len(rows)
    return sampler.draw(features, rows, [variant] * n, [clips] * n, np.random.default_rng(0), one_emotion)


def reference_curve(
    heads: EmotionHeads, features: FeatureSet, records: Sequence[Record], rows: np.ndarray, variant: str
) -> dict[str, dict]:
    """SER of a speaker-normalised model by how much of the speaker it knows, down to one emotion only."""
    labels = np.array([records[r].label for r in rows])
    cases = {f"{k} clips": (k, False) for k in REFERENCE_CURVE}
    cases[f"{ONE_EMOTION_CLIPS} clips of one emotion"] = (ONE_EMOTION_CLIPS, True)
    out = {}
    for name, (clips, one_emotion) in cases.items():
        reference = held_out_reference(heads, features, records, rows, variant, clips, one_emotion)
        _, logits = audio_outputs(heads, features.stats[variant][rows], reference)
        out[name] = classification_metrics(labels, logits.argmax(1), len(EMOTIONS))
    return out


@torch.inference_mode()
def text_outputs(heads: EmotionHeads, bank: TextBank, texts: Sequence[str]) -> np.ndarray:
    return heads.text(bank.embeddings[[bank.index[t] for t in texts]]).numpy()


def evaluate(
    heads: EmotionHeads,
    features: FeatureSet,
    bank: TextBank,
    records: Sequence[Record],
    rows: Sequence[int],
    variant: str = "clean",
    reference: Reference | None = None,
) -> dict:
    """All figures for ``rows`` read from feature ``variant``, judged against ``reference`` (a normalising
    model's: see ``emoscribe.training.experiment.published_reference``); JSON-ready."""
    rows = np.asarray(rows)
    joint, logits = audio_outputs(heads, features.stats[variant][rows], reference)
    labels = np.array([records[r].label for r in rows])
    present = sorted(set(labels.tolist()))
    report = {
        "variant": variant,
        "ser": classification_metrics(labels, logits.argmax(1), len(EMOTIONS)),
        "confusion": confusion(labels, logits.argmax(1), len(EMOTIONS)).tolist(),
    }
    class_texts = [emotion_noun(EMOTIONS[c]) for c in present]
    class_scores = joint @ text_outputs(heads, bank, class_texts).T
    zero_shot = np.array(present)[class_scores.argmax(1)]
    report["zero_shot_ser"] = classification_metrics(labels, zero_shot, len(EMOTIONS))
    report["retrieval"] = {"class": _retrieval(heads, bank, joint, records, rows, "class")}
    for family in FAMILIES:
        report["retrieval"][family] = _retrieval(heads, bank, joint, records, rows, family)
    return report


def _retrieval(
    heads: EmotionHeads,
    bank: TextBank,
    joint: np.ndarray,
    records: Sequence[Record],
    rows: np.ndarray,
    family: str,
) -> dict[str, float]:
    """Precision@k of ranking the clips by each prompt of ``family`` that occurs among them (text → audio)."""
    prompt_sets = [
        {p for p, f in zip(records[r].prompts, records[r].families, strict=True) if f == family} for r in rows
    ]
    queries = sorted(set().union(*prompt_sets))
    if not queries:
        return {}
    scores = text_outputs(heads, bank, queries) @ joint.T
    relevant = np.array([[q in s for s in prompt_sets] for q in queries])
    return precision_at_k(scores, relevant) | {"queries": len(queries)}
