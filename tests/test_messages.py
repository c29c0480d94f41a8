"""The protocol's types: every type → JSON → validated by the JSON Schema → the same type; the schema and the
types name the same fields; malformed payloads are refused with a reason."""

from __future__ import annotations

import json

import jsonschema
import pytest

from emoscribe.messages import (
    Alert,
    Heartbeat,
    MessageError,
    PartialCues,
    StreamEnded,
    StreamStarted,
    Summary,
    Transcript,
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
        queries=[{"id": "1a2b3c4d", "text": "an agitated customer", "score": 0.3, "threshold": 0.6}],
        tokens={"pitch": "high"},
        concepts={"energy": "high"},
        caption="A man says something angrily.",
        latency={"cues_ms": 3.0, "end_to_publish_ms": 12.0},
        quality={
            "snr_db": 31.0,
            "clipped_fraction": 0.0,
            "band": "narrowband",
            "speech_ratio": 0.6,
            "duration_s": 1.5,
        },
        abstain_reason=None,
        grounding={
            "label": "angry",
            "score": 0.62,
            "space": "caller",
            "contradiction": False,
            "evidence": [
                {
                    "cue": "intensity_mean_db",
                    "vs_population": 1.8,
                    "vs_caller": 0.9,
                    "expected": 1.4,
                    "supports": True,
                }
            ],
        },
        shed=["partial_cues"],
        role="customer",
        policy="full",
    ),
    Heartbeat(
        start=0.0,
        end=5.0,
        active_streams=3,
        uptime_s=5.0,
        queue_depth=1,
        dropped={"engine_queue_full": 0},
        policies={"customer": "full", "agent": "cues_only", "driver": "full", "unknown": "full"},
    ),
    Summary(
        stream="rtp-0000abcd",
        end=95.0,
        duration_s=95.0,
        speech_s=40.5,
        speech_ratio=0.43,
        utterances=12,
        quality={"snr_db_mean": 28.0, "narrowband_utterances": 12},
        emotions={"neutral": 8, "angry": 3},
        course={
            "bin_s": 60.0,
            "bins": [{"start": 0.0, "end": 60.0, "utterances": 7, "posteriors": {"angry": 0.3}}],
        },
        peaks={"angry": {"value": 0.91, "start": 70.2, "end": 72.0}},
        abstentions={"low_snr": 1},
        alerts={"count": 0, "by_name": {}, "first": []},
        role="customer",
        policy="full",
    ),
    Alert(
        stream="rtp-0000abcd",
        start=3.0,
        end=4.5,
        query_id="1a2b3c4d",
        text="an agitated customer",
        score=0.71,
        threshold=0.6,
        state="enter",
        utterance_seq=12,
        match="lexical",
        role="customer",
        policy="full",
    ),
    Transcript(
        stream="mic",
        start=3.0,
        end=4.5,
        utterance_seq=12,
        text="I would like to cancel",
        language="en",
        language_probability=1.0,
        words=[{"word": "I", "start": 3.1, "end": 3.2, "probability": 0.98}],
        no_speech_prob=0.02,
        model="tiny.en",
        latency={"queue_ms": 1.0, "asr_ms": 420.0, "end_to_publish_ms": 450.0},
        queries=[{"id": "1a2b3c4d", "text": "a customer asking to cancel", "score": 0.64, "threshold": 0.5}],
        role="customer",
        policy="full",
    ),
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


def test_a_cues_only_payload_must_carry_no_emotion_field() -> None:
    utterance = next(m for m in EXAMPLES if isinstance(m, Utterance)).to_payload() | {"policy": "cues_only"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(utterance, json_schema())
    inference = ("emotion", "prompts", "queries", "caption", "grounding", "abstain_reason")
    stripped = {key: value for key, value in utterance.items() if key not in inference}
    jsonschema.validate(stripped, json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(stripped | {"arousal": 0.8}, json_schema())
    summary = next(m for m in EXAMPLES if isinstance(m, Summary)).to_payload() | {"policy": "cues_only"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(summary, json_schema())
