"""Overload: more speech than the engine can serve gives counted drops and bounded queues, then recovery."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from fake_bundle import make_fake_bundle

from emoscribe.audio import load_audio
from emoscribe.bundle import load_bundle
from emoscribe.daemon.batcher import BatchConfig
from emoscribe.daemon.config import DaemonConfig, PublishSettings
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine import EngineOutput
from emoscribe.daemon.frames import Frame, StreamInfo
from emoscribe.daemon.frontend import InProcess, segmenter_factory
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.service import Service

RATE = 16_000


class SlowEngine:
    """Takes 500 ms a batch whatever its size: far slower than 40 streams of speech arriving at once, even on a
    loaded machine where their cues take longer."""

    def __init__(self) -> None:
        self.providers = ["slow"]
        self.calls = 0

    def infer(self, utterances):
        self.calls += 1
        time.sleep(0.5)
        n = len(utterances)
        embeddings = np.zeros((n, 16), np.float32)
        embeddings[:, 0] = 1.0
        logits = np.zeros((n, 8), np.float32)
        logits[:, 4] = 3.0
        return EngineOutput(embeddings, logits)

    def embed_texts(self, texts):
        raise NotImplementedError


class MemorySource:
    """Streams of audio played as fast as possible, 20 ms frames interleaved across streams."""

    def __init__(self, streams: dict[str, np.ndarray]) -> None:
        self.streams = streams

    async def run(self, sink, stop) -> None:
        for name in self.streams:
            sink.stream_started(StreamInfo(name, "memory"))
        longest = max(a.size for a in self.streams.values())
        for offset in range(0, longest, 320):
            for name, audio in self.streams.items():
                if offset < audio.size:
                    sink.frame(Frame(name, offset / RATE, audio[offset : offset + 320]))
            await asyncio.sleep(0)
        for name in self.streams:
            sink.stream_ended(name, "eof")


def in_process(service: Service, source: MemorySource) -> InProcess:
    config = service.config
    return InProcess([source], segmenter_factory(config), service.describer.binner, config.cues.partial_interval_s)


@pytest.fixture()
def service(tmp_path: Path):
    config = DaemonConfig(
        batch=BatchConfig(max_batch=4, max_wait_ms=1, max_queue=8),
        publish=PublishSettings(endpoint="tcp://127.0.0.1:*", heartbeat_s=0.2),
    )
    bundle = load_bundle(make_fake_bundle(tmp_path / "bundle"))
    publisher = Publisher(config.publish.endpoint)
    sent: list[dict] = []
    publisher.echo = lambda message: sent.append(message.to_payload())
    engine = SlowEngine()
    built = Service(config, engine, Describer(bundle), publisher, Metrics())
    yield built, sent, engine
    publisher.close()


def test_overload_drops_are_counted_and_everything_is_published(service, demo_dir: Path) -> None:
    service, sent, engine = service
    speech = load_audio(demo_dir / "03-01-05-02-01-01-10.flac")[0].astype(np.float32)
    burst = np.concatenate([np.zeros(RATE // 2, np.float32), speech, np.zeros(RATE, np.float32)] * 2)
    streams = {f"leg-{i:02d}": burst for i in range(40)}
    assert asyncio.run(service.run([in_process(service, MemorySource(streams))], asyncio.Event()))
    utterances = [p for p in sent if p["schema"] == "emoscribe.utterance/1"]
    degraded = [u for u in utterances if u["emotion"]["label"] is None]
    assert len(utterances) == 80, "every utterance is published, with or without the model's outputs"
    refused = service.batcher.refused
    assert refused > 0 and len(degraded) == refused
    assert service.metrics.drops.labels("engine_queue_full")._value.get() == refused
    assert all(u["cues"]["f0_median_hz"] for u in degraded), "cues survive overload"
    ends = [p for p in sent if p["schema"] == "emoscribe.stream/1" and p["event"] == "end"]
    assert len(ends) == 40 and not service.streams, "every stream closed, no state left behind"

    # recovery: the same service, one stream at a time, gets every emotion back
    before = service.batcher.refused
    service.batcher = type(service.batcher)(engine, service.config.batch, service._on_result)
    sent.clear()
    asyncio.run(service.run([in_process(service, MemorySource({"calm-leg": burst}))], asyncio.Event()))
    again = [p for p in sent if p["schema"] == "emoscribe.utterance/1"]
    assert len(again) == 2 and all(u["emotion"]["label"] == "angry" for u in again)
    assert before == refused and service.batcher.refused == 0
