"""Population normalisation: running moments of the audio tower's layer statistics over every stream the node
hears, against which each utterance is judged.

A speaker reference stops a voice's pitch and timbre from posing as emotion, but it also absorbs an emotion
the speaker keeps for the whole call, so it drifts toward neutral; and a corpus or channel the heads never
heard (another language, a codec, a room) shifts every statistic at once. Moments over *all* streams remove
that shift while leaving each caller's persistent emotion in place. They start from the bundle's training
priors (``speaker.onnx`` shrinks a reference of few utterances toward them), adapt to the deployment, forget
exponentially past ``horizon`` utterances, survive restarts in ``file`` (written atomically) and can be reset
over the control socket (``{"op": "reset_population"}``, ``emoscribe population reset``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoscribe.bundle import SPEAKER_INPUTS, SPEAKER_MODEL, Bundle
from emoscribe.daemon.engine.onnx_local import open_session
from emoscribe.daemon.speaker_reference import RunningMoments
from emoscribe.daemon.switch import AUTO, Switch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PopulationSettings:
    """The ``[population]`` section."""

    enabled: Switch = AUTO
    """Judge every utterance against the node's population moments instead of its stream's speaker moments:
    ``auto`` where the bundle was trained so (``emoscribe.daemon.normalisation``), ``true``, ``false``."""
    file: str = ""
    """Where the moments persist across restarts (empty: memory only)."""
    horizon: int = 5000
    """Utterances the moments hold exactly; past it they forget exponentially at that rate."""
    save_every: int = 100
    """Utterances between writes of ``file`` (it is also written on reset and at shutdown)."""

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.save_every < 1:
            raise ValueError(f"horizon and save_every must be at least 1: {self}")


class PopulationNormaliser:
    """Judges batches against the shared moments, then folds each row in, in row order; the batcher's thread
    judges while the control socket may reset, hence the lock."""

    def __init__(self, bundle: Bundle, settings: PopulationSettings) -> None:
        if bundle.speaker_horizon is None:
            raise ValueError(f"{bundle.path}: population normalisation needs a bundle with {SPEAKER_MODEL}")
        self.settings = settings
        self.path = Path(settings.file) if settings.file else None
        self.session = open_session(str(bundle.file(SPEAKER_MODEL)), "cpu", 1)
        shape = tuple(self.session.get_inputs()[0].shape[1:])
        self.shape = shape if all(isinstance(d, int) for d in shape) else None
        self.moments: RunningMoments | None = self._load()
        self._unsaved = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return 0 if self.moments is None else self.moments.count

    def judge(
        self, speakers: Sequence[str | None], layer_stats: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, None, np.ndarray | None]:
        """Embeddings, logits, no speaker count, and arousal/valence where the bundle has them, each row judged
        against the population as it was before it (``speakers`` are not used: every stream counts alike)."""
        rows = layer_stats.astype(np.float32)
        counts = np.zeros(len(rows), dtype=np.float32)
        means = np.zeros_like(rows)
        variances = np.zeros_like(rows)
        with self._lock:
            if self.moments is None:
                self.moments = RunningMoments(rows.shape[1:], self.settings.horizon)
            for row, value in enumerate(rows):
                counts[row], means[row], variances[row] = self.moments.count, self.moments.mean, self.moments.var
                self.moments.update(value)
            self._unsaved += len(rows)
            if self._unsaved >= self.settings.save_every:
                self._save()
        embeddings, logits, *affect = self.session.run(
            None, dict(zip(SPEAKER_INPUTS, (rows, counts, means, variances), strict=True))
        )
        return embeddings, logits, None, affect[0] if affect else None

    def forget(self, speaker: str) -> None:
        """A stream's end changes nothing: the population keeps what it heard."""

    def reset(self) -> dict[str, int]:
        """Forget everything heard (back to the bundle's priors) and persist that; returns what was dropped."""
        with self._lock:
            dropped = self.count
            self.moments = None
            self._save()
        log.info("population moments reset (%d utterances dropped)", dropped)
        return {"dropped": dropped}

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        """Write ``file`` atomically (a temporary file renamed over it), or remove it after a reset."""
        self._unsaved = 0
        if self.path is None:
            return
        if self.moments is None:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("wb") as handle:
            np.savez(handle, count=self.moments.count, mean=self.moments.mean, var=self.moments.var)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)

    def _load(self) -> RunningMoments | None:
        if self.path is None or not self.path.exists():
            return None
        with np.load(self.path) as saved:
            mean, var, count = saved["mean"], saved["var"], int(saved["count"])
        if self.shape is not None and mean.shape != self.shape:
            raise ValueError(
                f"{self.path}: moments of shape {mean.shape}, the bundle's statistics are {self.shape}: "
                "made for another bundle; remove the file or reset the population"
            )
        moments = RunningMoments(mean.shape, self.settings.horizon)
        moments.mean, moments.var = mean.astype(np.float32), var.astype(np.float32)
        moments.count = min(count, self.settings.horizon)
        log.info("population moments of %d utterances from %s", moments.count, self.path)
        return moments
