"""A worker process of a sharded daemon: its share of the RTP call legs through the front end, results to the
main process over a ZeroMQ PUSH socket.

Notices are the types of :mod:`emoscribe.daemon.worker_link`. Per-frame counters are summed here and sent
every :data:`TALLY_S` seconds, so the link carries a few messages per utterance rather than one per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import zmq

from emoscribe.cues.binning import Binner
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.frames import StreamInfo
from emoscribe.daemon.frontend import Frontend, ReadyUtterance, run_sources, segmenter_factory
from emoscribe.daemon.shedding import Shedder
from emoscribe.daemon.sources import open_sources
from emoscribe.daemon.worker_link import (
    Notice,
    PartialReady,
    StreamClosed,
    StreamOpened,
    Tally,
    UtteranceReady,
    WorkerDone,
    WorkerReady,
    encode,
)
from emoscribe.logs import configure_logging
from emoscribe.messages import PartialCues

log = logging.getLogger(__name__)

TALLY_S = 0.25
SEND_HWM = 100_000
"""Messages the link may hold while the main process is busy; past it a message is dropped and counted."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs, sent to it when it is spawned."""

    index: int
    config: DaemonConfig
    sockets: tuple[socket.socket, ...]
    """Its socket of each RTP source's group, in the order of the RTP sources."""
    binner: Binner
    endpoint: str
    log_level: int
    json_logs: bool


class LinkDownstream:
    """The worker's :class:`~emoscribe.daemon.frontend.Downstream`: everything goes to the main process."""

    def __init__(self, endpoint: str, index: int, shedder: Shedder | None = None) -> None:
        self.index = index
        self.shedder = shedder
        self._context = zmq.Context()
        self._push = self._context.socket(zmq.PUSH)
        self._push.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._push.setsockopt(zmq.LINGER, 5_000)
        self._push.connect(endpoint)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._watched: dict[str, Mapping[str, Counter[str]]] = {}

    def send(self, notice: Notice) -> None:
        try:
            self._push.send(encode(notice), flags=zmq.NOBLOCK)
        except zmq.Again:
            self._counts[("drops", "worker_link_full")] += 1

    def stream_opened(self, info: StreamInfo) -> None:
        self.send(StreamOpened(self.index, info))

    def partial_cues(self, message: PartialCues, seconds: float) -> None:
        self.send(PartialReady(message, seconds))

    def utterance_ready(self, ready: ReadyUtterance) -> None:
        self.send(UtteranceReady(ready))

    def stream_closed(self, stream: str, reason: str, position: float | None) -> None:
        self.send(StreamClosed(stream, reason, position))

    def count(self, family: str, label: str, n: int = 1) -> None:
        self._counts[(family, label)] += n

    def watch_source(self, name: str, tallies: Mapping[str, Counter[str]]) -> None:
        self._watched[name] = tallies

    def flush_tally(self) -> None:
        """Counter increments since the last flush, and each source's own counters as they stand."""
        counts, self._counts = dict(self._counts), Counter()
        tallies = {
            f"worker{self.index}-{name}": {family: dict(tally) for family, tally in families.items()}
            for name, families in self._watched.items()
        }
        self.send(Tally(counts, tallies))

    def close(self) -> None:
        self._push.close()
        self._context.term()


def worker_main(spec: WorkerSpec) -> None:
    """Entry point of a worker process (spawned: it shares no state with the main process but its sockets)."""
    configure_logging(spec.log_level, spec.json_logs)
    link = LinkDownstream(spec.endpoint, spec.index, Shedder(spec.config.shedding, spec.config.budget))
    try:
        sources = open_sources(spec.config, list(spec.sockets))
        frontend = Frontend(segmenter_factory(spec.config), spec.binner, spec.config.cues.partial_interval_s, link)
        link.send(WorkerReady(spec.index))
        asyncio.run(_serve(spec, sources, frontend, link))
        link.flush_tally()
        link.send(WorkerDone(spec.index))
    finally:
        link.close()


async def _serve(spec: WorkerSpec, sources, frontend: Frontend, link: LinkDownstream) -> None:
    """Run the sources until SIGTERM/SIGINT or until the main process is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    parent = os.getppid()

    async def housekeeping() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TALLY_S)
            link.flush_tally()
            if os.getppid() != parent:
                log.error("the main process is gone; stopping")
                stop.set()

    chores = asyncio.create_task(housekeeping())
    await run_sources(sources, frontend, stop)
    stop.set()
    await chores
