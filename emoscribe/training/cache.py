"""Names and grouping of the training caches (features, frames, cues), outside any one run.

Files are keyed by the clips' resolved paths, so a run given ``--data ../shared/data`` and one given the absolute
folder share them; features and cues are kept per corpus, so a run on RAVDESS + TESS + ASED reuses what a run on
any of them (or ``benchmarks/loco.py``) already computed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from emoscribe.datasets import Utterance


def clips_key(utterances: Sequence[Utterance], *settings: object) -> str:
    """Names the cache file of exactly these clips, in this order, under ``settings`` (encoder, seed, ...)."""
    paths = [str(u.path.resolve()) for u in utterances]
    return hashlib.sha256(json.dumps([*settings, paths]).encode()).hexdigest()[:16]


def corpus_rows(utterances: Sequence[Utterance]) -> dict[str, np.ndarray]:
    """Each corpus's row indices among ``utterances``, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        groups.setdefault(u.corpus, []).append(i)
    return {corpus: np.array(rows) for corpus, rows in groups.items()}
