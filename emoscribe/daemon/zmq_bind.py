"""Binding a daemon's ZeroMQ socket so that a taken or malformed endpoint stops the start with its name."""

from __future__ import annotations

import zmq


def bind(socket: zmq.Socket, endpoint: str, what: str) -> str:
    """Bind ``socket`` (closed on failure) and return the endpoint it took, wildcard ports resolved."""
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        socket.close(0)
        raise OSError(f"cannot bind {what} to {endpoint}: {error}") from error
    return socket.getsockopt_string(zmq.LAST_ENDPOINT)
