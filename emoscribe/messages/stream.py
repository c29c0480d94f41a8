"""``stream.<stream>``: a stream opened (with what is known of it: codec, peer, files) or ended (with why)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from emoscribe.messages.base import StreamMessage, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStarted(StreamMessage):
    """``snapshot`` marks a re-sent start of a stream that was already open, for a subscriber that joined late;
    it repeats the original's details and carries the stream's next ``seq`` without consuming it."""

    kind = "stream"
    cues_only_fields = frozenset({"event", "start", "end", "reason", "details", "snapshot"})
    event: str = field(default="start", init=False)
    start: float = 0.0
    end: float = 0.0
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    snapshot: bool = False

    @classmethod
    def accepts(cls, payload: dict[str, Any]) -> bool:
        return payload.get("event") == "start"

    def with_snapshot(self) -> StreamStarted:
        return replace(self, snapshot=True)


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnded(StreamMessage):
    """``end`` is the stream time at which it ended; ``reason`` says why (``eof``, ``timeout``, ``shutdown``)."""

    kind = "stream"
    cues_only_fields = frozenset({"event", "start", "end", "reason", "details", "snapshot"})
    event: str = field(default="end", init=False)
    start: float = 0.0
    end: float = 0.0
    reason: str | None = None

    @classmethod
    def accepts(cls, payload: dict[str, Any]) -> bool:
        return payload.get("event") == "end"
