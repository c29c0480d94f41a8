"""Evaluation metrics in plain numpy: classification (accuracy, UAR, macro-F1), calibration (expected calibration
error) and retrieval (precision@k)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def classification_metrics(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, unweighted average recall and macro-F1 over the classes present in ``labels``.

    Classes absent from the evaluation set (TESS has no "calm") are left out of UAR and macro-F1 rather than
    counted as zero, so the figures stay comparable across corpora.
    """
    matrix = confusion(labels, predicted, n_classes)
    present = matrix.sum(axis=1) > 0
    true_positive = np.diag(matrix).astype(float)
    recall = true_positive[present] / matrix.sum(axis=1)[present]
    predicted_count = matrix.sum(axis=0)[present]
    precision = np.divide(
        true_positive[present], predicted_count, out=np.zeros_like(recall), where=predicted_count > 0
    )
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(recall), where=total > 0)
    return {
        "accuracy": float(true_positive.sum() / max(matrix.sum(), 1)),
        "uar": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "n": int(matrix.sum()),
    }


def calibration(labels: np.ndarray, posteriors: np.ndarray, bins: int = 15) -> dict[str, float]:
    """Expected calibration error (Guo et al., 2017: top-class confidence in ``bins`` equal-width bins, the
    gap to accuracy weighted by each bin's share), with mean confidence and accuracy: whether the
    ``confidence`` a subscriber reads means what it says."""
    confidence = posteriors.max(axis=1)
    correct = posteriors.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = sum(
        abs(confidence[which == b].mean() - correct[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )
    return {"ece": float(gap), "mean_confidence": float(confidence.mean()), "accuracy": float(correct.mean())}


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T that minimises the negative log-likelihood of ``softmax(logits / T)`` (Guo et al.,
    2017), searched on a log grid from 0.1 to 10: one scalar, so it changes confidences, never the ranking."""
    grid = np.exp(np.linspace(np.log(0.1), np.log(10.0), 401))
    shifted = logits - logits.max(axis=1, keepdims=True)
    picked = shifted[np.arange(len(labels)), labels]

    def nll(t: float) -> float:
        return float(np.mean(np.log(np.exp(shifted / t).sum(axis=1)) - picked / t))

    return float(min(grid, key=nll))


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Mean precision@k over queries: ``scores`` and ``relevant`` are ``(n_queries, n_items)``.

    Queries with no relevant item are skipped (they cannot be answered), as in the retrieval protocol of
    Dhamyal et al. (2023, Table 3).
    """
    answerable = relevant.any(axis=1)
    order = np.argsort(-scores[answerable], axis=1, kind="stable")
    hits = np.take_along_axis(relevant[answerable], order, axis=1)
    return {f"p@{k}": float(hits[:, :k].mean()) if answerable.any() else float("nan") for k in ks}


def restricted_predictions(logits: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """The most probable of ``classes`` per row (class indices): a model with more classes judged on a test
    set that has only these (leave-one-corpus-out's four shared emotions)."""
    classes = np.asarray(classes)
    return classes[np.asarray(logits)[:, classes].argmax(axis=1)]
