"""Dynamic batching across streams: a bounded queue in front of the engine, drained by one worker thread.

The worker takes the first waiting utterance, then gathers more until ``max_batch`` or until ``max_wait_ms``
after the first one arrived, and runs them in length-sorted groups so short utterances are not padded to the
longest. ``submit`` never blocks: when the queue is full the utterance is refused and counted, and the caller
publishes it without the model's outputs instead of stalling the audio path.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emoscribe.daemon.engine import Engine
from emoscribe.daemon.queue_worker import QueueWorker
from emoscribe.daemon.speaker_reference import Normaliser

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Request:
    """One utterance waiting for the engine; ``context`` is the caller's, handed back with the result;
    ``speaker`` keys the earlier utterances it is judged against, where the bundle normalises by speaker."""

    samples: np.ndarray
    context: Any
    speaker: str | None = None
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class Result:
    request: Request
    embedding: np.ndarray | None
    logits: np.ndarray | None
    queue_s: float
    inference_s: float
    batch_size: int
    error: str | None = None
    reference: int | None = None
    """Earlier utterances of the speaker the outputs were judged against; ``None`` without speaker
    normalisation."""
    affect: np.ndarray | None = None
    """Valence, arousal and their standard deviations, for a bundle that predicts them."""


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 1024
    max_length_ratio: float = 2.0
    """A batch is split where the longest utterance would exceed this multiple of the shortest."""

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1 or self.max_wait_ms < 0 or self.max_length_ratio < 1:
            raise ValueError(f"invalid batching settings: {self}")


class Batcher(QueueWorker[Request]):
    """Runs ``engine`` (then ``normaliser``, if given) on batches and hands each :class:`Result` to
    ``on_result`` (in the worker thread)."""

    def __init__(
        self,
        engine: Engine,
        config: BatchConfig,
        on_result: Callable[[Result], None],
        normaliser: Normaliser | None = None,
    ) -> None:
        self.engine = engine
        self.normaliser = normaliser
        self.config = config
        self.on_result = on_result
        super().__init__(config.max_queue, "emoscribe-batcher")

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = first.enqueued + self.config.max_wait_ms / 1000.0
            stop = False
            while len(batch) < self.config.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            for group in self._groups(batch):
                self._run(group)
            if stop:
                return

    def _groups(self, batch: list[Request]) -> list[list[Request]]:
        batch.sort(key=lambda r: r.samples.size)
        groups: list[list[Request]] = [[batch[0]]]
        for request in batch[1:]:
            if request.samples.size > self.config.max_length_ratio * max(groups[-1][0].samples.size, 1):
                groups.append([])
            groups[-1].append(request)
        return groups

    def _run(self, group: list[Request]) -> None:
        started = time.perf_counter()
        try:
            output = self.engine.infer([r.samples for r in group])
            embeddings, logits, references = output.embeddings, output.logits, [None] * len(group)
            affect = output.affect
            if self.normaliser is not None:
                if output.layer_stats is None:
                    raise RuntimeError("the engine returned no layer statistics to normalise by speaker")
                speakers = [r.speaker for r in group]
                embeddings, logits, counts, affect = self.normaliser.judge(speakers, output.layer_stats)
                if counts is not None:
                    references = [int(c) for c in counts]
        except Exception as error:  # one bad batch must not kill the worker
            log.exception("engine failed on a batch of %d", len(group))
            for request in group:
                waited = started - request.enqueued
                self.on_result(Result(request, None, None, waited, 0.0, len(group), str(error)))
            return
        took = time.perf_counter() - started
        for row, request in enumerate(group):
            waited = started - request.enqueued
            outputs = (embeddings[row], logits[row])
            self.on_result(
                Result(
                    request,
                    *outputs,
                    waited,
                    took,
                    len(group),
                    reference=references[row],
                    affect=None if affect is None else affect[row],
                )
            )
