"""Evaluation of trained heads on held-out clips: SER, zero-shot SER by prompt matching, prompt retrieval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from emoscribe.cues.vocabulary import emotion_noun
from emoscribe.training.features import FeatureSet
from emoscribe.training.heads import EmotionHeads
from emoscribe.training.metrics import classification_metrics, confusion, precision_at_k
from emoscribe.training.records import EMOTIONS, Record
from emoscribe.training.train import TextBank

FAMILIES = ("pitch", "intensity", "speech_rate", "articulation_rate")


@torch.inference_mode()
def audio_outputs(heads: EmotionHeads, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint embeddings and SER posteriors of feature rows."""
    joint, logits = heads.audio(torch.from_numpy(stats.astype(np.float32)))
    return joint.numpy(), torch.softmax(logits, dim=-1).numpy()


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
) -> dict:
    """All figures for ``rows`` read from feature ``variant``; JSON-ready."""
    rows = np.asarray(rows)
    joint, posteriors = audio_outputs(heads, features.stats[variant][rows])
    labels = np.array([records[r].label for r in rows])
    present = sorted(set(labels.tolist()))
    report = {
        "variant": variant,
        "ser": classification_metrics(labels, posteriors.argmax(1), len(EMOTIONS)),
        "confusion": confusion(labels, posteriors.argmax(1), len(EMOTIONS)).tolist(),
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
