"""The trust features through the real service and publisher, read off the wire: agent streams never carry an
emotion field (partial cues and summaries included) and never reach the engine; abstention reasons from bad
audio; shedding in its fixed order under overload; summaries at stream end; roles changed while running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import zmq
from fake_bundle import make_fake_bundle
from signals import dtmf, with_noise

from emoscribe.audio import load_audio
from emoscribe.bundle import load_bundle
from emoscribe.daemon.app import make_describer
from emoscribe.daemon.config import DaemonConfig, load_config
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.frames import Frame, StreamInfo
from emoscribe.daemon.frontend import InProcess, segmenter_factory
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.queries import QueryStore, Scope
from emoscribe.daemon.roles import RoleSettings
from emoscribe.daemon.service import Service
from emoscribe.daemon.shedding import SHED_ORDER
from emoscribe.messages import json_schema

RATE = 16_000
EMOTION_FIELDS = {"emotion", "prompts", "queries", "caption", "grounding", "abstain_reason", "arousal", "valence"}
SUMMARY_EMOTION_FIELDS = {"emotions", "course", "peaks", "abstentions", "alerts"}


class CountingEngine:
    """The fake bundle's ONNX engine, remembering how many utterances of each length it was given."""

    def __init__(self, bundle) -> None:
        self.engine = OnnxEngine(bundle, "cpu")
        self.providers = self.engine.providers
        self.lengths: list[int] = []

    def infer(self, utterances):
        self.lengths += [u.size for u in utterances]
        return self.engine.infer(utterances)

    def embed_texts(self, texts):
        return self.engine.embed_texts(texts)


class Script:
    """Streams played in memory, 20 ms frames interleaved; ``between`` runs (awaited) once ``pause_at``
    seconds of every stream have been played, before the rest."""

    def __init__(
        self,
        streams: dict[str, tuple[dict, np.ndarray]],
        between: Callable[[], Awaitable[None]] | None = None,
        pause_at: float = 0.0,
    ) -> None:
        self.streams = streams
        self.between = between
        self.pause_at = int(pause_at * RATE)

    async def run(self, sink, stop) -> None:
        for name, (details, _) in self.streams.items():
            sink.stream_started(StreamInfo(name, "rtp", details))
        longest = max(audio.size for _, audio in self.streams.values())
        between = self.between
        for offset in range(0, longest, 320):
            if between is not None and offset >= self.pause_at:
                await between()
                between = None
            for name, (_, audio) in self.streams.items():
                if offset < audio.size:
                    sink.frame(Frame(name, offset / RATE, audio[offset : offset + 320].astype(np.float32)))
            await asyncio.sleep(0)
        for name in self.streams:
            sink.stream_ended(name, "eof")


def leg(port: int, ssrc: int) -> dict:
    return {"ssrc": ssrc, "peer": "10.0.0.9:4000", "port": port}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_fake_bundle(tmp_path_factory.mktemp("bundle"), text=True))


@pytest.fixture(scope="module")
def speech(demo_dir: Path) -> np.ndarray:
    return load_audio(demo_dir / "03-01-05-02-01-01-10.flac")[0]


