"""``cues.<stream>``: the rolling acoustic cues of an utterance still being spoken."""

from __future__ import annotations

from dataclasses import dataclass, field

from emoscribe.messages.base import Message, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class PartialCues(Message):
    """Cues of the open utterance from ``start`` to ``end`` (stream seconds), with their low/mid/high tokens."""

    kind = "cues"
    start: float = 0.0
    end: float = 0.0
    partial: bool = True
    cues: dict[str, float | int | None] = field(default_factory=dict)
    tokens: dict[str, str | None] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
