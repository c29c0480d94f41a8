"""``heartbeat``: the daemon is alive, with its load; the first one says every producer has started."""

from __future__ import annotations

from dataclasses import dataclass, field

from emoscribe.messages.base import Message, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Message):
    """``start``/``end`` span the uptime seconds since the previous heartbeat."""

    kind = "heartbeat"
    stream: str = "daemon"
    start: float = 0.0
    end: float = 0.0
    active_streams: int = 0
    uptime_s: float = 0.0
    queue_depth: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)
    """The compliance policy of each role, as the daemon applies it."""

    @property
    def topic(self) -> str:
        return self.kind
