"""Sharding RTP call legs over worker processes that all feed the one batching engine of the main process.

A busy node is bound by per-leg CPU work (RTP, VAD, Praat cues, Python), not by the engine, and one Python
process uses one core for it. So each RTP source's port is opened as a group of sockets, one per worker, with
the kernel choosing the socket by SSRC (:mod:`emoscribe.daemon.udp_sockets`); each worker runs the front end on
its legs and sends ready utterances, partial cues and stream events to the main process, which batches across
all workers and publishes. Sequence numbers, baselines and metrics stay in the main process, so subscribers see
one daemon.

Policy on a worker that dies (a crash in native code; Python errors are caught inside): its open streams end
with reason ``worker_exit``, the death is counted in ``emoscribe_errors_total{reason="worker_exit"}``, and a new
worker takes over the same sockets, so later packets of its legs start new streams there. A worker that dies
before it is ready (bad configuration, missing VAD model) stops the daemon with an error instead of looping.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import shutil
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path

import zmq
import zmq.asyncio

from emoscribe.cues.binning import Binner
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.frontend import Downstream
from emoscribe.daemon.shard_worker import WorkerSpec, worker_main
from emoscribe.daemon.worker_link import (
    Notice,
    PartialReady,
    StreamClosed,
    StreamOpened,
    Tally,
    UtteranceReady,
    WorkerDone,
    WorkerReady,
    decode,
)

log = logging.getLogger(__name__)

POLL_MS = 100
BURST = 1_000
START_TIMEOUT_S = 120.0


class WorkerStartError(RuntimeError):
    """A worker died before it was ready: the daemon cannot run as configured."""


class ShardPool:
    """The producer for RTP sources when ``workers`` > 1."""

    def __init__(
        self, config: DaemonConfig, binner: Binner, groups: list[list[socket.socket]], json_logs: bool = False
    ) -> None:
        """``config.sources`` are the RTP sources, each with its socket group (``ssrc_socket_group``)."""
        self.config = config
        self.json_logs = json_logs
        self.binner = binner
        self.n = config.workers
        self.groups = groups
        self._folder = Path(tempfile.mkdtemp(prefix="emoscribe-shards-"))  # mode 0700
        self.endpoint = f"ipc://{self._folder / 'link'}"
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[multiprocessing.process.BaseProcess | None] = [None] * self.n
        self._ready: set[int] = set()
        self._done: set[int] = set()
        self._owner: dict[str, int] = {}
        self._tallies: dict[str, dict[str, Counter[str]]] = {}

    async def start(self, downstream: Downstream) -> None:
        """Spawn the workers and wait until each is ready (its VAD loaded, its sockets in use), so the daemon
        reports itself up only when every leg can be served; a worker that cannot start is an error here."""
        self._zmq = zmq.asyncio.Context()
        self._pull = self._zmq.socket(zmq.PULL)
        self._pull.bind(self.endpoint)
        try:
            for index in range(self.n):
                self._spawn(index)
            deadline = time.monotonic() + START_TIMEOUT_S
            while len(self._ready) < self.n:
                if time.monotonic() > deadline:
                    raise WorkerStartError(f"workers not ready after {START_TIMEOUT_S:.0f} s")
                await self._receive_one(downstream)
                self._check_workers(downstream, stopping=False)
        except BaseException:
            self._close()
            raise

    async def run(self, downstream: Downstream, stop: asyncio.Event) -> None:
        try:
            await self._serve(downstream, stop)
        finally:
            self._close()

    def _close(self) -> None:
        self._pull.close(linger=0)
        self._zmq.term()
        self._reap()
        for group in self.groups:
            for sock in group:
                sock.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _spawn(self, index: int) -> None:
        spec = WorkerSpec(
            index,
            self.config,
            tuple(group[index] for group in self.groups),
            self.binner,
            self.endpoint,
            logging.getLogger().getEffectiveLevel(),
            self.json_logs,
        )
        process = self._context.Process(target=worker_main, args=(spec,), name=f"emoscribe-worker-{index}")
        process.start()
        self._processes[index] = process
        log.info("worker %d started (pid %d)", index, process.pid)

    async def _serve(self, downstream: Downstream, stop: asyncio.Event) -> None:
        deadline: float | None = None
        while len(self._done) < self.n:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.config.drain_deadline_s
                for process in self._processes:
                    if process is not None and process.is_alive():
                        process.terminate()  # SIGTERM: the worker closes its legs' utterances and says bye
            if deadline is not None and time.monotonic() > deadline:
                missing = sorted(set(range(self.n)) - self._done)
                log.error("workers %s did not finish within the drain deadline", missing)
                return
            await self._receive_one(downstream)
            self._check_workers(downstream, stopping=deadline is not None)

    async def _receive_one(self, downstream: Downstream) -> None:
        """Dispatch what arrives within one poll period (at most a burst, so worker checks stay regular)."""
        if not await self._pull.poll(POLL_MS):
            return
        for _ in range(BURST):
            try:
                frame = await self._pull.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            self._dispatch(decode(frame), downstream)

    def _dispatch(self, notice: Notice, downstream: Downstream) -> None:
        match notice:
            case StreamOpened(index, info):
                self._owner[info.stream] = index
                downstream.stream_opened(info)
            case PartialReady(message, seconds):
                downstream.partial_cues(message, seconds)
            case UtteranceReady(ready):
                downstream.utterance_ready(ready)
            case StreamClosed(stream, reason, position):
                self._owner.pop(stream, None)
                downstream.stream_closed(stream, reason, position)
            case Tally(counts, tallies):
                for (family, label), n in counts.items():
                    downstream.count(family, label, n)
                for name, families in tallies.items():
                    self._publish_tallies(downstream, name, families)
            case WorkerReady(index):
                self._ready.add(index)
            case WorkerDone(index):
                self._done.add(index)

    def _publish_tallies(self, downstream: Downstream, name: str, families: dict[str, dict[str, int]]) -> None:
        """Keep one set of counters per worker source and update it in place, so the metrics collector reads it."""
        kept = self._tallies.get(name)
        if kept is None:
            kept = self._tallies[name] = {}
            downstream.watch_source(name, kept)
        for family, tally in families.items():
            counter = kept.setdefault(family, Counter())
            counter.clear()
            counter.update(tally)

    def _check_workers(self, downstream: Downstream, stopping: bool) -> None:
        for index, process in enumerate(self._processes):
            if process is None or process.is_alive() or index in self._done:
                continue
            code = process.exitcode
            process.join()
            if stopping:
                log.error("worker %d exited (code %s) without finishing its streams", index, code)
                self._done.add(index)
                continue
            if index not in self._ready:
                raise WorkerStartError(f"worker {index} failed to start (exit code {code}); see its log above")
            log.error("worker %d died (exit code %s); restarting it", index, code)
            downstream.count("errors", "worker_exit")
            for stream in [s for s, owner in self._owner.items() if owner == index]:
                del self._owner[stream]
                downstream.stream_closed(stream, "worker_exit", None)
            self._ready.discard(index)
            self._spawn(index)

    def _reap(self) -> None:
        for process in self._processes:
            if process is None:
                continue
            process.join(timeout=2.0)
            if process.is_alive():
                process.kill()
                process.join()