@pytest.fixture(scope="module")
def sentence(speech) -> np.ndarray:
    """An angry demo sentence between silences, twice: two utterances."""
    return np.concatenate([np.zeros(RATE // 2), speech, np.zeros(RATE), speech, np.zeros(RATE)])


def daemon(bundle, text: str, tmp_path: Path) -> tuple[Service, CountingEngine]:
    """A service of ``text`` settings on the fake bundle, with one query every utterance scores above."""
    path = tmp_path / "daemon.toml"
    path.write_text('[publish]\nendpoint = "tcp://127.0.0.1:*"\nheartbeat_s = 0.2\n' + text)
    config = load_config(path, environ={})
    engine = CountingEngine(bundle)
    queries = QueryStore(engine.embed_texts)
    queries.add("an agitated customer", -1.0, Scope())
    publisher = Publisher(config.publish.endpoint)
    return Service(config, engine, make_describer(config, bundle), publisher, Metrics(), queries=queries), engine


def play(service: Service, script: Script) -> list[tuple[str, dict]]:
    """Run the service on ``script``; every message as it went over the socket, ``(topic, payload)``."""
    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(service.publisher.endpoint)
    config: DaemonConfig = service.config

    async def main() -> None:
        await asyncio.sleep(0.3)  # the subscription reaches the publisher first
        producer = InProcess([script], segmenter_factory(config), service.describer.binner, 0.25)
        assert await service.run([producer], asyncio.Event())

    asyncio.run(main())
    received = []
    while sub.poll(500):
        topic, payload = sub.recv_multipart()
        received.append((topic.decode(), json.loads(payload)))
    sub.close()
    service.publisher.close()
    for _, payload in received:
        jsonschema.validate(payload, json_schema())
    return received


def of(received, stream: str, schema: str | None = None) -> list[dict]:
    return [p for _, p in received if p["stream"] == stream and (schema is None or p["schema"] == schema)]


def test_agent_streams_never_carry_emotion_and_never_reach_the_engine(bundle, sentence, tmp_path) -> None:
    service, engine = daemon(bundle, '[roles]\nrtp_ports = {"5006" = "agent", "5004" = "customer"}\n', tmp_path)
    received = play(service, Script({"agent": (leg(5006, 1), sentence), "caller": (leg(5004, 2), sentence)}))
    agent = of(received, "agent")
    kinds = {p["schema"] for p in agent}
    assert kinds == {f"emoscribe.{k}/1" for k in ("stream", "cues", "utterance", "summary")}, "and no alert"
    for payload in agent:
        assert not EMOTION_FIELDS & set(payload), payload
        assert not SUMMARY_EMOTION_FIELDS & set(payload), payload
        assert (payload["role"], payload["policy"]) == ("agent", "cues_only")
    utterances = of(received, "agent", "emoscribe.utterance/1")
    assert len(utterances) == 2 and all(u["cues"]["f0_median_hz"] and u["quality"]["snr_db"] for u in utterances)
    caller = of(received, "caller", "emoscribe.utterance/1")
    assert len(caller) == 2 and all(u["emotion"]["label"] and u["caption"] for u in caller)
    assert all(u["grounding"]["label"] == u["emotion"]["label"] and u["grounding"]["evidence"] for u in caller)
    assert all((u["role"], u["policy"]) == ("customer", "full") and u["queries"] for u in caller)
    assert of(received, "caller", "emoscribe.alert/1"), "the same query alerts on the customer's stream"
    (summary,) = of(received, "caller", "emoscribe.summary/1")
    assert summary["alerts"]["count"] == 1 and summary["course"]["bins"][0]["posteriors"]
    assert len(engine.lengths) == 2, "only the customer's two utterances went to the emotion model"
    beats = [p for topic, p in received if topic == "heartbeat"]
    assert beats and beats[0]["policies"]["agent"] == "cues_only"


def test_bad_audio_abstains_with_its_reason_and_skips_the_engine(bundle, sentence, tmp_path) -> None:
    service, engine = daemon(bundle, "[segmenter]\nspeech_gate = false\n", tmp_path)
    tones = np.concatenate([np.zeros(RATE // 2), dtmf("0123456789*#" * 2, on=0.12, off=0.04), np.zeros(RATE)])
    streams = {
        "tones": (leg(5004, 1), tones),
        "noisy": (leg(5004, 2), with_noise(sentence, -3.0, seed=3)),
        "clipped": (leg(5004, 3), np.clip(sentence * 40.0, -1.0, 1.0)),
        "clean": (leg(5004, 4), sentence),
    }
    received = play(service, Script(streams))
    expected = {"tones": "non_speech", "noisy": "low_snr", "clipped": "clipped", "clean": None}
    for stream, reason in expected.items():
        utterances = of(received, stream, "emoscribe.utterance/1")
        assert utterances and {u["abstain_reason"] for u in utterances} == {reason}, (stream, utterances)
        if reason is not None:
            assert all(u["emotion"]["label"] is None and u["cues"] for u in utterances)
            (summary,) = of(received, stream, "emoscribe.summary/1")
            assert summary["abstentions"] == {reason: len(utterances)}
    assert len(engine.lengths) == len(of(received, "clean", "emoscribe.utterance/1")), (
        "bad audio costs no inference"
    )
    assert service.metrics.abstentions.labels("low_snr")._value.get() >= 1


def test_overload_sheds_partial_cues_then_captions_then_prompts_never_the_emotion(
    bundle, sentence, tmp_path
) -> None:
    tiny = "".join(
        f"{stage}_ms = 0.001\n" for stage in ("cues", "queue", "inference", "describe", "end_to_publish")
    )
    service, _ = daemon(bundle, f"[budget]\n{tiny}[shedding]\nstep_s = 0.0\n", tmp_path)
    streams = {f"leg-{i}": (leg(5004, i), sentence) for i in range(10)}
    received = play(service, Script(streams))
    utterances = [p for _, p in received if p["schema"] == "emoscribe.utterance/1"]
    assert len(utterances) == 20, "shedding never drops an utterance"
    marks = []
    for utterance in sorted(utterances, key=lambda u: u["wall_time"]):
        shed = tuple(utterance["shed"])
        assert shed == SHED_ORDER[: len(shed)], "always a prefix of the fixed order"
        if not marks or marks[-1] != shed:
            marks.append(shed)
        assert utterance["emotion"]["label"] is not None and utterance["cues"]["f0_median_hz"]
        assert (utterance["caption"] == "") == ("caption" in shed)
        assert (utterance["prompts"] == []) == ("prompts" in shed)
    assert marks[-1] == SHED_ORDER and [len(m) for m in marks] == sorted(len(m) for m in marks), marks
    for step in SHED_ORDER:  # this service transcribes nothing, so no transcript is there to shed
        assert (service.metrics.shed.labels(step)._value.get() > 0) == (step != "asr"), step
    partial = [p for _, p in received if p["schema"] == "emoscribe.cues/1"]
    assert any(p["shed"] == list(SHED_ORDER) for p in partial)


def test_summary_at_stream_end_and_roles_changed_while_running(bundle, speech, sentence, tmp_path) -> None:
    service, engine = daemon(bundle, "", tmp_path)

    async def make_it_an_agent() -> None:
        while not service.publisher.sent["utterance"]:  # the first utterance is out
            await asyncio.sleep(0.01)
        service.reload_roles(RoleSettings(rtp_ports={"5004": "agent"}))

    between_sentences = 0.5 + speech.size / RATE + 0.9  # after the first one's hangover, before the second
    received = play(service, Script({"call": (leg(5004, 1), sentence)}, make_it_an_agent, between_sentences))
    messages = of(received, "call")
    policies = [p["policy"] for p in messages]
    switch = policies.index("cues_only")
    assert set(policies[:switch]) == {"full"} and set(policies[switch:]) == {"cues_only"}, policies
    before = [p for p in messages[:switch] if p["schema"] == "emoscribe.utterance/1"]
    after = [p for p in messages[switch:] if p["schema"] == "emoscribe.utterance/1"]
    assert len(before) == 1 and before[0]["emotion"]["label"] and len(after) == 1 and "emotion" not in after[0]
    assert len(engine.lengths) == 1, "the utterance after the switch never reached the model"
    summary, end = messages[-2:]
    assert summary["schema"] == "emoscribe.summary/1" and end["event"] == "end"
    assert summary["utterances"] == 2 and summary["duration_s"] == pytest.approx(sentence.size / RATE, abs=0.05)
    assert 0 < summary["speech_ratio"] < 1 and summary["policy"] == "cues_only" and "course" not in summary
