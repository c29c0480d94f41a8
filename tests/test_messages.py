"""The protocol's types: every type → JSON → validated by the JSON Schema → the same type; the schema and the
types name the same fields; malformed payloads are refused with a reason."""

from __future__ import annotations

import json

import jsonschema
import pytest

from emoscribe.messages import (
    Heartbeat,
    MessageError,
    PartialCues,
    StreamEnded,
    StreamStarted,
    Utterance,
    decode,
    from_payload,
    json_schema,
    message_types,
)

EXAMPLES = [
    StreamStarted(stream="rtp-0000abcd", details={"ssrc": 43981, "encoding": "PCMU"}),
    StreamStarted(stream="rtp-0000abcd", details={"ssrc": 43981}, snapshot=True),
    StreamEnded(stream="rtp-0000abcd", end=12.5, reason="timeout"),
    PartialCues(
        stream="mic", start=1.0, end=1.5, cues={"duration_s": 0.5, "f0_median_hz": None}, tokens={"pitch": "high"}
    ),
    Utterance(
        stream="file-0-a",
        start=1.0,
        end=2.5,
        reason="silence",
        cues={"duration_s": 1.5, "f0_median_hz": 180.0},
        emotion={"label": "angry", "confidence": 0.8, "posteriors": {"angry": 0.8, "calm": 0.2}},
        prompts=[{"text": "high pitch anger", "family": "pitch", "score": 0.4}],
        queries=[{"text": "an agitated customer", "score": 0.3}],
        tokens={"pitch": "high"},
        concepts={"energy": "high"},
        caption="A man says something angrily.",
        latency={"cues_ms": 3.0, "end_to_publish_ms": 12.0},
    ),
    Heartbeat(start=0.0, end=5.0, active_streams=3, uptime_s=5.0, queue_depth=1, dropped={"engine_queue_full": 0}),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: f"{type(m).__name__}")
def test_every_type_round_trips_through_validated_json(message) -> None:
    sent = message.stamped(seq=7, wall_time=1_700_000_000.0)
    frames = sent.encode()
    payload = json.loads(frames[1])
    jsonschema.validate(payload, json_schema())
    received = decode(frames)
    assert type(received) is type(sent) and received == sent
    assert received.to_payload() == payload


def test_every_type_is_exercised_and_matches_its_schema_branch() -> None:
    assert {type(m) for m in EXAMPLES} == set(message_types())
    branches = {b["properties"]["schema"]["const"]: b for b in json_schema()["oneOf"]}
    envelope = set(json_schema()["$defs"]["common"]["properties"])
    named_by_types: dict[str, set[str]] = {}
    for cls in message_types():
        example = next(m for m in EXAMPLES if type(m) is cls)
        branch = branches[example.schema]
        fields = set(example.to_payload())
        assert fields - envelope <= set(branch["properties"]), f"{cls.__name__} sends fields the schema lacks"
        assert set(branch["required"]) <= fields, f"{cls.__name__} lacks a required field"
        named_by_types.setdefault(example.schema, set()).update(fields)
    for schema, branch in branches.items():
        assert set(branch["properties"]) <= named_by_types[schema], f"{schema}: schema fields no type carries"


def test_unknown_fields_survive_a_relay() -> None:
    payload = EXAMPLES[2].to_payload() | {"added_by_a_newer_daemon": [1, 2], "extra": 5}
    relayed = from_payload(payload)
    assert relayed.extra == {"added_by_a_newer_daemon": [1, 2], "extra": 5}
    assert relayed.to_payload() == payload


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"cues.x"], "expected \\[topic, payload\\]"),
        ([b"cues.x", b"\xff\xfe"], "undecodable"),
        ([b"cues.x", b"[1, 2]"], "JSON object"),
        ([b"cues.x", b'{"schema": "emoscribe.cues/1", "stream": "x"}'], "without 'seq'"),
        ([b"cues.x", b'{"schema": "emoscribe.cues/1", "stream": "x", "seq": "1"}'], "non-integer seq"),
        ([b"cues.x", b'{"schema": "emoscribe.nope/1", "stream": "x", "seq": 1}'], "unknown schema"),
        (
            [b"stream.x", b'{"schema": "emoscribe.stream/1", "stream": "x", "seq": 1, "event": "pause"}'],
            "no message",
        ),
        ([b"cues.y", b'{"schema": "emoscribe.cues/1", "stream": "x", "seq": 1}'], "does not match"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode(frames)
