"""From the daemon's ZeroMQ feed to every open page: a subscriber thread and a bounded fan-out.

ZeroMQ sockets belong to one thread, so the subscriber lives in a thread of its own and hands each message to
the event loop. Every page gets a bounded queue: a page that cannot keep up loses events (counted) rather than
holding memory or slowing the other pages, as the daemon's own PUB socket treats slow subscribers. The last
``history`` messages are replayed to a page opened late, so it draws the recent past at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from emoscribe.clients.subscriber import Subscriber

Event = tuple[str, str]  # (SSE event name, JSON data)
PageQueue = asyncio.Queue[Event | None]  # None: the server is closing, end the page's stream


class Relay:
    """Fans events out to the attached pages; lives on the event loop's thread."""

    def __init__(self, history: int = 2000, page_queue: int = 10_000) -> None:
        if not 0 <= history <= page_queue:
            raise ValueError(f"history ({history}) must be between 0 and the page queue ({page_queue})")
        self._history: deque[Event] = deque(maxlen=history)
        self._latest_health: Event | None = None
        self._pages: set[PageQueue] = set()
        self._closed = False
        self._page_queue = page_queue
        self.dropped = 0

    def message(self, topic: str, payload: dict[str, Any]) -> None:
        event = ("message", json.dumps({"topic": topic, "payload": payload}))
        self._history.append(event)
        self._send(event)

    def health(self, summary: dict[str, Any]) -> None:
        event = ("health", json.dumps({**summary, "dashboard_dropped": self.dropped}))
        self._latest_health = event
        self._send(event)

    def _send(self, event: Event) -> None:
        if self._closed:
            return
        for queue in self._pages:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1

    def attach(self) -> PageQueue:
        """A new page's queue, primed with the history and the latest health."""
        queue: PageQueue = asyncio.Queue(self._page_queue + 2)
        for event in self._history:
            queue.put_nowait(event)
        if self._latest_health is not None:
            queue.put_nowait(self._latest_health)
        if self._closed:
            queue.put_nowait(None)
        self._pages.add(queue)
        return queue

    def detach(self, queue: PageQueue) -> None:
        self._pages.discard(queue)

    def close(self) -> None:
        """End every page's stream (open event streams would otherwise hold up the server's shutdown)."""
        self._closed = True
        for queue in self._pages:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)


class SubscriberFeed:
    """Reads the daemon in a thread of its own and calls ``deliver(topic, payload)`` on the event loop."""

    def __init__(self, endpoint: str, topics: Sequence[str], curve: dict[str, Any]) -> None:
        self._subscriber = Subscriber(endpoint, topics, **curve)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = 0
        self.malformed = 0

    def start(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[str, dict[str, Any]], None]) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(loop, deliver), name="emoscribe-dashboard-feed", daemon=True
        )
        self._thread.start()

    def _run(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[str, dict[str, Any]], None]) -> None:
        try:
            while not self._stop.is_set():
                message = self._subscriber.receive(200)
                self.lost = sum(self._subscriber.gaps.values())
                self.malformed = self._subscriber.malformed
                if message is not None:
                    loop.call_soon_threadsafe(deliver, message.topic, message.to_payload())
        finally:
            self._subscriber.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
