"""ZeroMQ publication of every result: multipart ``[topic, JSON payload]`` on a PUB socket that never blocks.

A PUB socket queues up to the send high-water mark per subscriber and then drops that subscriber's messages
(ZeroMQ never blocks a PUB sender), so one slow subscriber loses messages without slowing the daemon or the
other subscribers. Each payload carries a per-stream ``seq``; subscribers see any loss as a gap, and the
subscriber library counts gaps.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """The server's CURVE key pair (Z85 text), as written by ``zmq.auth.create_certificates``."""

    public: bytes
    secret: bytes

    @classmethod
    def load(cls, path: str | Path) -> CurveKeys:
        public, secret = zmq.auth.load_certificate(str(path))
        if secret is None:
            raise ValueError(f"{path}: holds no secret key; the daemon needs the server's .key_secret file")
        return cls(public, secret)


class Publisher:
    """Builds the common envelope (schema, stream, seq, wall time) and sends without ever blocking."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        send_hwm: int = 10_000,
        curve: CurveKeys | None = None,
        context: zmq.Context | None = None,
        echo: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        """``echo`` is also given every message sent (the demo prints them)."""
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, send_hwm)
        self._socket.setsockopt(zmq.LINGER, 500)
        if curve is not None:
            self._socket.curve_server = True
            self._socket.curve_publickey = curve.public
            self._socket.curve_secretkey = curve.secret
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as error:
            self._socket.close(0)
            raise OSError(f"cannot bind the ZeroMQ publisher to {endpoint}: {error}") from error
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.echo = echo
        self._seq: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def publish(self, kind: str, stream: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send ``body`` as topic ``<kind>.<stream>`` (``heartbeat`` alone for heartbeats); return the payload."""
        payload = {
            "schema": f"emoscribe.{kind}/1",
            "stream": stream,
            "seq": self._seq[stream],
            "wall_time": time.time(),
            **body,
        }
        self._seq[stream] += 1
        topic = kind if kind == "heartbeat" else f"{kind}.{stream}"
        try:
            self._socket.send_multipart([topic.encode(), json.dumps(payload).encode()], flags=zmq.NOBLOCK)
            self.sent[kind] += 1
            if self.echo is not None:
                self.echo(topic, payload)
        except zmq.ZMQError as error:
            self.failed[kind] += 1
            log.warning("publish %s failed: %s", topic, error)
        return payload

    def forget(self, stream: str) -> None:
        """Drop the sequence counter of an ended stream, so memory does not grow with streams ever seen."""
        self._seq.pop(stream, None)

    def close(self) -> None:
        self._socket.close()
