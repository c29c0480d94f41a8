"""``summary.<stream>``: what a supervisor reads after a call, published when a stream ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emoscribe.messages.base import StreamMessage, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Summary(StreamMessage):
    """The whole stream, ``start`` to ``end`` (stream seconds): its speech time and ratio, utterances, audio
    quality, labels given, the emotion course (mean posteriors, and arousal/valence where the model gives them,
    per bin of ``course.bin_s`` seconds), peaks with their times, abstentions by reason and alerts raised. A
    ``cues_only`` stream's summary carries only duration, speech, utterances and quality."""

    kind = "summary"
    cues_only_fields = frozenset(
        {"start", "end", "duration_s", "speech_s", "speech_ratio", "utterances", "quality"}
    )
    start: float = 0.0
    end: float = 0.0
    duration_s: float = 0.0
    speech_s: float = 0.0
    speech_ratio: float = 0.0
    utterances: int = 0
    quality: dict[str, Any] = field(default_factory=dict)
    emotions: dict[str, int] = field(default_factory=dict)
    course: dict[str, Any] = field(default_factory=dict)
    peaks: dict[str, Any] = field(default_factory=dict)
    abstentions: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
