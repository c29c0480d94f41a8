"""Training losses: multi-positive symmetric contrastive loss (CLAP) plus the SER cross-entropy."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def contrastive_loss(similarity: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over an audio-by-text similarity matrix with any number of true pairs.

    Many clips share a prompt ("anger") and a clip is truly described by several prompts, so the target of
    each row (and column) is the uniform distribution over its true partners instead of CLAP's one-hot
    diagonal; rows or columns without a partner are left out.
    """
    positives = positives.to(similarity.dtype)
    loss = similarity.new_zeros(())
    for logits, target in ((similarity, positives), (similarity.T, positives.T)):
        counts = target.sum(dim=1)
        keep = counts > 0
        log_probs = F.log_softmax(logits[keep], dim=1)
        loss = loss + (-(target[keep] / counts[keep, None]) * log_probs).sum(dim=1).mean()
    return loss / 2


def ser_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy with label smoothing, which keeps the posteriors the daemon publishes from saturating."""
    return F.cross_entropy(logits, labels, label_smoothing=smoothing)
