"""Daemon parts in isolation: configuration, publisher/subscriber, batcher, engine fallback, describer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import zmq
from fake_bundle import LABELS, make_fake_bundle

from emoscribe.bundle import load_bundle
from emoscribe.clients.subscriber import Subscriber
from emoscribe.cues import Cues
from emoscribe.daemon.app import build_service
from emoscribe.daemon.batcher import BatchConfig, Batcher, Request
from emoscribe.daemon.config import (
    ConfigError,
    DaemonConfig,
    EngineSettings,
    MetricsSettings,
    PublishSettings,
    load_config,
)
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine import EngineOutput
from emoscribe.daemon.engine.onnx_local import OnnxEngine, open_session
from emoscribe.daemon.publisher import Publisher
from emoscribe.messages import PartialCues, StreamEnded, StreamStarted, json_schema

SCHEMA = json_schema()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return load_bundle(make_fake_bundle(tmp_path_factory.mktemp("bundle")))


def test_config_layers_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text('sources = ["file:a.wav"]\n[segmenter]\nhangover_ms = 400\n[batch]\nmax_batch = 8\n')
    config = load_config(path, environ={"EMOSCRIBE_SEGMENTER_HANGOVER_MS": "300"}, batch__max_wait_ms=2)
    assert config.segmenter.hangover_ms == 300, "environment overrides the file"
    assert config.batch.max_batch == 8 and config.batch.max_wait_ms == 2.0
    assert config.sources == ("file:a.wav",)
    for text, message in (
        ("[segmenter]\nhangovr_ms = 1\n", r"segmenter: unknown setting\(s\) hangovr_ms"),
        ("[segmenter]\nhangover_ms = 'long'\n", "segmenter.hangover_ms: expected float"),
        ("[nonsense]\nx = 1\n", r"unknown setting\(s\) nonsense"),
        ("[batch]\nmax_batch = 0\n", "invalid batching"),
        ("this is not toml", "daemon.toml"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path, environ={})


def test_published_messages_validate_and_count_gaps() -> None:
    publisher = Publisher("tcp://127.0.0.1:*")
    subscriber = Subscriber(publisher.endpoint)
    time.sleep(0.3)  # let the subscription reach the publisher (ZeroMQ's slow-joiner)
    publisher.publish(StreamStarted(stream="s1"))
    publisher.publish(PartialCues(stream="s1", end=0.5, cues={"duration_s": 0.5}))
    publisher._seq["s1"] += 2  # two messages that never went out
    publisher.publish(StreamEnded(stream="s1", end=1.0, reason="eof"))
    received = [subscriber.receive(2000) for _ in range(3)]
    assert [m.seq for m in received] == [0, 1, 4]
    for message in received:
        jsonschema.validate(message.to_payload(), SCHEMA)
    assert subscriber.gaps == {"s1": 2}
    subscriber.close()
    publisher.close()


def test_slow_subscriber_never_blocks_the_publisher() -> None:
    context = zmq.Context()
    publisher = Publisher("tcp://127.0.0.1:*", send_hwm=100, context=context)
    subscriber = Subscriber(publisher.endpoint, context=context, receive_hwm=10)
    time.sleep(0.3)
    started = time.perf_counter()
    for i in range(20_000):
        publisher.publish(PartialCues(stream="s", cues={"duration_s": float(i)}))
    assert time.perf_counter() - started < 5.0, "20,000 sends to a subscriber that reads nothing"
    assert publisher.sent["cues"] == 20_000
    subscriber.close()
    publisher.close()
    context.term()


def test_busy_publisher_port_is_a_clear_error() -> None:
    first = Publisher("tcp://127.0.0.1:*")
    with pytest.raises(OSError, match="cannot bind the ZeroMQ publisher"):
        Publisher(first.endpoint)
    first.close()


class SlowEngine:
    def __init__(self, delay: float) -> None:
        self.providers = ["fake"]
        self.delay = delay
        self.batches: list[int] = []

    def infer(self, utterances):
        self.batches.append(len(utterances))
        time.sleep(self.delay)
        n = len(utterances)
        return EngineOutput(np.ones((n, 4), np.float32), np.zeros((n, 2), np.float32))

    def embed_texts(self, texts):
        raise NotImplementedError


def test_batcher_batches_across_submissions_and_refuses_when_full() -> None:
    engine = SlowEngine(0.05)
    done: list = []
    lock = threading.Lock()

    def collect(result):
        with lock:
            done.append(result)

    batcher = Batcher(engine, BatchConfig(max_batch=8, max_wait_ms=20, max_queue=16), collect)
    batcher.start()
    accepted = sum(batcher.submit(Request(np.zeros(16000, np.float32), i)) for i in range(40))
    assert accepted < 40 and batcher.refused == 40 - accepted, "a full queue refuses instead of blocking"
    assert batcher.stop(timeout=10.0)
    assert sorted(r.request.context for r in done) == sorted({r.request.context for r in done})
    assert len(done) == accepted, "everything accepted comes out"
    assert max(engine.batches) > 1
    assert all(b <= 8 for b in engine.batches)


def test_batcher_groups_by_length() -> None:
    engine = SlowEngine(0.0)
    batcher = Batcher(engine, BatchConfig(max_batch=16, max_wait_ms=50), lambda r: None)
    batcher.start()
    for n in (16000, 16500, 90000, 95000, 17000):
        batcher.submit(Request(np.zeros(n, np.float32), n))
    assert batcher.stop(timeout=5.0)
    assert sorted(engine.batches) == [2, 3], "short and long utterances are run apart"


def test_engine_falls_back_to_cpu_and_refuses_unknown_device(bundle) -> None:
    session = open_session(str(bundle.file("audio.onnx")), "tensorrt", 1)
    assert session.get_providers()[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="device must be one of"):
        open_session(str(bundle.file("audio.onnx")), "quantum", 1)


def test_engine_batch_equals_items_alone(bundle) -> None:
    engine = OnnxEngine(bundle, "cpu")
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, s, n).astype(np.float32) for s, n in ((0.1, 8000), (0.3, 21000), (0.05, 3000))]
    together = engine.infer(clips)
    for i, clip in enumerate(clips):
        alone = engine.infer([clip])
        np.testing.assert_allclose(together.embeddings[i], alone.embeddings[0], atol=1e-5)
        np.testing.assert_allclose(together.logits[i], alone.logits[0], atol=1e-4)


def test_describer_outputs(bundle) -> None:
    describer = Describer(bundle, top_k=3, min_confidence=0.0)
    cues = Cues(duration_s=2.0, f0_median_hz=230.0, intensity_mean_db=75.0, speech_rate=5.0, articulation_rate=5.5)
    bank = np.load(bundle.file("prompts.npz"))
    embedding = bank["embeddings"][bank["texts"].tolist().index("high female pitch anger")]
    logits = np.zeros(len(LABELS), np.float32)
    logits[4] = 5.0
    out = describer.describe(cues, embedding, logits)
    assert out["emotion"]["label"] == "angry" and out["emotion"]["confidence"] > 0.9
    assert out["emotion"]["speaker_reference"] is None, "no speaker normalisation was asked for"
    assert describer.describe(cues, embedding, logits, None, 7)["emotion"]["speaker_reference"] == 7
    assert abs(sum(out["emotion"]["posteriors"].values()) - 1) < 1e-6
    assert out["prompts"][0]["score"] == pytest.approx(1.0, abs=1e-5), "the bank entry itself ranks first"
    assert out["caption"].startswith("A female voice") and out["caption"].endswith("sounding angry.")
    degraded = describer.describe(cues, None, None)
    assert degraded["emotion"]["label"] is None and degraded["prompts"] == []
    assert "angry" not in degraded["caption"]


def test_describer_never_offers_a_prompt_of_the_other_sex(bundle) -> None:
    describer = Describer(bundle, top_k=3, min_confidence=0.0)
    bank = np.load(bundle.file("prompts.npz"))
    texts = bank["texts"].tolist()
    male = bank["embeddings"][texts.index("high male pitch anger")]
    logits = np.zeros(len(LABELS), np.float32)
    female_voice = Cues(duration_s=2.0, f0_median_hz=230.0, intensity_mean_db=75.0)
    offered = [p["text"] for p in describer.describe(female_voice, male, logits)["prompts"]]
    assert offered and not any(" male pitch" in text for text in offered), offered
    male_voice = Cues(duration_s=2.0, f0_median_hz=110.0, intensity_mean_db=75.0)
    top = describer.describe(male_voice, male, logits)["prompts"][0]["text"]
    assert top == "high male pitch anger", "the same embedding from a male voice keeps its own prompt"


def test_start_up_log_says_speaker_normalisation_is_on(tmp_path: Path, caplog) -> None:
    """An empty normaliser (no stream heard yet) is still on: the log must not call it off."""
    bundle = make_fake_bundle(tmp_path / "bundle", speaker=True)
    config = DaemonConfig(
        engine=EngineSettings(bundle=str(bundle)),
        metrics=MetricsSettings(enabled=False),
        publish=PublishSettings(endpoint="tcp://127.0.0.1:*"),
    )
    with caplog.at_level("INFO", logger="emoscribe.daemon.app"):
        service = build_service(config)
    service.publisher.close()
    assert service.normaliser is not None and len(service.normaliser) == 0
    assert "speaker normalisation over" in caplog.text and "speaker normalisation off" not in caplog.text


def test_the_shipped_example_config_loads() -> None:
    config = load_config(Path(__file__).parents[1] / "deploy" / "daemon.toml", environ={})
    assert config.queries.file and config.sources == ("rtp://0.0.0.0:5004",)
