"""``alert.<stream>``: a run-time query's score crossed its threshold on an utterance of the stream."""

from __future__ import annotations

from dataclasses import dataclass

from emoscribe.messages.base import StreamMessage, register


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class Alert(StreamMessage):
    """``state`` ``enter`` (the score reached ``threshold``) or ``leave`` (it fell below ``threshold`` minus the
    daemon's hysteresis); ``start``/``end`` and ``utterance_seq`` name the utterance it refers to, ``match``
    what scored it: its sound (``acoustic``) or, once transcribed, its words (``lexical``). It lists no
    ``cues_only_fields``: a ``cues_only`` stream never raises one."""

    kind = "alert"
    start: float = 0.0
    end: float = 0.0
    query_id: str = ""
    text: str = ""
    score: float = 0.0
    threshold: float = 0.0
    state: str = "enter"
    utterance_seq: int = 0
    match: str = "acoustic"
