"""The control socket: subscribers add, list and remove run-time queries while the daemon runs.

Transport: a ZeroMQ ROUTER socket (loopback by default, CURVE with the publisher's keys and allowlist when they
are set). A request is one JSON object in one frame (a REQ client's empty delimiter frame is kept and echoed);
the reply is one JSON object: ``{"ok": true, ...}`` or ``{"ok": false, "error": "why"}``. Every request gets a
reply, a bad one included, and a bad one changes nothing. Requests:

- ``{"op": "add", "text": "an agitated customer", "threshold": 0.6}`` with at most one of ``"stream": ID`` (an
  open stream) or ``"role": ROLE``, and optionally ``"match": "acoustic" | "lexical" | "both"`` (the sound, the
  transcript's words, or each; acoustic when absent) → ``{"ok": true, "query": {...}}``
- ``{"op": "list"}`` → ``{"ok": true, "queries": [...]}``
- ``{"op": "remove", "id": ID}`` → ``{"ok": true, "query": {...}}``
- ``{"op": "reset_population"}`` → ``{"ok": true, "dropped": N}``: forget the population moments
  (``[population]``; an error where population normalisation is off)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Collection
from typing import Any

import zmq
import zmq.asyncio

from emoscribe.curve import CurveServer
from emoscribe.daemon.alerts import AlertTracker
from emoscribe.daemon.queries import ACOUSTIC, QueryError, QueryStore, Scope
from emoscribe.daemon.zmq_bind import bind

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 65_536
"""Larger messages make ZeroMQ drop the sender's connection before they reach the daemon."""
FIELDS = {
    "add": {"op", "text", "threshold", "stream", "role", "match"},
    "list": {"op"},
    "remove": {"op", "id"},
    "reset_population": {"op"},
}


class QueryControl:
    """What each request does to the query store; transport-free, so it is tested on its own."""

    def __init__(
        self,
        store: QueryStore,
        alerts: AlertTracker,
        open_streams: Callable[[], Collection[str]],
        reset_population: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.open_streams = open_streams
        self.reset_population = reset_population

    def handle(self, request: Any) -> dict[str, Any]:
        try:
            return {"ok": True, **self._handle(request)}
        except QueryError as error:
            return {"ok": False, "error": str(error)}

    def _handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise QueryError("a request is a JSON object")
        op = request.get("op")
        if op not in FIELDS:
            raise QueryError(f"unknown op {op!r}; ops are {', '.join(FIELDS)}")
        unknown = sorted(set(request) - FIELDS[op])
        if unknown:
            raise QueryError(f"{op}: unknown field(s) {', '.join(unknown)}")
        if op == "list":
            return {"queries": [q.to_dict() for q in self.store.list()]}
        if op == "reset_population":
            if self.reset_population is None:
                raise QueryError("population normalisation is off ([population] enabled = false)")
            return self.reset_population()
        if op == "remove":
            query = self.store.remove(request.get("id"))
            self.alerts.forget_query(query.id)
            return {"query": query.to_dict()}
        scope = Scope(stream=request.get("stream"), role=request.get("role"))
        if scope.stream is not None and scope.stream not in self.open_streams():
            raise QueryError(f"unknown stream {scope.stream!r}: no such stream is open")
        match = request.get("match", ACOUSTIC)
        query = self.store.add(request.get("text"), request.get("threshold"), scope, match)
        log.info(
            "query %s added: %r (%s, threshold %.2f, %s)", query.id, query.text, match, query.threshold, scope
        )
        return {"query": query.to_dict()}


class ControlServer:
    """The bound control socket; :meth:`serve` answers requests until ``stop`` is set."""

    def __init__(self, endpoint: str, curve: CurveServer | None, context: zmq.Context) -> None:
        self._socket = zmq.asyncio.Context(context).socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        if curve is not None:
            curve.secure(self._socket)
        self.endpoint = bind(self._socket, endpoint, "the control socket")

    async def serve(self, control: QueryControl, stop: asyncio.Event, count: Callable[[str], None]) -> None:
        """Answer until ``stop``; ``count`` hears ``"ok"`` or ``"refused"`` for every request."""
        waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                receive = asyncio.ensure_future(self._socket.recv_multipart())
                done, _ = await asyncio.wait({receive, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await receive
                    break
                count(await self._answer(control, receive.result()))
        finally:
            waiter.cancel()
            self._socket.close()

    async def _answer(self, control: QueryControl, frames: list[bytes]) -> str:
        identity, envelope, body = frames[0], frames[1:-1], frames[-1] if len(frames) > 1 else b""
        if envelope not in ([], [b""]):
            reply = {"ok": False, "error": "a request is one frame holding a JSON object"}
        else:
            try:
                reply = control.handle(json.loads(body))
            except (UnicodeDecodeError, ValueError):
                reply = {"ok": False, "error": "a request is one frame holding a JSON object"}
        if not reply["ok"]:
            log.info("control request refused: %s", reply["error"])
        await self._socket.send_multipart([identity, *envelope, json.dumps(reply).encode()])
        return "ok" if reply["ok"] else "refused"
