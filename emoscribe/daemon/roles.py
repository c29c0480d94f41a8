"""Whose voice a stream carries: ``customer``, ``agent``, ``driver`` or ``unknown``, from what the source says
about the stream when it opens, and changeable while the daemon runs.

A rule matches, most specific first: the stream's RTP SSRC, its peer address (an address, ``address:port`` or
a network), the local RTP port it arrived on, its source kind (``mic``, ``file``, ``stdin``, ``rtp``); else
``default``. At run time a stream can be assigned another role, and new rules (``SIGHUP`` re-reads the
``[roles]`` section) apply to the open streams at once.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emoscribe.daemon.frames import StreamInfo

ROLES = ("customer", "agent", "driver", "unknown")
KINDS = ("mic", "file", "stdin", "rtp")


@dataclass(frozen=True, slots=True)
class RoleSettings:
    """The ``[roles]`` section. ``kinds`` maps a source kind to a role; ``rtp_ports`` a local port, ``ssrc`` an
    SSRC (decimal or ``0x`` hex) and ``peers`` an address, ``address:port`` or network to one."""

    default: str = "unknown"
    kinds: Mapping[str, str] = field(default_factory=dict)
    rtp_ports: Mapping[str, str] = field(default_factory=dict)
    ssrc: Mapping[str, str] = field(default_factory=dict)
    peers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        RoleRules.from_settings(self)  # every key and role checked at start


def _role(value: Any, where: str) -> str:
    if value not in ROLES:
        raise ValueError(f"{where}: unknown role {value!r}; roles are {', '.join(ROLES)}")
    return value


def _port(key: str) -> int:
    try:
        port = int(key)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"rtp_ports: {key!r} is not a port number")
    return port


def _ssrc(key: str) -> int:
    try:
        value = int(key, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise ValueError(f"ssrc: {key!r} is not a 32-bit SSRC (decimal or 0x hex)")
    return value


def _peer(key: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]:
    """``10.1.2.3``, ``10.1.0.0/16``, ``10.1.2.3:4000``, ``[::1]:4000`` or ``::1``."""
    host, port = key, None
    if key.startswith("["):
        host, _, rest = key[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        if rest and port is None:
            raise ValueError(f"peers: {key!r} is not an address")
    elif key.count(":") == 1:
        host, _, text = key.partition(":")
        if not text.isdigit():
            raise ValueError(f"peers: {key!r} is not an address")
        port = int(text)
    try:
        return ipaddress.ip_network(host, strict=False), port
    except ValueError:
        raise ValueError(f"peers: {key!r} is not an address, address:port or network") from None


@dataclass(frozen=True, slots=True)
class RoleRules:
    """Parsed rules; :meth:`role_of` applies them to a stream's :class:`StreamInfo`."""

    default: str
    kinds: dict[str, str]
    ports: dict[int, str]
    ssrcs: dict[int, str]
    peers: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None, str], ...]

    @classmethod
    def from_settings(cls, settings: RoleSettings) -> RoleRules:
        unknown = sorted(set(settings.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"kinds: unknown source kind(s) {', '.join(unknown)}; kinds are {', '.join(KINDS)}")
        peers = []
        for key, role in settings.peers.items():
            network, port = _peer(str(key))
            peers.append((network, port, _role(role, f"peers.{key}")))
        # Longest prefix first, an address with a port before the same address without one.
        peers.sort(key=lambda rule: (-rule[0].prefixlen, rule[1] is None))
        return cls(
            default=_role(settings.default, "default"),
            kinds={kind: _role(role, f"kinds.{kind}") for kind, role in settings.kinds.items()},
            ports={_port(str(key)): _role(role, f"rtp_ports.{key}") for key, role in settings.rtp_ports.items()},
            ssrcs={_ssrc(str(key)): _role(role, f"ssrc.{key}") for key, role in settings.ssrc.items()},
            peers=tuple(peers),
        )

    def role_of(self, info: StreamInfo) -> str:
        details = info.details
        ssrc = details.get("ssrc")
        if isinstance(ssrc, int) and ssrc in self.ssrcs:
            return self.ssrcs[ssrc]
        peer = _split_peer(details.get("peer"))
        if peer is not None:
            address, port = peer
            for network, wanted, role in self.peers:
                if address in network and wanted in (None, port):
                    return role
        local = details.get("port")
        if isinstance(local, int) and local in self.ports:
            return self.ports[local]
        return self.kinds.get(info.kind, self.default)


def _split_peer(peer: Any) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int] | None:
    """``host:port`` or ``[v6]:port`` as the RTP source writes it."""
    if not isinstance(peer, str):
        return None
    host, _, port = peer.rpartition(":")
    try:
        return ipaddress.ip_address(host.strip("[]")), int(port)
    except ValueError:
        return None


class Roles:
    """The role of every open stream: set from the rules when it opens, changeable at run time (from any
    thread: a control request may come from outside the event loop)."""

    def __init__(self, settings: RoleSettings) -> None:
        self._rules = RoleRules.from_settings(settings)
        self._roles: dict[str, str] = {}
        self._infos: dict[str, StreamInfo] = {}
        self._lock = threading.Lock()

    def opened(self, info: StreamInfo) -> str:
        role = self._rules.role_of(info)
        with self._lock:
            self._roles[info.stream] = role
            self._infos[info.stream] = info
        return role

    def role(self, stream: str) -> str:
        """The stream's role; a stream the daemon never saw open (e.g. the daemon itself) is ``unknown``."""
        with self._lock:
            return self._roles.get(stream, "unknown")

    def assign(self, stream: str, role: str) -> None:
        """Change an open stream's role now; its following messages, partial ones included, follow it."""
        _role(role, f"role of {stream}")
        with self._lock:
            if stream not in self._roles:
                raise KeyError(f"no open stream {stream!r}")
            self._roles[stream] = role

    def reload(self, settings: RoleSettings) -> dict[str, str]:
        """New rules, applied at once to every open stream too (a role set with :meth:`assign` gives way to
        them); returns the open streams whose role changed, with their new role."""
        rules = RoleRules.from_settings(settings)
        with self._lock:
            self._rules = rules
            changed = {}
            for stream, info in self._infos.items():
                role = rules.role_of(info)
                if role != self._roles[stream]:
                    self._roles[stream] = changed[stream] = role
        return changed

    def closed(self, stream: str) -> None:
        with self._lock:
            self._roles.pop(stream, None)
            self._infos.pop(stream, None)
