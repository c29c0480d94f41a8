"""The Triton engine against a real Triton Inference Server (pytriton's, started here) serving a repository that
``emoscribe export --triton`` wrote: the daemon's results equal the local engine's, and a server it cannot use
stops it at start with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fake_bundle import make_fake_bundle
from google.protobuf import text_format
from test_daemon_e2e import collect, conversation, start_daemon, stream_ended
from triton_launch import ServerStartError, free_port, running_server
from tritonclient.grpc import model_config_pb2

from emoscribe.bundle import load_bundle
from emoscribe.daemon.config import ConfigError, load_config
from emoscribe.daemon.engine import open_engine
from emoscribe.daemon.engine.triton import TritonError
from emoscribe.export.triton import MAX_BATCH, write_repository


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> tuple[Path, Path]:
    """The bundle the server serves, and another one of the same name with other weights."""
    served = make_fake_bundle(tmp_path_factory.mktemp("served"), seed=0, speaker=True)
    return served, make_fake_bundle(tmp_path_factory.mktemp("other"), seed=1, speaker=True)


@pytest.fixture(scope="module")
def repository(bundles, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("repository")
    write_repository(load_bundle(bundles[0]), folder)
    return folder


@pytest.fixture(scope="module")
def triton_url(repository: Path, tmp_path_factory) -> Iterator[str]:
    """A Triton server up until the module's tests are done."""
    try:
        with running_server(repository, tmp_path_factory.mktemp("triton")) as url:
            yield url
    except ServerStartError as error:
        pytest.skip(f"Triton server cannot start: {error}")


