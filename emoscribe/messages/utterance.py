"""``utterance.<stream>``: the description of a finished utterance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emoscribe.messages.base import StreamMessage, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Utterance(StreamMessage):
    """An utterance from ``start`` to ``end`` (stream seconds), closed for ``reason``: its final cues, the
    emotion (``label`` null when the daemon declined to name one, ``abstain_reason`` says why), the
    best-matching acoustic prompts, the scores of the user's queries, cue tokens, concept tokens, a caption and
    per-stage ``latency`` in milliseconds, ``end_to_publish_ms`` from the end-of-utterance decision to the send.
    ``quality`` describes the audio, ``grounding`` how the cues bear out the label, ``shed`` the optional work
    given up under overload. A ``cues_only`` stream's utterances carry none of the emotion fields."""

    kind = "utterance"
    cues_only_fields = frozenset(
        {"start", "end", "reason", "speech", "cues", "tokens", "concepts", "quality", "latency", "shed"}
    )
    start: float = 0.0
    end: float = 0.0
    reason: str = "silence"
    speech: bool = True
    cues: dict[str, float | int | None] = field(default_factory=dict)
    emotion: dict[str, Any] = field(default_factory=dict)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, str | None] = field(default_factory=dict)
    concepts: dict[str, str | None] = field(default_factory=dict)
    caption: str = ""
    latency: dict[str, float] = field(default_factory=dict)
    quality: dict[str, Any] | None = None
    abstain_reason: str | None = None
    grounding: dict[str, Any] | None = None
    shed: list[str] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        """The emotion label, ``None`` when the daemon did not name one."""
        return self.emotion.get("label")
