"""The daemon's protocol: one type per message, shared by the service, the publisher and the subscriber library.

Wire format: ZeroMQ multipart ``[topic, payload]``, payload a UTF-8 JSON object described by the JSON Schema
``schema.json`` beside this file. Topics are ``<kind>.<stream>`` (``heartbeat`` alone), so a subscriber filters
by prefix: ``utterance.``, ``cues.rtp-1a2b3c4d``, ``""`` for everything.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from emoscribe.messages.alert import Alert
from emoscribe.messages.base import (
    CUES_ONLY,
    Message,
    MessageError,
    StreamMessage,
    decode,
    from_payload,
    message_types,
)
from emoscribe.messages.cues import PartialCues
from emoscribe.messages.heartbeat import Heartbeat
from emoscribe.messages.stream import StreamEnded, StreamStarted
from emoscribe.messages.summary import Summary
from emoscribe.messages.transcript import Transcript
from emoscribe.messages.utterance import Utterance

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
"""Where the daemon publishes unless configured otherwise: loopback only."""
DEFAULT_CONTROL_ENDPOINT = "tcp://127.0.0.1:5557"
"""Where the daemon takes run-time queries (see ``emoscribe.daemon.control``): loopback only."""


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of every payload (``oneOf`` over the message kinds)."""
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


__all__ = [
    "CUES_ONLY",
    "DEFAULT_CONTROL_ENDPOINT",
    "DEFAULT_ENDPOINT",
    "Alert",
    "Heartbeat",
    "Message",
    "MessageError",
    "PartialCues",
    "StreamEnded",
    "StreamMessage",
    "StreamStarted",
    "Summary",
    "Transcript",
    "Utterance",
    "decode",
    "from_payload",
    "json_schema",
    "message_types",
]
