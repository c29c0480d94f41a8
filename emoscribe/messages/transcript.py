"""``transcript.<stream>``: what was said in an utterance already published, from the daemon's ASR.

It follows its utterance instead of riding in it: speech recognition costs 10-100 times what the emotion tower
does, so holding the utterance for it would add its latency to every label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emoscribe.messages.base import StreamMessage, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(StreamMessage):
    """The words of the utterance ``utterance_seq`` (``start``/``end`` its stream seconds): ``text``,
    ``language`` and its probability, ``words`` with stream-time ``start``/``end`` and ``probability``,
    ``no_speech_prob`` (Whisper's belief that there was no speech), the ``model`` and ``latency`` in ms
    (``queue_ms``, ``asr_ms``, ``end_to_publish_ms`` from the end-of-utterance decision). ``queries`` holds the
    lexical queries' scores. Words are not emotion, so a ``cues_only`` stream carries its transcript, but not
    the query scores (nor any field added later until it is listed here)."""

    kind = "transcript"
    cues_only_fields = frozenset(
        {
            "start",
            "end",
            "utterance_seq",
            "text",
            "language",
            "language_probability",
            "words",
            "no_speech_prob",
            "model",
            "latency",
        }
    )
    start: float = 0.0
    end: float = 0.0
    utterance_seq: int = 0
    text: str = ""
    language: str | None = None
    language_probability: float | None = None
    words: list[dict[str, Any]] = field(default_factory=list)
    no_speech_prob: float | None = None
    model: str = ""
    latency: dict[str, float] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
