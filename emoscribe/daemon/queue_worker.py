"""A worker thread behind a bounded queue: the shape of the batcher and the ASR worker, which must refuse
(and count) work rather than let a backlog grow without bound."""

from __future__ import annotations

import queue
import threading
import time
from typing import Generic, TypeVar

Item = TypeVar("Item")


class QueueWorker(Generic[Item]):
    """Subclasses implement :meth:`_work`, taking items from ``self._queue`` until ``None``."""

    def __init__(self, max_queue: int, name: str) -> None:
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.refused = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Item) -> bool:
        """Queue ``item``; ``False`` (and counted in :attr:`refused`) when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.refused += 1
            return False
        return True

    def stop(self, timeout: float) -> bool:
        """Finish what is queued, then stop; ``False`` if that took longer than ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    return False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _work(self) -> None:
        raise NotImplementedError
