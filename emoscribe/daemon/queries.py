"""Natural-language queries registered at run time: validated, embedded by the bundle's text tower, scoped to
streams, scored against every utterance, and kept in a file so they survive a restart.

A query matches the sound, the words, or both (``match``). Its acoustic score is the cosine between its text
embedding and the utterance's audio embedding in the joint space (both L2-normalised), the same score the prompt
bank uses; its lexical score is the cosine between its text embedding and the utterance's transcript embedded by
the same text tower, scored when the transcript is ready. A query applies to every stream, to streams of one
role, or to one stream (which must be open when the query is added).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emoscribe.daemon.roles import ROLES

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 300
"""Longer text is refused: the text tower truncates it anyway, so the query would not mean what it says."""
MAX_QUERIES = 256
ACOUSTIC, LEXICAL, BOTH = "acoustic", "lexical", "both"
MATCHES = (ACOUSTIC, LEXICAL, BOTH)
"""What a query is scored against: the utterance's sound, its transcript's words, or each of them."""


class QueryError(ValueError):
    """A request that cannot be carried out; the message says why, and nothing was changed."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a query applies: every stream (both ``None``), the streams of one ``role``, or one ``stream``."""

    stream: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if self.stream is not None and self.role is not None:
            raise QueryError("a query's scope is one stream or one role, not both")
        if self.role is not None and self.role not in ROLES:
            raise QueryError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")
        if self.stream is not None and (not isinstance(self.stream, str) or not self.stream):
            raise QueryError("a stream scope names the stream")

    def covers(self, stream: str, role: str) -> bool:
        return (self.stream is None or self.stream == stream) and (self.role is None or self.role == role)


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str
    threshold: float
    scope: Scope = field(default_factory=Scope)
    match: str = ACOUSTIC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, channel: str) -> bool:
        """Whether the query is scored on ``channel`` (``acoustic`` or ``lexical``)."""
        return self.match in (channel, BOTH)


def check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("a query needs non-empty text")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT_CHARS:
        raise QueryError(f"query text is {len(text)} characters; at most {MAX_TEXT_CHARS}")
    return text


def check_match(match: Any) -> str:
    if match not in MATCHES:
        raise QueryError(f"match must be one of {', '.join(MATCHES)}, got {match!r}")
    return match


def check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not -1.0 <= threshold <= 1.0:
        raise QueryError(f"threshold must be a number between -1 and 1 (a cosine score), got {threshold!r}")
    return float(threshold)


class QueryStore:
    """The registered queries and their embeddings; every change is written to ``path`` (when given) before it
    takes effect, atomically, so a crash never leaves a half-written file."""

    def __init__(
        self,
        embed: Callable[[Sequence[str]], np.ndarray] | None,
        path: Path | None = None,
        max_queries: int = MAX_QUERIES,
    ) -> None:
        """``embed`` is the bundle's text tower (``None`` for a bundle without one: every add is refused)."""
        self._embed = embed
        self.path = path
        self.max_queries = max_queries
        self._queries: dict[str, Query] = {}
        self._vectors: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            self._load(path)

    def __len__(self) -> int:
        return len(self._queries)

    def list(self) -> list[Query]:
        return list(self._queries.values())

    def add(self, text: Any, threshold: Any, scope: Scope, match: Any = ACOUSTIC) -> Query:
        text, threshold, match = check_text(text), check_threshold(threshold), check_match(match)
        query = Query(secrets.token_hex(4), text, threshold, scope, match)
        if len(self._queries) >= self.max_queries:
            raise QueryError(f"{self.max_queries} queries are registered already; remove one first")
        vector = self.embed([query.text])[0]
        self._save([*self._queries.values(), query])
        self._queries[query.id] = query
        self._vectors[query.id] = vector
        return query

    def remove(self, query_id: Any) -> Query:
        query = self._queries.get(query_id) if isinstance(query_id, str) else None
        if query is None:
            raise QueryError(f"no query with id {query_id!r}")
        self._save([q for q in self._queries.values() if q.id != query_id])
        del self._queries[query_id], self._vectors[query_id]
        return query

    def covers(self, stream: str, role: str, channel: str) -> bool:
        """Whether any query scored on ``channel`` covers the stream (else its transcript needs no embedding)."""
        return any(q.matches(channel) and q.scope.covers(stream, role) for q in self._queries.values())

    def scores(
        self, embedding: np.ndarray, stream: str, role: str, channel: str = ACOUSTIC
    ) -> list[tuple[Query, float]]:
        """Each query scored on ``channel`` whose scope covers the stream, with its score for ``embedding``
        (the utterance's audio embedding, or its transcript's text embedding)."""
        chosen = [q for q in self._queries.values() if q.matches(channel) and q.scope.covers(stream, role)]
        if not chosen:
            return []
        matrix = np.stack([self._vectors[q.id] for q in chosen])
        return [(q, float(s)) for q, s in zip(chosen, matrix @ embedding, strict=True)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text-tower embeddings of ``texts`` (queries, or transcripts for lexical scoring);
        may be called from another thread (the ASR worker's)."""
        if self._embed is None:
            raise QueryError("the daemon's bundle has no text tower, so it cannot embed new queries")
        vectors = np.asarray(self._embed(texts), dtype=np.float32).reshape(len(texts), -1)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _save(self, queries: list[Query]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"format": "emoscribe.queries/1", "queries": [q.to_dict() for q in queries]}
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        Path(handle.name).replace(self.path)

    def _load(self, path: Path) -> None:
        """The saved queries, re-embedded (the bundle may have changed since); a bad file is an error at start."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            entries = document["queries"]
            queries = [
                Query(
                    str(entry["id"]),
                    check_text(entry["text"]),
                    check_threshold(entry["threshold"]),
                    Scope(**entry.get("scope", {})),
                    check_match(entry.get("match", ACOUSTIC)),  # files from before lexical queries
                )
                for entry in entries
            ]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise QueryError(f"{path}: not a readable query file ({error})") from error
        if queries:
            vectors = self.embed([q.text for q in queries])
            for query, vector in zip(queries, vectors, strict=True):
                self._queries[query.id] = query
                self._vectors[query.id] = vector
        log.info("%d queries loaded from %s", len(queries), path)
