"""Memory soak: thousands of utterances through the daemon's service in accelerated time, RSS sampled.

Usage: python benchmarks/daemon_soak.py [--bundle tiny.en] [--utterances 6000] [--streams 8]

Long-running speech services are known to creep until they run out of memory; this runs the real pipeline
(segmenter, rolling and final cues, engine, speaker moments, describer, publisher, per-stream state and
baselines) in one process, opening and closing streams as calls come and go, and fits a line to resident memory
over the second half of the run (the first half includes warm-up and allocator growth).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np
from machine import describe_machine

from emoscribe.audio import load_audio
from emoscribe.bundle import resolve_bundle
from emoscribe.daemon.config import DaemonConfig, MetricsSettings, PublishSettings
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.frames import Frame, StreamInfo
from emoscribe.daemon.frontend import InProcess, segmenter_factory
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.service import Service
from emoscribe.daemon.speaker_reference import speaker_normaliser
from emoscribe.demo import demo_clips

RATE = 16_000


def rss_mb() -> float:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class CallSource:
    """Calls of three utterances each, ``streams`` at a time, as fast as the service takes the frames."""

    def __init__(self, calls: int, streams: int, samples: list[np.ndarray], on_call_end) -> None:
        self.calls = calls
        self.streams = streams
        self.samples = samples
        self.on_call_end = on_call_end

    def _call(self, number: int, gap: np.ndarray) -> np.ndarray:
        """Three utterances (rotating through the clips) separated by half a second of silence."""
        parts = [gap]
        for k in range(3):
            parts += [self.samples[(number + k) % len(self.samples)], gap]
        return np.concatenate(parts)

    async def run(self, sink, stop) -> None:
        gap = np.zeros(RATE // 2, np.float32)
        for first in range(0, self.calls, self.streams):
            names = [f"call-{n:06d}" for n in range(first, min(first + self.streams, self.calls))]
            audio = {name: self._call(first + i, gap) for i, name in enumerate(names)}
            for name in names:
                sink.stream_started(StreamInfo(name, "soak"))
            for offset in range(0, max(a.size for a in audio.values()), 320):
                for name, samples in audio.items():
                    if offset < samples.size:
                        sink.frame(Frame(name, offset / RATE, samples[offset : offset + 320]))
                await asyncio.sleep(0)
            for name in names:
                sink.stream_ended(name, "eof")
            self.on_call_end(len(names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--utterances", type=int, default=6000)
    parser.add_argument("--streams", type=int, default=8)
    args = parser.parse_args()

    config = DaemonConfig(
        publish=PublishSettings(endpoint="tcp://127.0.0.1:*", heartbeat_s=1.0),
        metrics=MetricsSettings(enabled=False),
    )
    bundle = resolve_bundle(args.bundle)
    engine = OnnxEngine(bundle, "cpu")
    publisher = Publisher(config.publish.endpoint)
    describer = Describer(bundle)
    normaliser = speaker_normaliser(bundle)
    service = Service(config, engine, describer, publisher, Metrics(), normaliser)
    clips = [load_audio(p)[0].astype(np.float32) for p in demo_clips()]
    samples: list[tuple[int, float]] = []
    done = 0

    def sample(calls: int) -> None:
        nonlocal done
        done += calls * 3
        samples.append((done, rss_mb()))

    started = time.monotonic()
    calls = args.utterances // 3
    source = CallSource(calls, args.streams, clips, sample)
    front = InProcess([source], segmenter_factory(config), describer.binner, config.cues.partial_interval_s)
    asyncio.run(service.run([front], asyncio.Event()))
    took = time.monotonic() - started
    published = int(service.metrics.utterances.labels("silence")._value.get())
    counts, rss = np.array(samples).T
    half = counts >= counts[-1] / 2
    slope = np.polyfit(counts[half], rss[half], 1)[0] * 1000
    print(f"machine: {describe_machine()}; bundle {bundle.path.name}; {engine.providers}")
    print(f"utterances: {published} published of {calls * 3} spoken in {calls} calls, {args.streams} at a time")
    print(f"time: {took:.0f} s")
    print(f"RSS MB: start {rss[0]:.1f}, half-way {rss[half][0]:.1f}, end {rss[-1]:.1f}, peak {rss.max():.1f}")
    print(f"RSS slope over the second half: {slope:+.2f} MB per 1000 utterances")
    held = "no speaker normalisation" if normaliser is None else f"speaker moments held: {len(normaliser)}"
    print(f"open streams at the end: {len(service.streams)}; baselines held: {len(service.baselines)}; {held}")


if __name__ == "__main__":
    main()
