"""Engines run the bundle's audio tower on a batch of utterances; each backend lives in a module of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """Per utterance, in input order: L2-normalised embeddings ``(n, d)`` and SER logits ``(n, classes)`` of the
    clip alone, and for a bundle that normalises by speaker the layer statistics ``(n, n_layers, 2d)``."""

    embeddings: np.ndarray
    logits: np.ndarray
    layer_stats: np.ndarray | None = None


class Engine(Protocol):
    """What the batcher needs from a backend (local ONNX Runtime now; a Triton client can follow)."""

    providers: list[str]

    def infer(self, utterances: Sequence[np.ndarray]) -> EngineOutput:
        """Embed float32 16 kHz utterances of any lengths in one call."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Joint-space embeddings of natural-language queries, for matching at run time."""
        ...
