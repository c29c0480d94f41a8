"""Alerts with hysteresis: a query *enters* on a stream when an utterance scores at or above its threshold and
*leaves* only when one scores below ``threshold - hysteresis``, so a score hovering at the threshold does not
raise an alert per utterance. A query that matches both the sound and the words keeps one state per channel, since
the two are scored at different times (the transcript follows its utterance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emoscribe.daemon.queries import ACOUSTIC, Query, QueryStore
from emoscribe.messages import Alert


@dataclass(frozen=True, slots=True)
class Transition:
    query: Query
    score: float
    state: str
    """``enter`` or ``leave``."""
    match: str = ACOUSTIC
    """The channel that scored: ``acoustic`` or ``lexical``."""


@dataclass(frozen=True, slots=True)
class UtteranceRef:
    """The published utterance an alert refers to."""

    stream: str
    start: float
    end: float
    seq: int


class AlertTracker:
    """Which queries are active on which stream; forget a stream when it ends."""

    def __init__(self, hysteresis: float = 0.05) -> None:
        if not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis must lie in [0, 1), got {hysteresis!r}")
        self.hysteresis = hysteresis
        self._active: dict[str, set[tuple[str, str]]] = {}
        """Per stream, the (query id, channel) pairs that entered and have not left."""

    def update(self, stream: str, scores: list[tuple[Query, float]], channel: str = ACOUSTIC) -> list[Transition]:
        active = self._active.setdefault(stream, set())
        transitions = []
        for query, score in scores:
            key = (query.id, channel)
            if key not in active and score >= query.threshold:
                active.add(key)
                transitions.append(Transition(query, score, "enter", channel))
            elif key in active and score < query.threshold - self.hysteresis:
                active.discard(key)
                transitions.append(Transition(query, score, "leave", channel))
        if not active:
            del self._active[stream]
        return transitions

    def active(self, stream: str) -> set[str]:
        """The ids of the queries active on the stream, on either channel."""
        return {query_id for query_id, _ in self._active.get(stream, ())}

    def forget_query(self, query_id: str) -> None:
        for stream in list(self._active):
            self._active[stream] = {key for key in self._active[stream] if key[0] != query_id}
            if not self._active[stream]:
                del self._active[stream]

    def forget(self, stream: str) -> None:
        self._active.pop(stream, None)


class QueryAlerts:
    """Scores an utterance (its sound, or later its transcript's words) against the queries that cover its
    stream and turns threshold crossings into ``alert`` messages that name the published utterance."""

    def __init__(self, store: QueryStore, tracker: AlertTracker) -> None:
        self.store = store
        self.tracker = tracker

    def evaluate(
        self, stream: str, role: str, embedding: np.ndarray | None, channel: str = ACOUSTIC
    ) -> tuple[list[dict[str, Any]], list[Transition]]:
        """The ``queries`` field (of the utterance, or of its transcript for ``lexical``) and the alert
        transitions it causes (none without an embedding)."""
        if embedding is None:
            return [], []
        scored = self.store.scores(embedding, stream, role, channel)
        fields = [{"id": q.id, "text": q.text, "score": score, "threshold": q.threshold} for q, score in scored]
        return fields, self.tracker.update(stream, scored, channel)

    @staticmethod
    def messages(changes: list[Transition], utterance: UtteranceRef) -> list[Alert]:
        return [
            Alert(
                stream=utterance.stream,
                start=utterance.start,
                end=utterance.end,
                query_id=change.query.id,
                text=change.query.text,
                score=change.score,
                threshold=change.query.threshold,
                state=change.state,
                utterance_seq=utterance.seq,
                match=change.match,
            )
            for change in changes
        ]
