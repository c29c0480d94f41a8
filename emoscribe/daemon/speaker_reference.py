"""Speaker normalisation at run time: each stream's running moments of the audio tower's layer statistics, and
the bundle's ``speaker.onnx`` that judges every utterance against the stream's earlier ones.

The moments are what training drew as a reference (mean and variance of the statistics of up to ``horizon``
earlier utterances of the speaker); past the horizon they forget exponentially at the same rate, so a stream
that runs for months, or changes speaker, follows the voice it hears now. A stream's moments end with it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from emoscribe.bundle import SPEAKER_INPUTS, SPEAKER_MODEL, Bundle
from emoscribe.daemon.engine.onnx_local import open_session
from emoscribe.lru import LruTable

MAX_SPEAKERS = 2_000
"""Streams whose moments are kept (each ``n_layers * 2d`` float32 pairs: 30 kB for tiny.en); beyond it the
least recently heard is dropped. Ended streams are dropped at once, so this binds only streams left open."""


class Normaliser(Protocol):
    """What the batcher asks of a normaliser: per-stream speaker moments, or the node's population moments
    (``emoscribe.daemon.population``)."""

    def judge(
        self, speakers: Sequence[str | None], layer_stats: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Embeddings, logits, earlier-utterance counts of each row's speaker (``None``: not by speaker) and
        arousal/valence (``None``: the bundle has none)."""
        ...

    def forget(self, speaker: str) -> None:
        """A stream ended."""
        ...


class RunningMoments:
    """Mean and variance of the vectors seen: exact up to ``horizon`` of them, exponentially weighted after."""

    __slots__ = ("count", "horizon", "mean", "var")

    def __init__(self, shape: tuple[int, ...], horizon: int) -> None:
        self.horizon = horizon
        self.count = 0
        self.mean = np.zeros(shape, dtype=np.float32)
        self.var = np.zeros(shape, dtype=np.float32)

    def update(self, value: np.ndarray) -> None:
        self.count = min(self.count + 1, self.horizon)
        weight = 1.0 / self.count
        delta = value - self.mean
        self.mean += weight * delta
        self.var = (1.0 - weight) * (self.var + weight * delta * delta)


class SpeakerNormaliser:
    """Judges batches of utterances against their streams' moments; called from the batcher's thread only,
    while :meth:`forget` may come from the event loop, hence the lock."""

    def __init__(self, bundle: Bundle, max_speakers: int = MAX_SPEAKERS) -> None:
        horizon = bundle.speaker_horizon
        if horizon is None:
            raise ValueError(f"{bundle.path}: the bundle does not normalise by speaker")
        self.horizon = horizon
        self.session = open_session(str(bundle.file(SPEAKER_MODEL)), "cpu", 1)
        self._moments: LruTable[RunningMoments] = LruTable(max_speakers)
        self._lock = threading.Lock()
        self._warm_up()

    def __len__(self) -> int:
        return len(self._moments)

    def judge(
        self, speakers: Sequence[str | None], layer_stats: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Embeddings, logits, the earlier-utterance count and (for a bundle with them) arousal and valence of
        each row, each judged against its speaker's moments as they were before it; then every row is folded
        into its speaker's moments, in row order. A row without a speaker is judged against the population and
        remembered nowhere."""
        counts = np.zeros(len(speakers), dtype=np.float32)
        means = np.zeros_like(layer_stats, dtype=np.float32)
        variances = np.zeros_like(means)

        def new() -> RunningMoments:
            return RunningMoments(layer_stats.shape[1:], self.horizon)

        with self._lock:
            for row, speaker in enumerate(speakers):
                if speaker is None:
                    continue
                moments = self._moments.use(speaker, new)
                counts[row], means[row], variances[row] = moments.count, moments.mean, moments.var
                moments.update(layer_stats[row].astype(np.float32))
        inputs = (layer_stats.astype(np.float32), counts, means, variances)
        embeddings, logits, *affect = self.session.run(None, dict(zip(SPEAKER_INPUTS, inputs, strict=True)))
        return embeddings, logits, counts.astype(np.int64), affect[0] if affect else None

    def forget(self, speaker: str) -> None:
        with self._lock:
            self._moments.forget(speaker)

    def _warm_up(self) -> None:
        """One run before the first utterance, so it pays no session start-up; no speaker is touched."""
        shape = self.session.get_inputs()[0].shape[1:]
        if all(isinstance(d, int) for d in shape):
            self.judge([None], np.zeros((1, *shape), dtype=np.float32))


def speaker_normaliser(bundle: Bundle, enabled: bool = True) -> SpeakerNormaliser | None:
    """The normaliser for ``bundle``, or ``None`` when the bundle does not normalise by speaker or it is off."""
    return SpeakerNormaliser(bundle) if enabled and bundle.speaker_horizon is not None else None
