"""The daemon's final cues are Praat's: what the front end publishes for an utterance is what ``emoscribe cues``
says about the same samples, to the bit; partial cues along the way are estimates (``test_tracker.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from emoscribe.audio import load_audio
from emoscribe.cli import app
from emoscribe.cues.binning import QuantileBinner
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.frames import Frame, StreamInfo
from emoscribe.daemon.frontend import Frontend, segmenter_factory

RATE = 16_000


class Recorder:
    """A front end's downstream that keeps what it is handed."""

    shedder = None

    def __init__(self) -> None:
        self.ready: list = []
        self.partials: list = []

    def stream_opened(self, info) -> None: ...

    def partial_cues(self, *handed) -> None:
        self.partials.append(handed)

    def utterance_ready(self, ready) -> None:
        self.ready.append(ready)

    def stream_closed(self, stream, reason, position) -> None: ...

    def count(self, family, label, n=1) -> None: ...

    def watch_source(self, name, rejected) -> None: ...


def test_published_final_cues_equal_emoscribe_cues(tmp_path: Path, demo_dir: Path) -> None:
    clips = [load_audio(path)[0] for path in sorted(demo_dir.glob("*.flac"))[:3]]
    gap = np.random.default_rng(0).normal(0.0, 1e-4, RATE)
    signal = np.concatenate([part for clip in clips for part in (gap, clip)] + [gap]).astype(np.float32)
    recorder = Recorder()
    config = DaemonConfig()
    frontend = Frontend(
        segmenter_factory(config), QuantileBinner.default(), config.cues.partial_interval_s, recorder
    )
    frontend.stream_started(StreamInfo("leg", "memory"))
    for at in range(0, signal.size, 320):
        frontend.frame(Frame("leg", at / RATE, signal[at : at + 320]))
    frontend.stream_ended("leg", "eof")

    assert len(recorder.ready) == len(clips) and len(recorder.partials) >= 3 * len(clips)
    paths = []
    for index, ready in enumerate(recorder.ready):
        paths.append(tmp_path / f"utterance-{index}.wav")
        sf.write(paths[-1], ready.event.samples, RATE, subtype="FLOAT")
    result = CliRunner().invoke(app, ["cues", "--json", *map(str, paths)])
    assert result.exit_code == 0, result.output
    described = [json.loads(line)["cues"] for line in result.stdout.splitlines()]
    assert described == [ready.cues.to_dict() for ready in recorder.ready]
    assert all(
        ready.cues.jitter_local is not None and ready.cues.f1_mean_hz is not None for ready in recorder.ready
    )
