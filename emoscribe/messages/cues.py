"""``cues.<stream>``: the rolling acoustic cues of an utterance still being spoken."""

from __future__ import annotations

from dataclasses import dataclass, field

from emoscribe.messages.base import StreamMessage, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class PartialCues(StreamMessage):
    """Cues of the open utterance from ``start`` to ``end`` (stream seconds), with their low/mid/high tokens;
    ``shed`` names the steps the daemon sheds under overload while this was sent (``partial_cues``: fewer of
    these messages)."""

    kind = "cues"
    cues_only_fields = frozenset({"start", "end", "partial", "cues", "tokens", "latency", "shed"})
    start: float = 0.0
    end: float = 0.0
    partial: bool = True
    cues: dict[str, float | int | None] = field(default_factory=dict)
    tokens: dict[str, str | None] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    shed: list[str] = field(default_factory=list)
