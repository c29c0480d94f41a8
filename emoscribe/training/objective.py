"""Training losses: multi-positive symmetric contrastive loss (CLAP), the SER cross-entropy over each clip's own
corpus' classes, and the Gaussian likelihood of arousal and valence."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _masked_log_softmax(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the valid entries of each row; invalid entries come back as 0 (they carry no target)."""
    masked = logits.masked_fill(~valid, float("-inf"))
    return torch.where(valid, F.log_softmax(masked, dim=1), torch.zeros_like(logits))


def contrastive_loss(
    similarity: torch.Tensor, positives: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric cross-entropy over an audio-by-text similarity matrix with any number of true pairs.

    Many clips share a prompt ("anger") and a clip is truly described by several prompts, so the target of
    each row (and column) is the uniform distribution over its true partners instead of CLAP's one-hot
    diagonal; rows or columns without a partner are left out. Pairs outside ``valid`` (a prompt naming an
    emotion the clip's corpus never labels) are neither positive nor negative.
    """
    valid = torch.ones_like(positives, dtype=torch.bool) if valid is None else valid.bool()
    positives = positives.to(similarity.dtype) * valid
    loss = similarity.new_zeros(())
    for logits, target, mask in ((similarity, positives, valid), (similarity.T, positives.T, valid.T)):
        counts = target.sum(dim=1)
        keep = counts > 0
        log_probs = _masked_log_softmax(logits[keep], mask[keep])
        loss = loss + (-(target[keep] / counts[keep, None]) * log_probs).sum(dim=1).mean()
    return loss / 2


def ser_loss(
    logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.1, classes: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy with label smoothing, which keeps the posteriors the daemon publishes from saturating.

    ``classes`` ``(batch, n_classes)`` marks the classes each row's corpus labels: the softmax and the smoothing
    run over those only, so a class the corpus lacks gets no negative from its clips. Rows labelled -1 (arousal
    only) are left out; a batch without labelled rows gives 0."""
    keep = labels >= 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    logits, labels = logits[keep], labels[keep]
    valid = torch.ones_like(logits, dtype=torch.bool) if classes is None else classes[keep].bool()
    log_probs = _masked_log_softmax(logits, valid)
    smooth = valid.to(logits.dtype) / valid.sum(dim=1, keepdim=True)
    target = (1 - smoothing) * F.one_hot(labels, logits.shape[1]).to(logits.dtype) + smoothing * smooth
    return -(target * log_probs).sum(dim=1).mean()


def affect_loss(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of ``(valence, arousal)`` targets, NaN where a label says nothing of a
    dimension (arousal-level corpora have no valence): the head learns a value and how sure it can be."""
    known = ~torch.isnan(target)
    if not bool(known.any()):
        return mean.sum() * 0.0
    var = log_var.exp()
    return F.gaussian_nll_loss(mean[known], target[known], var[known], eps=1e-4)
