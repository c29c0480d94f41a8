"""Per-speaker running baselines, so that cues can be read as "higher or lower than usual for this voice".

Absolute cue values mix who speaks with how they speak: a deep voice is not a sad voice. A speaker's own recent
history removes most of the first part. The baseline is exponentially weighted so that it follows slow drift
(a new microphone, a tired evening) while one outburst moves it only a little.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from emoscribe.cues.model import CUE_NAMES, Cues
from emoscribe.lru import LruTable

UNTRACKED_CUES: frozenset[str] = frozenset({"duration_s", "clipped_fraction", "dc_offset"})
"""Recording properties rather than properties of the voice."""

DEFAULT_CUES: tuple[str, ...] = tuple(name for name in CUE_NAMES if name not in UNTRACKED_CUES)

_FORMAT_VERSION = 1
_SD_FLOOR = 1e-9
"""Relative to the mean's magnitude: below this a standard deviation is treated as zero (constant cue)."""


@dataclass(slots=True)
class _Moments:
    """Exponentially weighted moments of one cue (West 1979, with older weights decayed before each update)."""

    count: int = 0
    weight: float = 0.0
    weight_sq: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, value: float, decay: float) -> None:
        self.weight = self.weight * decay + 1.0
        self.weight_sq = self.weight_sq * decay * decay + 1.0
        delta = value - self.mean
        self.mean += delta / self.weight
        self.m2 = self.m2 * decay + delta * (value - self.mean)
        self.count += 1

    def variance(self) -> float | None:
        """Unbiased for reliability weights: equals the sample variance while the weights are still equal."""
        effective = self.weight - self.weight_sq / self.weight if self.weight > 0 else 0.0
        if self.count < 2 or effective <= 0:
            return None
        return max(self.m2 / effective, 0.0)


class SpeakerBaseline:
    """Exponentially weighted mean and standard deviation of each tracked cue of one speaker.

    ``half_life`` is in utterances: after a step change the mean has moved half way to the new level once
    ``half_life`` utterances with that cue defined have been seen. Until the weights have built up, the mean is
    the plain average of what was seen (no bias toward the first utterance). A cue is trusted for z-scores
    after ``min_updates`` utterances that defined it.

    Track pitch in semitones (``f0_median_st``) rather than hertz: equal steps in semitones are equal
    perceived steps at any register, so a z-score means the same for low and high voices.
    """

    def __init__(
        self,
        half_life: float = 20.0,
        min_updates: int = 3,
        cues: Iterable[str] | None = None,
    ) -> None:
        if not (math.isfinite(half_life) and half_life > 0):
            raise ValueError(f"half_life must be a positive number of utterances, got {half_life!r}")
        if isinstance(min_updates, bool) or not isinstance(min_updates, int) or min_updates < 2:
            raise ValueError(f"min_updates must be an integer >= 2 (a spread needs 2 values), got {min_updates!r}")
        names = DEFAULT_CUES if cues is None else tuple(dict.fromkeys(cues))
        unknown = [name for name in names if name not in CUE_NAMES]
        if unknown:
            raise ValueError(f"unknown cue(s) to track: {', '.join(unknown)}")
        if not names:
            raise ValueError("a baseline must track at least one cue")
        self.half_life = float(half_life)
        self.min_updates = min_updates
        self._decay = 0.5 ** (1.0 / self.half_life)
        self._moments = {name: _Moments() for name in names}

    @property
    def cues(self) -> tuple[str, ...]:
        """Names of the tracked cues."""
        return tuple(self._moments)

    def update(self, cues: Cues) -> None:
        """Fold in one utterance; an undefined cue leaves that cue's baseline (and its decay) untouched."""
        for name, moments in self._moments.items():
            value = cues.get(name)
            if value is not None and math.isfinite(value):
                moments.update(value, self._decay)

    def count(self, name: str) -> int:
        """Number of utterances that have updated cue ``name``."""
        return self._get(name).count

    def mean(self, name: str) -> float | None:
        moments = self._get(name)
        return moments.mean if moments.count else None

    def sd(self, name: str) -> float | None:
        variance = self._get(name).variance()
        return None if variance is None else math.sqrt(variance)

    def zscore(self, cues: Cues, name: str) -> float | None:
        """How far ``cues`` lies from this speaker's usual value, in standard deviations.

        ``None`` until the cue is warm, when the utterance leaves the cue undefined, or when the speaker's
        spread is zero. Score an utterance *before* folding it in, so that it is not compared with itself.
        """
        moments = self._get(name)
        value = cues.get(name)
        sd = self.sd(name)
        if moments.count < self.min_updates or value is None or sd is None:
            return None
        if sd <= _SD_FLOOR * max(1.0, abs(moments.mean)):
            return None
        return (value - moments.mean) / sd

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state, so a daemon can keep its baselines across restarts."""
        return {
            "version": _FORMAT_VERSION,
            "half_life": self.half_life,
            "min_updates": self.min_updates,
            "cues": {name: asdict(moments) for name, moments in self._moments.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeakerBaseline:
        """Inverse of :meth:`to_dict`; another version or a malformed state is refused."""
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"baseline state version {data.get('version')!r} is not {_FORMAT_VERSION}")
        try:
            baseline = cls(data["half_life"], data["min_updates"], data["cues"])
            for name, state in data["cues"].items():
                baseline._moments[name] = _Moments(
                    count=int(state["count"]),
                    weight=float(state["weight"]),
                    weight_sq=float(state["weight_sq"]),
                    mean=float(state["mean"]),
                    m2=float(state["m2"]),
                )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed baseline state: {exc!r}") from exc
        return baseline

    def _get(self, name: str) -> _Moments:
        try:
            return self._moments[name]
        except KeyError:
            raise KeyError(f"cue {name!r} is not tracked; tracked cues: {', '.join(self._moments)}") from None


class SpeakerBaselines(LruTable[SpeakerBaseline]):
    """Baselines by speaker id, dropping the least recently used speaker beyond ``max_speakers``.

    The bound keeps a daemon that runs for months with ever new speakers at constant memory. Reading with
    ``[]`` does not count as use; :meth:`baseline` and :meth:`update` do.
    """

    def __init__(
        self,
        max_speakers: int = 10_000,
        half_life: float = 20.0,
        min_updates: int = 3,
        cues: Iterable[str] | None = None,
    ) -> None:
        super().__init__(max_speakers)
        self._settings = {"half_life": half_life, "min_updates": min_updates}
        self._cues = None if cues is None else tuple(cues)
        SpeakerBaseline(half_life, min_updates, self._cues)  # fail now on bad settings, not at the first speaker

    def baseline(self, speaker: str) -> SpeakerBaseline:
        """The speaker's baseline, created empty for a new speaker; marks the speaker as recently used."""
        return self.use(speaker, lambda: SpeakerBaseline(cues=self._cues, **self._settings))

    def update(self, speaker: str, cues: Cues) -> SpeakerBaseline:
        """Fold an utterance into the speaker's baseline and return that baseline."""
        baseline = self.baseline(speaker)
        baseline.update(cues)
        return baseline
