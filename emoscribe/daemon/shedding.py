"""Latency budgets per stage, and shedding optional work in a fixed order when a budget is overrun.

Under overload the daemon gives up, one step at a time and in this order, the work a subscriber can best do
without: the rate of partial cues (:data:`SHED_ORDER` ``partial_cues``: one report in ``partial_slowdown``),
then transcripts (``asr``: utterances are no longer sent to speech recognition, the most expensive optional
work), then captions, then prompt and query scoring. It never sheds voice activity detection, final cues or the
emotion. A step is added when the 95th percentile of a stage's recent latencies exceeds its budget, and taken
back when every stage has stayed under ``recover_ratio`` of its budget; at most one change per ``step_s``,
each judged on latencies observed since the last change. Every shed piece of work is counted by step
(``emoscribe_shed_total``), and each message published while a step is in force names it in ``shed``.

A stage whose own work a step gives up (:data:`RELIEVED_BY`: transcripts late against ``asr_ms``) pushes the
shedding no further than that step: slow speech recognition sheds transcripts, never captions or prompts.

Each process judges its own load: the main process every stage it sees, a worker process of a sharded daemon
its own final-cue latencies, which decide its partial-cue rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

SHED_ORDER = ("partial_cues", "asr", "caption", "prompts")
STAGES = ("cues", "queue", "inference", "describe", "end_to_publish", "asr")
RELIEVED_BY = {"asr": "asr"}
"""Stages whose overrun only the named step relieves: they count toward no step after it."""
MIN_OBSERVATIONS = 5
"""Latencies needed after a change before the next one is judged."""


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """The ``[budget]`` section: each stage's latency budget in milliseconds (95th percentile)."""

    cues_ms: float = 100.0
    queue_ms: float = 50.0
    inference_ms: float = 100.0
    describe_ms: float = 20.0
    end_to_publish_ms: float = 150.0
    asr_ms: float = 3000.0
    """End of utterance to its transcript published (speech recognition runs beside the labels, not before)."""

    def __post_init__(self) -> None:
        if any(value <= 0 for value in asdict(self).values()):
            raise ValueError("every budget must be a positive number of milliseconds")

    def seconds(self) -> dict[str, float]:
        return {stage: getattr(self, f"{stage}_ms") / 1000 for stage in STAGES}


@dataclass(frozen=True, slots=True)
class ShedSettings:
    """The ``[shedding]`` section."""

    enabled: bool = True
    window: int = 20
    """Recent latencies per stage the 95th percentile is taken over."""
    step_s: float = 1.0
    recover_ratio: float = 0.6
    partial_slowdown: int = 4
    """While partial cues are shed, one report in this many is still sent."""

    def __post_init__(self) -> None:
        if self.window < MIN_OBSERVATIONS or self.step_s < 0 or not 0 < self.recover_ratio < 1:
            raise ValueError(f"window must be >= {MIN_OBSERVATIONS}, step_s >= 0 and recover_ratio within (0, 1)")
        if self.partial_slowdown < 1:
            raise ValueError("partial_slowdown must be at least 1")


class Shedder:
    """Watches stage latencies against their budgets and says which steps are shed (one per process that
    runs front ends or the service; used from its event loop only)."""

    def __init__(
        self, settings: ShedSettings, budgets: BudgetSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.budgets = budgets.seconds()
        self.clock = clock
        self.level = 0
        self._recent = {stage: deque(maxlen=settings.window) for stage in STAGES}
        self._ceiling = {
            stage: SHED_ORDER.index(RELIEVED_BY[stage]) + 1 if stage in RELIEVED_BY else len(SHED_ORDER)
            for stage in STAGES
        }
        """The highest level each stage's overrun may raise shedding to."""
        self._changed = clock()

    @property
    def active(self) -> list[str]:
        """The steps shed now, in :data:`SHED_ORDER`."""
        return list(SHED_ORDER[: self.level])

    def sheds(self, step: str) -> bool:
        return step in SHED_ORDER[: self.level]

    def observe(self, stage: str, seconds: float) -> None:
        """One latency of ``stage``; may add or take back a step."""
        if not self.settings.enabled:
            return
        self._recent[stage].append(seconds)
        now = self.clock()
        if now - self._changed < self.settings.step_s:
            return
        ratios = self._ratios()
        if not ratios:
            return
        if any(ratio > 1.0 and self.level < self._ceiling[stage] for stage, ratio in ratios.items()):
            self._change(self.level + 1, now)
        elif max(ratios.values()) < self.settings.recover_ratio and self.level > 0:
            self._change(self.level - 1, now)

    def _ratios(self) -> dict[str, float]:
        """Each stage's 95th percentile over its budget, for the stages seen enough since the last change."""
        return {
            stage: float(np.percentile(values, 95)) / self.budgets[stage]
            for stage, values in self._recent.items()
            if len(values) >= MIN_OBSERVATIONS
        }

    def _change(self, level: int, now: float) -> None:
        self.level = level
        self._changed = now
        for values in self._recent.values():
            values.clear()
