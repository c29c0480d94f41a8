"""CURVE encryption and client authentication for the daemon's ZeroMQ sockets (publisher and control socket).

The server holds a key pair (``emoscribe keys`` writes one with ``zmq.auth.create_certificates``) and a folder
of the public keys of the clients it admits. A ZAP authenticator (pyzmq's ``ThreadAuthenticator``) checks every
connecting client's key against that folder: an unlisted key completes no handshake and receives nothing. The
folder must list at least one client, so a configuration can never admit every key by leaving it empty; it is
read again on :meth:`CurveServer.reload` (the daemon does that on SIGHUP), so clients are added or revoked
without a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

DOMAIN = "emoscribe"
"""The ZAP domain of every CURVE socket of the daemon, the one the allowlist is configured for."""


class CurveError(ValueError):
    """A key file or client folder that cannot be used; the message names it."""


def load_public_key(path: str | Path) -> bytes:
    """The public key in a ``.key`` (or ``.key_secret``) certificate file."""
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as error:
        raise CurveError(f"{path}: not a CURVE certificate ({error})") from error
    return public


def load_key_pair(path: str | Path) -> tuple[bytes, bytes]:
    """Public and secret key from a ``.key_secret`` certificate file."""
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as error:
        raise CurveError(f"{path}: not a CURVE certificate ({error})") from error
    if secret is None:
        raise CurveError(f"{path}: holds no secret key; give the .key_secret file of the pair")
    return public, secret


def client_keys(folder: Path) -> list[Path]:
    """The client public-key files in ``folder``; an error if there are none (nobody could connect)."""
    if not folder.is_dir():
        raise CurveError(f"{folder}: no such folder of client public keys")
    keys = sorted(folder.glob("*.key"))
    if not keys:
        raise CurveError(f"{folder}: holds no client public keys (*.key), so no client could connect")
    for key in keys:
        load_public_key(key)
    return keys


class CurveServer:
    """The server's key pair and the running authenticator that admits only the listed clients."""

    def __init__(self, secret_key: str | Path, clients: str | Path, context: zmq.Context) -> None:
        self.public, self.secret = load_key_pair(secret_key)
        self.clients = Path(clients)
        listed = client_keys(self.clients)
        self._auth = ThreadAuthenticator(context, log=logging.getLogger(f"{__name__}.zap"))
        self._auth.start()
        self._auth.configure_curve(domain=DOMAIN, location=str(self.clients))
        log.info("CURVE on: %d client key(s) admitted from %s", len(listed), self.clients)

    def secure(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server under this key pair and allowlist (before it binds)."""
        socket.curve_server = True
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret
        socket.zap_domain = DOMAIN.encode()

    def reload(self) -> None:
        """Read the client folder again; a folder now empty or unreadable keeps the previous list."""
        try:
            listed = client_keys(self.clients)
        except CurveError as error:
            log.error("CURVE client keys not reloaded: %s", error)
            return
        self._auth.configure_curve(domain=DOMAIN, location=str(self.clients))
        log.info("CURVE client keys reloaded: %d admitted", len(listed))

    def stop(self) -> None:
        self._auth.stop()


def secure_client(socket: zmq.Socket, server_key: bytes, client_pair: tuple[bytes, bytes]) -> None:
    """Make ``socket`` a CURVE client of a server with public key ``server_key``, as the given client."""
    socket.curve_serverkey = server_key
    socket.curve_publickey, socket.curve_secretkey = client_pair
