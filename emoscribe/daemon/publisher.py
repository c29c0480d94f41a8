"""ZeroMQ publication of every result: multipart ``[topic, JSON payload]`` on a socket that never blocks.

The socket is an XPUB: like PUB it queues up to the send high-water mark per subscriber and then drops that
subscriber's messages (it never blocks the sender), so one slow subscriber loses messages without slowing the
daemon or the others, and sees the loss as a gap in the per-stream ``seq`` (the subscriber library counts gaps).
Unlike PUB it hands the daemon each new subscription, which is how a subscriber that joins mid-call learns the
streams already open: the publisher re-sends their start messages, marked ``snapshot``, to the new prefix.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

import zmq

from emoscribe.curve import CurveServer
from emoscribe.daemon.compliance import Compliance
from emoscribe.daemon.zmq_bind import bind
from emoscribe.messages import DEFAULT_ENDPOINT, Message, StreamEnded, StreamStarted

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 0.25
"""Least time between two rounds of snapshots: a subscriber that subscribes and unsubscribes in a loop makes
the daemon send at most one round of open streams per interval, whatever its rate."""
MAX_SUBSCRIPTIONS_PER_POLL = 10_000


class Publisher:
    """Stamps each message with its stream's next ``seq`` and the wall time, and sends it without blocking."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        send_hwm: int = 10_000,
        curve: CurveServer | None = None,
        context: zmq.Context | None = None,
        echo: Callable[[Message], None] | None = None,
    ) -> None:
        """``echo`` is also given every message sent (the demo prints them)."""
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.SNDHWM, send_hwm)
        self._socket.setsockopt(zmq.LINGER, 500)
        self._socket.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, even one another subscriber holds
        if curve is not None:
            curve.secure(self._socket)
        self.endpoint = bind(self._socket, endpoint, "the ZeroMQ publisher")
        self.echo = echo
        self._seq: Counter[str] = Counter()
        self._open: dict[str, StreamStarted] = {}
        self._wanted: set[str] = set()
        self._last_snapshot = 0.0
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.snapshots = 0
        self.guard: Compliance | None = None
        """Each stream's compliance policy, applied to everything sent (the service installs it)."""
        self.withheld: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return len(self._open)

    def publish(self, message: Message) -> Message:
        """Send ``message`` under its stream's next ``seq``; return it as sent. A stream's seq counter and
        snapshot are dropped with its end message, so memory does not grow with the streams ever seen."""
        stream = message.stream
        if self.guard is not None:
            allowed = self.guard.stamp(message)
            if allowed is None:
                self.withheld[message.kind] += 1
                return message
            message = allowed
        sent = message.stamped(self._seq[stream], time.time())
        self._seq[stream] += 1
        self._send(sent)
        if isinstance(sent, StreamStarted):
            self._open[stream] = sent
        elif isinstance(sent, StreamEnded):
            self._open.pop(stream, None)
            self._seq.pop(stream, None)
        return sent

    def serve_subscriptions(self) -> int:
        """Read new subscriptions and re-send the open streams' start messages that match them; returns how
        many snapshots went out. Call it regularly from the thread that publishes."""
        for _ in range(MAX_SUBSCRIPTIONS_PER_POLL):
            try:
                notice = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if notice[:1] == b"\x01":
                self._wanted.add(notice[1:].decode("utf-8", "replace"))
        now = time.monotonic()
        if not self._wanted or now - self._last_snapshot < SNAPSHOT_INTERVAL_S:
            return 0
        prefixes, self._wanted = self._wanted, set()
        self._last_snapshot = now
        sent = 0
        for stream, start in list(self._open.items()):
            if any(start.topic.startswith(prefix) for prefix in prefixes):
                if self.guard is not None:  # the role as it is now
                    start = self.guard.stamp(start) or start
                # The stream's next seq, not consumed: the live message that follows carries the same one.
                self._send(start.stamped(self._seq[stream], time.time()).with_snapshot())
                sent += 1
        self.snapshots += sent
        return sent

    def _send(self, message: Message) -> None:
        try:
            self._socket.send_multipart(message.encode(), flags=zmq.NOBLOCK)
            self.sent[message.kind] += 1
            if self.echo is not None:
                self.echo(message)
        except zmq.ZMQError as error:
            self.failed[message.kind] += 1
            log.warning("publish %s failed: %s", message.topic, error)

    def close(self) -> None:
        self._socket.close()