def test_repository_models_carry_batching_and_the_bundles_checksum(bundles, tmp_path: Path) -> None:
    bundle = load_bundle(bundles[0])
    (tmp_path / "other-audio").mkdir()
    written = write_repository(bundle, tmp_path)
    assert [p.name for p in written] == ["fake-audio"], "the fake bundle has no text tower"
    assert (tmp_path / "other-audio").is_dir(), "another bundle's models in the repository stay"
    text = (tmp_path / "fake-audio" / "config.pbtxt").read_text()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert (config.name, config.backend, config.max_batch_size) == ("fake-audio", "onnxruntime", MAX_BATCH)
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    inputs = {i.name: (list(i.dims), i.HasField("reshape")) for i in config.input}
    assert inputs == {"waveform": ([-1], False), "lengths": ([1], True)}, "per-row lengths sent as [batch, 1]"
    assert {o.name: list(o.dims) for o in config.output} == {
        "embedding": [16],
        "logits": [8],
        "layer_stats": [1, 2],
    }
    assert config.parameters["emoscribe_sha256"].string_value == bundle.manifest["files"]["audio.onnx"]["sha256"]
    served = (tmp_path / "fake-audio" / "1" / "model.onnx").read_bytes()
    assert served == bundle.file("audio.onnx").read_bytes()
    write_repository(bundle, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-audio", "other-audio"], "rewriting leaves no stage"


def test_engine_backend_is_checked_at_load() -> None:
    assert load_config(environ={"EMOSCRIBE_ENGINE_BACKEND": "triton"}).engine.url == "127.0.0.1:8001"
    with pytest.raises(ConfigError, match="backend must be one of local, triton"):
        load_config(environ={"EMOSCRIBE_ENGINE_BACKEND": "cuda"})


def test_triton_engine_equals_the_local_engine(bundles, triton_url: str) -> None:
    bundle = load_bundle(bundles[0])
    rng = np.random.default_rng(3)
    utterances = [rng.normal(0, rng.uniform(0.01, 0.5), rng.integers(4_000, 40_000)).astype(np.float32)]
    utterances += [rng.normal(0, 0.1, 12_000).astype(np.float32) for _ in range(MAX_BATCH + 6)]
    triton = open_engine(bundle, "triton", url=triton_url)
    assert triton.variant == "audio.onnx" and triton.providers == [f"triton {triton_url}"]
    local = open_engine(bundle, "local", device="cpu")
    for batch in (utterances[:1], utterances[:5], utterances):  # the last is larger than the server's batches
        got, want = triton.infer(batch), local.infer(batch)
        for name in ("embeddings", "logits", "layer_stats"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=1e-4, rtol=0, err_msg=name)
    with pytest.raises(TritonError, match=r"serves another bundle: fake-audio is audio\.onnx sha256"):
        open_engine(load_bundle(bundles[1]), "triton", url=triton_url)


def utterances_of(bundle: Path, tmp_path: Path, wav: Path, monkeypatch, **engine: str) -> list[dict]:
    for key, value in engine.items():
        monkeypatch.setenv(f"EMOSCRIBE_ENGINE_{key.upper()}", value)
    process, subscriber = start_daemon(bundle, tmp_path, f"file:{wav}")
    messages = collect(subscriber, stream_ended)
    process.wait(timeout=30)
    subscriber.close()
    assert process.returncode == 0, process.stderr.read()
    return [m.to_payload() for m in messages if m.kind == "utterance"]


def test_daemon_results_through_triton_equal_the_local_engines(
    bundles, triton_url: str, tmp_path: Path, demo_dir: Path, monkeypatch
) -> None:
    wav = tmp_path / "conversation.wav"
    conversation(demo_dir, wav)
    local = utterances_of(bundles[0], tmp_path, wav, monkeypatch, backend="local")
    served = utterances_of(bundles[0], tmp_path, wav, monkeypatch, backend="triton", url=triton_url)
    assert len(served) == len(local) == 2
    for got, want in zip(served, local, strict=True):
        assert got["emotion"]["label"] == want["emotion"]["label"]
        assert got["emotion"]["speaker_reference"] == want["emotion"]["speaker_reference"]
        for label, posterior in want["emotion"]["posteriors"].items():
            assert abs(got["emotion"]["posteriors"][label] - posterior) <= 1e-4, label
        assert [p["text"] for p in got["prompts"]] == [p["text"] for p in want["prompts"]]
        np.testing.assert_allclose(
            [p["score"] for p in got["prompts"]], [p["score"] for p in want["prompts"]], atol=1e-4
        )
        assert got["caption"] == want["caption"] and got["cues"] == want["cues"]
    assert [u["emotion"]["speaker_reference"] for u in served] == [0, 1], "the speaker graph ran on Triton's stats"


@pytest.mark.parametrize("case", ["unreachable", "another bundle"])
def test_a_server_the_daemon_cannot_use_stops_it_with_one_line(
    case: str, bundles, triton_url: str, tmp_path: Path, demo_dir: Path, monkeypatch
) -> None:
    bundle, url = (bundles[0], f"127.0.0.1:{free_port()}") if case == "unreachable" else (bundles[1], triton_url)
    monkeypatch.setenv("EMOSCRIBE_ENGINE_BACKEND", "triton")
    monkeypatch.setenv("EMOSCRIBE_ENGINE_URL", url)
    process, subscriber = start_daemon(bundle, tmp_path, f"file:{demo_dir / '03-01-01-01-01-01-03.flac'}")
    _, stderr = process.communicate(timeout=60)
    subscriber.close()
    assert process.returncode == 1
    assert len(stderr.strip().splitlines()) == 1, stderr
    expected = f"Triton at {url} is unreachable" if case == "unreachable" else "serves another bundle"
    assert expected in stderr and stderr.startswith("emoscribe run: "), stderr


def test_the_export_command_writes_the_repository(bundles, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "emoscribe", "export", "--bundle", str(bundles[0]), "--triton", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "fake-audio"), str(bundles[0])]
    wide = {**os.environ, "COLUMNS": "500"}  # the error box does not wrap the message
    bad = subprocess.run([*command, "--variant", "int8"], capture_output=True, text=True, timeout=120, env=wide)
    assert bad.returncode == 2 and "has no audio.int8.onnx" in bad.stderr
