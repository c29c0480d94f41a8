"""Speaker normalisation at run time: running moments, per-stream references in batch order, forgetting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fake_bundle import make_fake_bundle

from emoscribe.bundle import MANIFEST, BundleError, file_entry, load_bundle
from emoscribe.daemon.batcher import BatchConfig, Batcher, Request
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.speaker_reference import RunningMoments, SpeakerNormaliser


@pytest.fixture(scope="module")
def speaker_bundle(tmp_path_factory) -> Path:
    return make_fake_bundle(tmp_path_factory.mktemp("speaker"), speaker=True, horizon=4)


def test_running_moments_are_exact_up_to_the_horizon_then_forget_at_its_rate() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=(7, 5)).astype(np.float32)
    moments = RunningMoments((5,), horizon=4)
    for i, value in enumerate(values[:4]):
        moments.update(value)
        np.testing.assert_allclose(moments.mean, values[: i + 1].mean(0), rtol=1e-5)
        np.testing.assert_allclose(moments.var, values[: i + 1].var(0), rtol=1e-4, atol=1e-5)
    before = moments.mean.copy()
    moments.update(values[4])
    assert moments.count == 4, "the count stops at the horizon"
    np.testing.assert_allclose(moments.mean, before + (values[4] - before) / 4, rtol=1e-5)


def test_each_utterance_is_judged_against_the_streams_earlier_ones(speaker_bundle: Path) -> None:
    bundle = load_bundle(speaker_bundle)
    engine = OnnxEngine(bundle, "cpu")
    normaliser = SpeakerNormaliser(bundle)
    rng = np.random.default_rng(1)
    clips = [rng.normal(0, scale, 8_000).astype(np.float32) for scale in (0.1, 0.3, 0.2, 0.05)]
    first = engine.infer(clips)
    assert first.layer_stats is not None and first.layer_stats.shape == (4, 1, 2)
    # a, b, a in one batch: the second "a" is judged against the first, which came before it in the batch
    _, logits, counts, _ = normaliser.judge(["a", "b", "a", None], first.layer_stats)
    assert counts.tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(logits[[0, 1, 3]], first.logits[[0, 1, 3]], rtol=1e-4, atol=1e-4)
    assert not np.allclose(logits[2], first.logits[2]), "a known speaker moves the outputs"
    assert len(normaliser) == 2, "a row without a speaker is remembered nowhere"
    _, _, counts, _ = normaliser.judge(["a"] * 5, np.repeat(first.layer_stats[:1], 5, axis=0))
    assert counts.tolist() == [2, 3, 4, 4, 4], "references stop growing at the bundle's horizon"
    normaliser.forget("a")
    _, _, counts, _ = normaliser.judge(["a", "b"], first.layer_stats[:2])
    assert counts.tolist() == [0, 1], "a stream that ended starts afresh; the others keep theirs"


def test_moments_are_bounded_by_dropping_the_least_recently_heard(speaker_bundle: Path) -> None:
    normaliser = SpeakerNormaliser(load_bundle(speaker_bundle), max_speakers=3)
    stats = np.ones((1, 1, 2), dtype=np.float32)
    for speaker in ("a", "b", "c", "a", "d"):
        normaliser.judge([speaker], stats)
    assert len(normaliser) == 3
    _, _, counts, _ = normaliser.judge(["a", "b"], np.ones((2, 1, 2), dtype=np.float32))
    assert counts.tolist() == [2, 0], "b was the least recently heard and was dropped"


def test_the_batcher_reports_references_and_survives_an_engine_without_statistics(
    speaker_bundle: Path, tmp_path: Path
) -> None:
    bundle = load_bundle(speaker_bundle)
    results = []
    batcher = Batcher(
        OnnxEngine(bundle, "cpu"), BatchConfig(max_wait_ms=50), results.append, SpeakerNormaliser(bundle)
    )
    batcher.start()
    clip = np.full(4_000, 0.1, dtype=np.float32)
    for stream in ("x", "x", "y"):
        batcher.submit(Request(clip, stream, stream))
    assert batcher.stop(5.0)
    assert sorted((r.request.speaker, r.reference) for r in results) == [("x", 0), ("x", 1), ("y", 0)]

    plain = load_bundle(make_fake_bundle(tmp_path / "plain"))
    failed = []
    batcher = Batcher(OnnxEngine(plain, "cpu"), BatchConfig(), failed.append, SpeakerNormaliser(bundle))
    batcher.start()
    batcher.submit(Request(clip, "z", "z"))
    assert batcher.stop(5.0)
    assert failed[0].embedding is None and "no layer statistics" in failed[0].error


def test_a_bundle_claiming_speaker_normalisation_without_its_graph_is_refused(
    speaker_bundle: Path, tmp_path: Path
) -> None:
    broken = make_fake_bundle(tmp_path / "broken", speaker=True)
    manifest = json.loads((broken / MANIFEST).read_text())
    del manifest["files"]["speaker.onnx"]
    (broken / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"speaker\.onnx is not listed"):
        load_bundle(broken)
    manifest = json.loads((speaker_bundle / MANIFEST).read_text())
    manifest["speaker_normalisation"]["horizon"] = 0
    manifest["files"]["speaker.onnx"] = file_entry(speaker_bundle / "speaker.onnx")
    (broken / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="positive integer 'horizon'"):
        load_bundle(broken, verify=False)
    inputs = [i.name for i in ort.InferenceSession(str(speaker_bundle / "speaker.onnx")).get_inputs()]
    assert inputs == manifest["speaker_normalisation"]["inputs"]
