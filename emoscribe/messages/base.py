"""The envelope every published message shares, and the registry that turns a received payload back into its type.

A message is a frozen dataclass: the service builds it, the publisher stamps its per-stream ``seq`` and
``wall_time`` and sends ``[topic, JSON]``, and a subscriber decodes the JSON back into the same type. Fields a
newer daemon adds that this version does not know are kept in ``extra`` and sent on unchanged, so a relay or a
recorder built on this library loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Self

SCHEMA_VERSION = 1
ENVELOPE = ("schema", "stream", "seq", "wall_time")
CUES_ONLY = "cues_only"
"""The policy of a stream on which no emotion may be inferred (see :mod:`emoscribe.daemon.compliance`)."""


class MessageError(ValueError):
    """A payload that is not a message of this protocol; the text says what is wrong with it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Common envelope: ``stream`` it belongs to, per-stream ``seq`` (over all topics of the stream, so a gap
    shows loss) and ``wall_time`` (Unix seconds when it was published); both are set by the publisher."""

    kind: ClassVar[str] = ""
    stream: str
    seq: int = 0
    wall_time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def schema(self) -> str:
        return f"emoscribe.{self.kind}/{SCHEMA_VERSION}"

    @property
    def topic(self) -> str:
        """``<kind>.<stream>``, so a subscriber can filter by kind or by kind and stream with a prefix."""
        return f"{self.kind}.{self.stream}"

    def stamped(self, seq: int, wall_time: float) -> Self:
        return replace(self, seq=seq, wall_time=wall_time)

    def to_payload(self) -> dict[str, Any]:
        """The JSON object that goes on the wire (the JSON Schema ``schema.json`` describes it)."""
        payload: dict[str, Any] = {"schema": self.schema, "stream": self.stream, "seq": self.seq}
        payload["wall_time"] = self.wall_time
        for item in fields(self):
            if item.name not in ENVELOPE and item.name != "extra":
                payload[item.name] = getattr(self, item.name)
        return {**payload, **self.extra}

    def encode(self) -> list[bytes]:
        return [self.topic.encode(), json.dumps(self.to_payload()).encode()]

    @classmethod
    def accepts(cls, payload: dict[str, Any]) -> bool:
        """Whether this type decodes ``payload`` of its schema (types sharing a schema tell themselves apart)."""
        return True

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        """The message a payload of this type describes; unknown fields go to ``extra``."""
        names = ({item.name for item in fields(cls)} - {"extra"}) | {"schema"}
        settable = {item.name for item in fields(cls) if item.init} - {"extra"}
        values = {name: value for name, value in payload.items() if name in settable}
        extra = {name: value for name, value in payload.items() if name not in names}
        try:
            return cls(**values, extra=extra)
        except TypeError as error:
            raise MessageError(f"{payload.get('schema')}: {error}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamMessage(Message):
    """A message about one stream: the publisher states the stream's ``role`` (``customer``, ``agent``,
    ``driver``, ``unknown``) and the ``policy`` that decided what it may carry (see
    :mod:`emoscribe.daemon.compliance`). Under the ``cues_only`` policy the payload holds the envelope and the
    fields the type lists in ``cues_only_fields``, nothing else (unknown ``extra`` fields neither), and a type
    that lists none is never sent on such a stream."""

    cues_only_fields: ClassVar[frozenset[str]] = frozenset()
    role: str | None = None
    policy: str | None = None

    def to_payload(self) -> dict[str, Any]:
        payload = Message.to_payload(self)
        if self.policy != CUES_ONLY:
            return payload
        kept = {*ENVELOPE, "role", "policy", *self.cues_only_fields}
        return {name: value for name, value in payload.items() if name in kept}


_TYPES: dict[str, list[type[Message]]] = {}


def register(cls: type[Message]) -> type[Message]:
    """Class decorator: make a message type decodable from its schema name."""
    _TYPES.setdefault(f"emoscribe.{cls.kind}/{SCHEMA_VERSION}", []).append(cls)
    return cls


def message_types() -> list[type[Message]]:
    return [cls for group in _TYPES.values() for cls in group]


def from_payload(payload: Any) -> Message:
    """Decode any payload of the protocol into its type; ``MessageError`` names what is wrong."""
    if not isinstance(payload, dict):
        raise MessageError(f"a payload is a JSON object, got {type(payload).__name__}")
    for name in ENVELOPE[:3]:
        if name not in payload:
            raise MessageError(f"payload without {name!r}")
    if not isinstance(payload["seq"], int) or not isinstance(payload["stream"], str):
        raise MessageError("payload with a non-integer seq or a non-string stream")
    candidates = _TYPES.get(payload["schema"])
    if not candidates:
        raise MessageError(f"unknown schema {payload['schema']!r}")
    for cls in candidates:
        if cls.accepts(payload):
            return cls.from_payload(payload)
    raise MessageError(f"{payload['schema']}: no message type accepts this payload")


def decode(frames: list[bytes]) -> Message:
    """A received multipart ``[topic, JSON]``; ``MessageError`` for anything malformed."""
    if len(frames) != 2:
        raise MessageError(f"expected [topic, payload], got {len(frames)} frame(s)")
    try:
        topic, payload = frames[0].decode(), json.loads(frames[1])
    except (UnicodeDecodeError, ValueError) as error:
        raise MessageError(f"undecodable message: {error}") from None
    message = from_payload(payload)
    if message.topic != topic:
        raise MessageError(f"topic {topic!r} does not match its payload ({message.topic!r})")
    return message
