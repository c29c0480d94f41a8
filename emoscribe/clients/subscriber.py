"""A ZeroMQ SUB client for the daemon's messages: typed messages out, per-stream gaps (lost messages) counted.

A subscriber that joins while calls are going on first receives a ``snapshot`` start message for each stream
already open (the daemon re-sends them on every new subscription); it is passed on once per stream, to a
subscriber that has not seen that stream start, and dropped otherwise, so existing subscribers never see a
stream start twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import zmq

from emoscribe.curve import secure_client
from emoscribe.messages import DEFAULT_ENDPOINT, Message, MessageError, StreamEnded, StreamStarted, decode


class Subscriber:
    """Subscribes to topic prefixes (``""`` for everything, ``"utterance."``, ``"cues.rtp-1a2b"``...).

    ``gaps`` counts, per stream, messages the subscriber never received (a slow subscriber loses messages at
    the daemon's high-water mark rather than slowing it down). Malformed messages are counted in ``malformed``.
    For a daemon with CURVE on, give its public key and this client's key pair (listed with the daemon).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        topics: Sequence[str] = ("",),
        server_key: bytes | None = None,
        client_keys: tuple[bytes, bytes] | None = None,
        context: zmq.Context | None = None,
        receive_hwm: int = 100_000,
    ) -> None:
        if (server_key is None) != (client_keys is None):
            raise ValueError("CURVE needs both the daemon's public key and this client's key pair")
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, receive_hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        if server_key is not None and client_keys is not None:
            secure_client(self._socket, server_key, client_keys)
        for topic in topics:
            self._socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        self._socket.connect(endpoint)
        self._next: dict[str, int] = {}
        self._started: set[str] = set()
        self.gaps: Counter[str] = Counter()
        self.malformed = 0

    def receive(self, timeout_ms: int | None = None) -> Message | None:
        """The next message, or ``None`` after ``timeout_ms`` without one."""
        while True:
            if timeout_ms is not None and not self._socket.poll(timeout_ms):
                return None
            try:
                message = decode(self._socket.recv_multipart())
            except MessageError:
                self.malformed += 1
                continue
            if self._accept(message):
                return message

    def _accept(self, message: Message) -> bool:
        stream = message.stream
        if isinstance(message, StreamStarted):
            if message.snapshot and stream in self._started:
                return False
            self._started.add(stream)
            if message.snapshot:  # carries the next seq without consuming it
                self._next.setdefault(stream, message.seq)
                return True
        expected = self._next.get(stream)
        if expected is not None and message.seq > expected:
            self.gaps[stream] += message.seq - expected
        self._next[stream] = message.seq + 1
        if isinstance(message, StreamEnded):
            self._next.pop(stream, None)
            self._started.discard(stream)
        return True

    def __iter__(self) -> Iterator[Message]:
        while True:
            message = self.receive()
            if message is not None:
                yield message

    def close(self) -> None:
        self._socket.close()
