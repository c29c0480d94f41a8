"""Corpus- and speaker-balanced draws of training rows, and each batch's targets.

Trained on several corpora at once, a uniform draw lets the biggest corpus and its most prolific speakers set
the decision boundaries (TESS's two speakers have 2,800 clips; ASED's 65 have 2,470). So every epoch draws
as many rows as there are, with replacement, each corpus equally likely, within it each speaker equally
likely, within that each of their clips: every corpus and every voice weighs the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emoscribe.training.records import EMOTIONS, Record


def balance_weights(records: Sequence[Record], rows: Sequence[int]) -> np.ndarray:
    """Probability of each of ``rows`` in a balanced draw: ``1 / (corpora * speakers of its corpus * its
    speaker's clips)``."""
    return corpus_speaker_weights(
        [records[r].utterance.corpus for r in rows], [records[r].utterance.speaker for r in rows]
    )


def corpus_speaker_weights(corpus_of: Sequence[str], speaker_of: Sequence[str]) -> np.ndarray:
    """:func:`balance_weights` of rows given by their corpus and speaker (for fitting a model with sample
    weights instead of drawing rows)."""
    clips = Counter(speaker_of)
    speakers = Counter(corpus for corpus, _ in {(c, s) for c, s in zip(corpus_of, speaker_of, strict=True)})
    weights = np.array(
        [1.0 / (speakers[c] * clips[s]) for c, s in zip(corpus_of, speaker_of, strict=True)], dtype=np.float64
    )
    return weights / weights.sum()


def epoch_order(
    records: Sequence[Record], rows: Sequence[int], balanced: bool, rng: np.random.Generator
) -> np.ndarray:
    """One epoch's rows: a balanced draw with replacement, or a permutation where ``balanced`` is off or every
    row already weighs the same (one corpus of equal speakers trains exactly as before balancing existed)."""
    rows = np.asarray(rows)
    weights = balance_weights(records, rows) if balanced else None
    if weights is None or np.allclose(weights, weights[0]):
        return rng.permutation(rows)
    return rng.choice(rows, size=len(rows), replace=True, p=weights)


@dataclass(frozen=True, slots=True)
class Targets:
    """What a batch is scored against: class labels (-1: arousal only), the classes each row's corpus labels
    ``(batch, n_classes)``, and ``(valence, arousal)`` targets (NaN where unknown)."""

    labels: torch.Tensor
    classes: torch.Tensor
    affect: torch.Tensor

    def to(self, device: torch.device) -> Targets:
        return Targets(self.labels.to(device), self.classes.to(device), self.affect.to(device))


def batch_targets(records: Sequence[Record], rows: Sequence[int]) -> Targets:
    """The targets of ``rows``."""
    chosen = [records[r] for r in rows]
    classes = torch.zeros(len(chosen), len(EMOTIONS), dtype=torch.bool)
    for i, record in enumerate(chosen):
        classes[i, sorted(record.classes)] = True
    affect = torch.tensor(
        [[np.nan if v is None else v for v in (r.valence, r.arousal)] for r in chosen], dtype=torch.float32
    )
    return Targets(torch.tensor([r.label for r in chosen]), classes, affect)
