"""What every engine backend gives the daemon: the audio tower's outputs for a batch, and query embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """Per utterance, in input order: L2-normalised embeddings ``(n, d)`` and SER logits ``(n, classes)`` of the
    clip alone, for a bundle that normalises by speaker the layer statistics ``(n, n_layers, 2d)``, and for one
    that predicts them arousal and valence ``(n, 4)`` (see ``emoscribe.bundle.AFFECT_OUTPUT``)."""

    embeddings: np.ndarray
    logits: np.ndarray
    layer_stats: np.ndarray | None = None
    affect: np.ndarray | None = None


class Engine(Protocol):
    """What the service needs from a backend: local ONNX Runtime, or a Triton client."""

    providers: list[str]
    variant: str
    """The audio tower file that runs (``audio.onnx``, ``audio.fp16.onnx`` ...)."""

    def warm_up(self, max_batch: int) -> None:
        """Run once before the first utterance, so start-up costs and failures happen at start."""
        ...

    def infer(self, utterances: Sequence[np.ndarray]) -> EngineOutput:
        """Embed float32 16 kHz utterances of any lengths in one call."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Joint-space embeddings of natural-language queries, for matching at run time."""
        ...
