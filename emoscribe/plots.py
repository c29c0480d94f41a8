"""Confusion-matrix plots for the evaluation reports (matplotlib, from the ``train`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], title: str, path: Path) -> None:
    """Colours: share of each true class, counts written in; classes absent from the truth are left out."""
    present = matrix.sum(axis=1) > 0
    shown = matrix[present][:, present]
    labels = [e for e, keep in zip(labels, present, strict=True) if keep]
    normalised = shown / matrix[present].sum(axis=1, keepdims=True)
    figure = Figure(figsize=(6, 5))
    axis = figure.subplots()
    axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            axis.text(j, i, str(shown[i, j]), ha="center", va="center", fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
