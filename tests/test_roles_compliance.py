"""Roles by source and the compliance policy: refused settings, role rules, and the allowlist at publication."""

from __future__ import annotations

import jsonschema
import pytest

from emoscribe.daemon.compliance import CUES_ONLY, FULL, Compliance, ComplianceSettings
from emoscribe.daemon.config import ConfigError, load_config
from emoscribe.daemon.frames import StreamInfo
from emoscribe.daemon.roles import Roles, RoleSettings
from emoscribe.messages import Alert, Heartbeat, PartialCues, Utterance, json_schema

EMOTION_FIELDS = {"emotion", "prompts", "queries", "caption", "grounding", "abstain_reason", "arousal", "valence"}


def rtp(ssrc: int, peer: str = "10.0.0.7:4000", port: int = 5004) -> StreamInfo:
    return StreamInfo(f"rtp-{ssrc:08x}", "rtp", {"ssrc": ssrc, "peer": peer, "port": port})


def test_role_rules_most_specific_first() -> None:
    roles = Roles(
        RoleSettings(
            default="customer",
            kinds={"mic": "driver"},
            rtp_ports={"5006": "agent"},
            ssrc={"0xabc": "customer", "7": "agent"},
            peers={"10.1.0.0/16": "agent", "10.1.2.3:4000": "customer", "[::1]:9": "agent"},
        )
    )
    assert roles.opened(StreamInfo("mic", "mic")) == "driver"
    assert roles.opened(StreamInfo("file-0", "file")) == "customer", "no rule: the default"
    assert roles.opened(rtp(1, port=5006)) == "agent", "by local port"
    assert roles.opened(rtp(0xABC, port=5006)) == "customer", "SSRC before port"
    assert roles.opened(rtp(2, peer="10.1.9.9:1")) == "agent", "by network"
    assert roles.opened(rtp(3, peer="10.1.2.3:4000")) == "customer", "an address with its port before its network"
    assert roles.opened(rtp(4, peer="10.1.2.3:4001")) == "agent"
    assert roles.opened(rtp(5, peer="[::1]:9")) == "agent"
    assert roles.opened(rtp(7)) == "agent"


def test_roles_change_at_run_time() -> None:
    roles = Roles(RoleSettings())
    roles.opened(StreamInfo("call", "rtp"))
    assert roles.role("call") == "unknown"
    roles.assign("call", "agent")
    assert roles.role("call") == "agent"
    with pytest.raises(ValueError, match="unknown role"):
        roles.assign("call", "boss")
    with pytest.raises(KeyError):
        roles.assign("gone", "agent")
    roles.opened(rtp(9, port=5006))
    changed = roles.reload(RoleSettings(default="driver", rtp_ports={"5006": "agent"}))
    assert changed == {"call": "driver", "rtp-00000009": "agent"}, "new rules apply to the open streams"
    assert roles.reload(RoleSettings(default="driver", rtp_ports={"5006": "agent"})) == {}, "no change, none told"
    assert roles.role("rtp-00000009") == "agent"
    assert roles.opened(StreamInfo("next", "rtp")) == "driver"
    roles.closed("call")
    assert roles.role("call") == "unknown"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[roles]\ndefault = "boss"\n', "unknown role 'boss'"),
        ('[roles]\nrtp_ports = {"http" = "agent"}\n', "not a port number"),
        ('[roles]\nssrc = {"0x1ffffffff" = "agent"}\n', "not a 32-bit SSRC"),
        ('[roles]\npeers = {"nowhere" = "agent"}\n', "not an address"),
        ('[roles]\nkinds = {"phone" = "agent"}\n', "unknown source kind"),
        ('[compliance]\nagent = "full"\n', "Art. 5"),
        ('[compliance]\nagent = "full"\nagent_purpose = "productivity"\n', "is not a purpose"),
        ('[compliance]\nagent_purpose = "safety"\n', "has no effect"),
        ('[compliance]\ncustomer = "everything"\n', "unknown policy"),
    ],
)
def test_refused_settings_stop_the_daemon_at_start(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_allowed_settings_load(tmp_path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text(
        '[roles]\nrtp_ports = {"5006" = "agent"}\n'
        '[compliance]\nagent = "full"\nagent_purpose = "medical"\nunknown = "cues_only"\n'
    )
    config = load_config(path, environ={})
    assert config.roles.rtp_ports == {"5006": "agent"}
    assert config.compliance.policies() == {
        "customer": FULL,
        "agent": FULL,
        "driver": FULL,
        "unknown": CUES_ONLY,
    }


QUALITY = {"snr_db": 30.0, "clipped_fraction": 0.0, "band": "wideband", "speech_ratio": 0.5, "duration_s": 1.0}


def full_utterance(stream: str) -> Utterance:
    return Utterance(
        stream=stream,
        start=0.0,
        end=1.0,
        cues={"duration_s": 1.0},
        tokens={"pitch": "high"},
        quality=QUALITY,
        emotion={"label": "angry", "confidence": 0.9, "posteriors": {"angry": 0.9}, "arousal": 0.8},
        prompts=[{"text": "high pitch anger", "score": 0.5}],
        queries=[{"text": "an agitated customer", "score": 0.4}],
        caption="A man speaks angrily.",
        grounding={"label": "angry", "score": 0.9},
        latency={"cues_ms": 1.0},
        extra={"arousal": 0.8, "valence": -0.4, "some_future_field": "an inference nobody listed"},
    )


def test_agent_messages_keep_cues_and_lose_every_emotion_field() -> None:
    roles = Roles(RoleSettings(rtp_ports={"5006": "agent", "5004": "customer"}))
    compliance = Compliance(ComplianceSettings(), roles)
    roles.opened(rtp(1, port=5006))
    roles.opened(rtp(2, port=5004))
    agent, customer = "rtp-00000001", "rtp-00000002"
    assert not compliance.infers_emotion(agent) and compliance.infers_emotion(customer)
    out = compliance.stamp(full_utterance(agent)).to_payload()
    assert not EMOTION_FIELDS & set(out) and "some_future_field" not in out
    assert out["cues"] == {"duration_s": 1.0} and out["tokens"] == {"pitch": "high"}
    assert out["quality"] == QUALITY
    assert (out["role"], out["policy"]) == ("agent", CUES_ONLY)
    jsonschema.validate(out, json_schema())
    partial = compliance.stamp(PartialCues(stream=agent, cues={"duration_s": 0.5}, extra={"emotion": {}}))
    assert "emotion" not in partial.to_payload() and partial.to_payload()["cues"] == {"duration_s": 0.5}
    assert compliance.stamp(Alert(stream=agent, text="an agitated customer")) is None
    assert compliance.stamp(Alert(stream=customer, text="an agitated customer")) is not None
    kept = compliance.stamp(full_utterance(customer)).to_payload()
    assert kept["emotion"]["label"] == "angry" and (kept["role"], kept["policy"]) == ("customer", FULL)
    assert kept["valence"] == -0.4
    beat = compliance.stamp(Heartbeat())
    assert beat.policies["agent"] == CUES_ONLY


def test_a_stream_switched_to_agent_loses_emotion_from_its_next_message() -> None:
    roles = Roles(RoleSettings())
    compliance = Compliance(ComplianceSettings(), roles)
    roles.opened(StreamInfo("call", "rtp"))
    assert "emotion" in compliance.stamp(full_utterance("call")).to_payload()
    roles.assign("call", "agent")
    assert "emotion" not in compliance.stamp(full_utterance("call")).to_payload()
