"""The Python side of the daemon's control socket: add, list and remove run-time queries.

>>> client = ControlClient("tcp://127.0.0.1:5557")
>>> query = client.add("an agitated customer", threshold=0.6, role="customer")
>>> client.remove(query["id"])
"""

from __future__ import annotations

import json
from typing import Any

import zmq

from emoscribe.curve import secure_client
from emoscribe.messages import DEFAULT_CONTROL_ENDPOINT


class ControlError(RuntimeError):
    """The daemon refused the request (its reason is the message) or did not answer in time."""


class ControlClient:
    def __init__(
        self,
        endpoint: str = DEFAULT_CONTROL_ENDPOINT,
        server_key: bytes | None = None,
        client_keys: tuple[bytes, bytes] | None = None,
        timeout_s: float = 5.0,
        context: zmq.Context | None = None,
    ) -> None:
        if (server_key is None) != (client_keys is None):
            raise ValueError("CURVE needs both the daemon's public key and this client's key pair")
        self.endpoint = endpoint
        self.timeout_ms = int(timeout_s * 1000)
        self._context = context or zmq.Context.instance()
        self._curve = (server_key, client_keys) if server_key is not None and client_keys is not None else None
        self._socket = self._connect()

    def _connect(self) -> zmq.Socket:
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        if self._curve is not None:
            secure_client(socket, *self._curve)
        socket.connect(self.endpoint)
        return socket

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the reply's fields, or ``ControlError`` with the daemon's reason."""
        self._socket.send_multipart([b"", json.dumps(request).encode()])
        if not self._socket.poll(self.timeout_ms):
            self._socket.close()  # a late reply must not answer the next request
            self._socket = self._connect()
            raise ControlError(f"no answer from {self.endpoint} within {self.timeout_ms / 1000:g} s")
        reply = json.loads(self._socket.recv_multipart()[-1])
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "refused"))
        return reply

    def add(
        self,
        text: str,
        threshold: float,
        stream: str | None = None,
        role: str | None = None,
        match: str = "acoustic",
    ) -> dict:
        """``match``: score the utterances' sound (``acoustic``), their transcripts' words (``lexical``, where
        the daemon transcribes the stream) or each (``both``)."""
        request: dict[str, Any] = {"op": "add", "text": text, "threshold": threshold, "match": match}
        if stream is not None:
            request["stream"] = stream
        if role is not None:
            request["role"] = role
        return self.request(request)["query"]

    def list(self) -> list[dict[str, Any]]:
        return self.request({"op": "list"})["queries"]

    def remove(self, query_id: str) -> dict[str, Any]:
        return self.request({"op": "remove", "id": query_id})["query"]

    def reset_population(self) -> dict[str, Any]:
        """Make the daemon forget its population moments (``[population]``)."""
        return self.request({"op": "reset_population"})

    def close(self) -> None:
        self._socket.close()
