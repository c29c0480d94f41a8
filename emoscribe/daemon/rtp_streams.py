"""Which RTP streams are open, which are let in, and which must go: the bookkeeping of the RTP source, no audio.

The rules keep a flood of idle streams from locking out real calls. A stream *carries speech* once one of its
packets reaches ``speech_level_dbfs`` (RMS): every talker's voiced packets reach it, line noise and digital
silence do not, and the source knows each packet's level from decoding it.

- A stream that has not carried speech ``unvoiced_timeout`` after it opened ends (``"unvoiced"``) and turns
  dormant: its later packets are refused (``dormant``) until one carries speech, which opens it anew.
- With ``max_streams`` open, a new stream evicts the oldest stream that never carried speech
  (``"evicted_unvoiced"``, which turns dormant too), else the one silent longest (``"evicted_silent"``),
  provided the victim has been silent :data:`EVICTABLE_AFTER_S` at least; otherwise the new stream is refused
  (``too_many_streams``), so a burst of new SSRCs cannot churn the table faster than that.
- One sender address holds at most ``max_streams_per_address`` streams: a new stream from a sender at its
  limit evicts one of that sender's streams by the same rule, or is refused (``address_limit``); so a flood
  from one sender cannot take the slots of the others, nor keep a real call of its own out.
- A stream ends after ``inactivity_timeout`` without packets (``"timeout"``).

Every operation is O(1) per packet: the streams are kept in orders (by last packet; by opening for the
unvoiced ones and by last speech for the others, over all and per sender), so neither expiry nor eviction
scans the table.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Generic, Protocol, TypeVar

from emoscribe.daemon.rtp import RtpError

STREAM_KEYS = ("ssrc", "ssrc+addr")
EVICTABLE_AFTER_S = 1.0
"""Silence a stream must have kept before a new stream may evict it."""
DORMANT_PER_STREAM = 4
"""Keys of dormant streams remembered, per stream of ``max_streams`` (the oldest are forgotten first)."""


@dataclass(frozen=True)
class StreamPolicy:
    """What a stream is and who may open one. ``allow`` lists the sender networks (CIDR) accepted, ``None``
    any sender that can reach the socket; an empty list is refused, as it would accept nobody."""

    stream_key: str = "ssrc"
    allow: tuple[str, ...] | None = None
    max_streams: int = 256
    max_streams_per_address: int = 256
    inactivity_timeout: float = 2.0
    unvoiced_timeout: float = 10.0
    speech_level_dbfs: float = -45.0

    def __post_init__(self) -> None:
        if self.stream_key not in STREAM_KEYS:
            raise ValueError(f"stream_key must be one of {STREAM_KEYS}, got {self.stream_key!r}")
        if self.inactivity_timeout <= 0 or self.unvoiced_timeout <= 0:
            raise ValueError("inactivity_timeout and unvoiced_timeout must be positive")
        if self.max_streams < 1 or self.max_streams_per_address < 1:
            raise ValueError("max_streams and max_streams_per_address must be positive")
        if self.speech_level_dbfs >= 0:
            raise ValueError(f"speech_level_dbfs must be below 0 dBFS, got {self.speech_level_dbfs}")
        self.networks()

    def networks(self) -> tuple[IPv4Network | IPv6Network, ...] | None:
        """The allowlist parsed; a bad or empty one raises ``ValueError`` naming the problem."""
        if self.allow is None:
            return None
        if not self.allow:
            raise ValueError(
                "allow is empty, which would accept no sender: list the sender networks, "
                "or ['0.0.0.0/0', '::/0'] to accept any"
            )
        try:
            return tuple(ip_network(cidr, strict=False) for cidr in self.allow)
        except ValueError as error:
            raise ValueError(f"allow: {error}") from None

    @property
    def speech_power(self) -> float:
        """Mean square of a packet at ``speech_level_dbfs``."""
        return 10 ** (self.speech_level_dbfs / 10)


class Tracked(Protocol):
    """What the table reads and writes on each stream it holds."""

    host: str
    opened: float
    last_seen: float
    last_voice: float | None


S = TypeVar("S", bound=Tracked)


class _Orders(Generic[S]):
    """A group of open streams (all of them, or one address's) in the two orders victims are chosen by."""

    __slots__ = ("unvoiced", "voiced")

    def __init__(self) -> None:
        self.unvoiced: OrderedDict[Hashable, S] = OrderedDict()
        """Streams that never carried speech, the oldest first."""
        self.voiced: OrderedDict[Hashable, S] = OrderedDict()
        """Streams that carried speech, the one silent longest first."""

    def __len__(self) -> int:
        return len(self.unvoiced) + len(self.voiced)

    def spoke(self, key: Hashable, stream: S) -> None:
        self.unvoiced.pop(key, None)
        self.voiced[key] = stream
        self.voiced.move_to_end(key)

    def discard(self, key: Hashable) -> None:
        self.unvoiced.pop(key, None)
        self.voiced.pop(key, None)

    def victim(self, now: float) -> tuple[Hashable, str] | None:
        """The stream to evict: the oldest that never carried speech, else the one silent longest, if it has
        been silent :data:`EVICTABLE_AFTER_S`."""
        for order, reason in ((self.unvoiced, "evicted_unvoiced"), (self.voiced, "evicted_silent")):
            if order:
                key, stream = next(iter(order.items()))
                silent_since = stream.opened if stream.last_voice is None else stream.last_voice
                if now - silent_since >= EVICTABLE_AFTER_S:
                    return key, reason
        return None


class StreamTable(Generic[S]):
    """The open streams by key. ``events`` counts admissions (``admitted``, ``readmitted``) and the reasons
    streams were ended for."""

    def __init__(self, policy: StreamPolicy, events: Counter[str]) -> None:
        self.policy = policy
        self.events = events
        self._streams: OrderedDict[Hashable, S] = OrderedDict()
        """Least recently heard first."""
        self._all: _Orders[S] = _Orders()
        self._hosts: dict[str, _Orders[S]] = {}
        self._dormant: OrderedDict[Hashable, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._streams)

    def open_keys(self) -> list[Hashable]:
        """The keys of the open streams, as a list: they may be ended one by one while it is read."""
        return list(self._streams)

    def heard(self, key: Hashable, now: float, speech: bool) -> S | None:
        """The open stream of ``key``, noted as heard from at ``now`` (and as speaking); ``None`` if none."""
        stream = self._streams.get(key)
        if stream is not None:
            self._streams.move_to_end(key)
            stream.last_seen = now
            if speech:
                self._spoke(key, stream, now)
        return stream

    def admission(self, key: Hashable, host: str, now: float, speech: bool) -> tuple[Hashable, str] | None:
        """Whether a new stream may open: raises ``RtpError`` with the refusal's reason, or returns the stream
        to end first (its key and reason) to make room, or ``None``. A sender at its limit makes room among its
        own streams; a full table, among all."""
        if key in self._dormant and not speech:
            raise RtpError("dormant", "a stream that ended without speech sends no speech yet")
        group = self._hosts.get(host)
        if group is not None and len(group) >= self.policy.max_streams_per_address:
            victim = group.victim(now)
            if victim is None:
                raise RtpError("address_limit", f"{host} has {len(group)} streams open, none silent")
            return victim
        if len(self._streams) < self.policy.max_streams:
            return None
        victim = self._all.victim(now)
        if victim is None:
            raise RtpError("too_many_streams", f"{len(self._streams)} open, none silent for {EVICTABLE_AFTER_S} s")
        return victim

    def add(self, key: Hashable, stream: S, speech: bool) -> None:
        """Open ``stream`` (after :meth:`admission` let it in and its victim, if any, was removed)."""
        readmitted = key in self._dormant
        if readmitted:
            del self._dormant[key]
        self._streams[key] = stream
        self._all.unvoiced[key] = stream
        self._hosts.setdefault(stream.host, _Orders()).unvoiced[key] = stream
        self.events["readmitted" if readmitted else "admitted"] += 1
        if speech:
            self._spoke(key, stream, stream.last_seen)

    def remove(self, key: Hashable, reason: str) -> S:
        """Take a stream out of the table as it ends for ``reason``; one that never spoke turns dormant."""
        stream = self._streams.pop(key)
        self._all.discard(key)
        group = self._hosts[stream.host]
        group.discard(key)
        if not group:
            del self._hosts[stream.host]
        if stream.last_voice is None and reason in ("unvoiced", "evicted_unvoiced"):
            self._dormant[key] = None
            while len(self._dormant) > DORMANT_PER_STREAM * self.policy.max_streams:
                self._dormant.popitem(last=False)
        self.events[reason] += 1
        return stream

    def due(self, now: float, stall: float) -> tuple[list[tuple[Hashable, str]], list[S]]:
        """Streams to end now (key and reason), and those quiet for ``stall`` seconds, whose jitter buffers may
        hold audio waiting for a packet that will not come."""
        ending: list[tuple[Hashable, str]] = []
        quiet: list[S] = []
        for key, stream in self._streams.items():
            idle = now - stream.last_seen
            if idle < stall:
                break
            if idle >= self.policy.inactivity_timeout:
                ending.append((key, "timeout"))
            else:
                quiet.append(stream)
        for key, stream in self._all.unvoiced.items():
            if now - stream.opened < self.policy.unvoiced_timeout:
                break
            if now - stream.last_seen < self.policy.inactivity_timeout:
                ending.append((key, "unvoiced"))
        return ending, quiet

    def _spoke(self, key: Hashable, stream: S, now: float) -> None:
        self._all.spoke(key, stream)
        self._hosts[stream.host].spoke(key, stream)
        stream.last_voice = now
