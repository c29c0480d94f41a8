"""A ZeroMQ SUB client for the daemon's messages, counting per-stream gaps (lost messages) from ``seq``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from emoscribe.daemon.publisher import DEFAULT_ENDPOINT


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.topic.split(".", 1)[0]

    @property
    def stream(self) -> str:
        return self.payload.get("stream", "")


class Subscriber:
    """Subscribes to topic prefixes (``""`` for everything, ``"utterance."``, ``"cues.rtp-1a2b"``...).

    ``gaps`` counts, per stream, messages the subscriber never received (a slow subscriber loses messages at
    the daemon's high-water mark rather than slowing it down). Malformed messages are counted in ``malformed``.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        topics: Sequence[str] = ("",),
        server_key: bytes | None = None,
        context: zmq.Context | None = None,
        receive_hwm: int = 100_000,
    ) -> None:
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, receive_hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        if server_key is not None:
            public, secret = zmq.curve_keypair()
            self._socket.curve_serverkey = server_key
            self._socket.curve_publickey = public
            self._socket.curve_secretkey = secret
        for topic in topics:
            self._socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        self._socket.connect(endpoint)
        self._next: dict[str, int] = {}
        self.gaps: Counter[str] = Counter()
        self.malformed = 0

    def receive(self, timeout_ms: int | None = None) -> Message | None:
        """The next message, or ``None`` after ``timeout_ms`` without one."""
        while True:
            if timeout_ms is not None and not self._socket.poll(timeout_ms):
                return None
            parts = self._socket.recv_multipart()
            try:
                topic, payload = parts[0].decode(), json.loads(parts[1])
                seq, stream = int(payload["seq"]), str(payload["stream"])
            except (IndexError, ValueError, KeyError, TypeError, UnicodeDecodeError):
                self.malformed += 1
                continue
            expected = self._next.get(stream)
            if expected is not None and seq > expected:
                self.gaps[stream] += seq - expected
            self._next[stream] = seq + 1
            return Message(topic, payload)

    def __iter__(self) -> Iterator[Message]:
        while True:
            message = self.receive()
            if message is not None:
                yield message

    def close(self) -> None:
        self._socket.close()
