"""What a worker process of a sharded daemon tells the main process: one small type per notice.

Notices travel as single pickled frames on an ``ipc://`` endpoint inside a directory only the daemon's user can
enter; pickle is safe there because both ends are this program, and :func:`decode` refuses anything that is
not one of these types.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

from emoscribe.daemon.frames import StreamInfo
from emoscribe.daemon.frontend import ReadyUtterance
from emoscribe.messages import PartialCues


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """The worker's VAD is loaded and its sockets are in use."""

    index: int


@dataclass(frozen=True, slots=True)
class WorkerDone:
    """The worker closed its legs and sent everything; it exits next."""

    index: int


@dataclass(frozen=True, slots=True)
class StreamOpened:
    index: int
    info: StreamInfo


@dataclass(frozen=True, slots=True)
class PartialReady:
    message: PartialCues
    seconds: float


@dataclass(frozen=True, slots=True)
class UtteranceReady:
    ready: ReadyUtterance


@dataclass(frozen=True, slots=True)
class StreamClosed:
    stream: str
    reason: str
    position: float | None


@dataclass(frozen=True, slots=True)
class Tally:
    """Counter increments since the last tally, and each source's tallies by family as they stand."""

    counts: dict[tuple[str, str], int]
    tallies: dict[str, dict[str, dict[str, int]]]


Notice = WorkerReady | WorkerDone | StreamOpened | PartialReady | UtteranceReady | StreamClosed | Tally
NOTICES = (WorkerReady, WorkerDone, StreamOpened, PartialReady, UtteranceReady, StreamClosed, Tally)


def encode(notice: Notice) -> bytes:
    return pickle.dumps(notice, protocol=5)


def decode(frame: bytes) -> Notice:
    notice = pickle.loads(frame)
    if not isinstance(notice, NOTICES):
        raise TypeError(f"not a worker notice: {type(notice).__name__}")
    return notice
