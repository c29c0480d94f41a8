"""Export: a bundle built from heads + the packaged tiny.en encoder, with ONNX parity, verified and loadable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxconverter_common")

from safetensors.torch import save_file  # noqa: E402

from emoscribe.audio import load_audio  # noqa: E402
from emoscribe.bundle import BundleError, load_bundle  # noqa: E402
from emoscribe.daemon.engine.onnx_local import OnnxEngine  # noqa: E402
from emoscribe.daemon.speaker_reference import SpeakerNormaliser  # noqa: E402
from emoscribe.export.build import PARITY_TOLERANCE, build  # noqa: E402
from emoscribe.export.towers import AudioTower  # noqa: E402
from emoscribe.training.heads import EmotionHeads, HeadConfig  # noqa: E402
from emoscribe.training.parts import encoder_pin  # noqa: E402
from emoscribe.training.records import EMOTIONS  # noqa: E402
from emoscribe.training.whisper import LogMel  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, EmotionHeads]:
    """A bundle from randomly initialised, speaker-normalising heads: what is checked is the export, not the
    training."""
    parts = tmp_path_factory.mktemp("parts") / "tiny.en"
    parts.mkdir()
    torch.manual_seed(0)
    config = HeadConfig(n_layers=5, d_audio=384, d_text=384, n_classes=len(EMOTIONS), speaker_normalisation=True)
    heads = EmotionHeads(config).eval()
    with torch.no_grad():
        heads.audio.reference.prior_mean.normal_(0.0, 0.5)
        heads.audio.reference.prior_var.uniform_(0.5, 2.0)
        heads.audio.temperature.fill_(2.0)
    save_file(heads.state_dict(), parts / "heads.safetensors")
    spec = {
        "audio_encoder": encoder_pin("tiny.en"),
        "heads": heads.config.to_dict(),
        "speaker_normalisation": {"horizon": 20},
        "ser_temperature": 2.0,
    }
    (parts / "parts.json").write_text(json.dumps(spec))
    return build(parts, tmp_path_factory.mktemp("out") / "bundle"), heads


def test_bundle_is_complete_and_verified(built) -> None:
    path, _ = built
    bundle = load_bundle(path)
    files = set(bundle.manifest["files"])
    assert {
        "audio.onnx",
        "audio.fp16.onnx",
        "audio.int8.onnx",
        "text.onnx",
        "tokenizer.json",
        "prompts.npz",
        "speaker.onnx",
    } <= files
    parity = bundle.manifest["provenance"]["parity_max_abs_diff"]
    assert set(parity) == {"audio.onnx", "speaker.onnx", "text.onnx"}
    assert max(parity.values()) <= PARITY_TOLERANCE
    assert bundle.speaker_horizon == 20
    assert bundle.manifest["provenance"]["ser_temperature"] == 2.0, "the logits are divided by it (parity below)"
    assert bundle.labels == list(EMOTIONS)
    bank = np.load(bundle.file("prompts.npz"))
    assert np.allclose(np.linalg.norm(bank["embeddings"], axis=1), 1.0, atol=1e-4)
    assert "high female pitch anger" in set(bank["texts"].tolist())


def test_daemon_engine_matches_torch_on_real_clips(built, demo_dir) -> None:
    path, heads = built
    from emoscribe.training.ct2 import find_packaged_whisper
    from emoscribe.training.whisper import load_ct2_encoder

    encoder = load_ct2_encoder(find_packaged_whisper("tiny.en"))
    tower = AudioTower(LogMel(encoder.config.n_mels), encoder, heads.audio).eval()
    clips = [load_audio(p)[0].astype(np.float32) for p in sorted(demo_dir.glob("*.flac"))[:3]]
    engine = OnnxEngine(load_bundle(path), "cpu")
    got = engine.infer(clips)
    for i, clip in enumerate(clips):
        with torch.inference_mode():
            embedding, logits, _ = tower(torch.from_numpy(clip)[None], torch.tensor([clip.size]))
        assert np.abs(got.embeddings[i] - embedding[0].numpy()).max() <= PARITY_TOLERANCE
        assert np.abs(got.logits[i] - logits[0].numpy()).max() <= PARITY_TOLERANCE
    # one stream hearing the clips in turn: each judged against the ones before it, as training draws them
    _, judged, counts, _ = SpeakerNormaliser(load_bundle(path)).judge(["call"] * len(clips), got.layer_stats)
    assert counts.tolist() == [0, 1, 2]
    earlier = got.layer_stats[:2]
    reference = tuple(torch.from_numpy(np.asarray(x, dtype=np.float32))[None] for x in (2, *moments(earlier)))
    with torch.inference_mode():
        _, want = heads.audio(torch.from_numpy(got.layer_stats[2:]), reference)
        alone = heads.audio(torch.from_numpy(got.layer_stats[2:]))[1]
    assert np.abs(judged[2] - want[0].numpy()).max() <= PARITY_TOLERANCE
    assert np.abs(judged[0] - got.logits[0]).max() <= PARITY_TOLERANCE, "the first utterance is judged alone"
    assert np.abs(want - alone).max() > 0.01, "what the stream heard before changes the outputs"
    int8 = OnnxEngine(load_bundle(path), "cpu", variant="int8").infer(clips)
    cosine = (int8.embeddings * got.embeddings).sum(axis=1)
    assert cosine.min() > 0.95, f"dynamic int8 stays close to fp32 (cosine {cosine.min():.3f})"


def moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return values.mean(0), values.var(0)


def test_text_tower_embeds_run_time_queries_like_the_bank(built) -> None:
    from emoscribe.export.towers import TextTower
    from emoscribe.training.text import load_text_encoder

    path, heads = built
    bundle = load_bundle(path)
    engine = OnnxEngine(bundle, "cpu")
    bank = np.load(bundle.file("prompts.npz"))
    texts = bank["texts"][:4].tolist()
    assert np.abs(engine.embed_texts(texts) - bank["embeddings"][:4]).max() < 1e-4
    queries = [
        "calm",
        "a customer who sounds increasingly frustrated and raises their voice at the agent on the phone",
    ]
    sentence, tokenizer, _ = load_text_encoder()
    tokens = tokenizer(queries, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = TextTower(sentence, heads.text)(tokens["input_ids"], tokens["attention_mask"]).numpy()
    assert np.abs(engine.embed_texts(queries) - expected).max() < 1e-4, "lengths unlike the export example"


def test_tampered_bundle_is_refused(built, tmp_path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built[0], copy)
    with (copy / "audio.int8.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match=r"audio\.int8\.onnx: checksum mismatch"):
        load_bundle(copy)


@pytest.mark.parametrize(
    ("adapter_rank", "speaker_normalisation"), [(0, False), (2, True)], ids=["full-weights", "adapters+speaker"]
)
def test_a_tuned_encoder_top_is_exported_as_trained(
    tmp_path, demo_dir, adapter_rank, speaker_normalisation
) -> None:
    """Parts with a tuned top block (its weights, or low-rank adapters merged at build) and attentive pooling:
    the bundle computes what training computed, and hands the daemon's speaker moments the tuned statistics."""
    from emoscribe.training.ct2 import find_packaged_whisper
    from emoscribe.training.features import FeatureSet, encode
    from emoscribe.training.frames import FrameSet, encode_frames
    from emoscribe.training.parts import save_parts
    from emoscribe.training.train import TrainConfig
    from emoscribe.training.tuning import EncoderTop, tuned_features
    from emoscribe.training.whisper import load_ct2_encoder

    encoder = load_ct2_encoder(find_packaged_whisper("tiny.en"))
    logmel = LogMel(encoder.config.n_mels)
    torch.manual_seed(1)
    head_config = HeadConfig(5, 384, 384, len(EMOTIONS), speaker_normalisation=speaker_normalisation)
    heads = EmotionHeads(head_config).eval()
    top = EncoderTop(encoder, unfreeze_layers=1, attention=True, adapter_rank=adapter_rank)
    step = 0.5 if adapter_rank else 0.05  # an adapter's update B A is a product of two small matrices
    with torch.no_grad():
        for parameter in [*top.encoder_parameters(), *top.pool.parameters()]:
            parameter.add_(step * torch.randn_like(parameter))
    top.eval()
    config = TrainConfig(
        unfreeze_layers=1,
        attention_pooling=True,
        adapter_rank=adapter_rank,
        speaker_normalisation=speaker_normalisation,
    )
    save_parts(tmp_path / "parts", heads, config, {"fixed_split": {}, "command": "test"}, ["ravdess-01"], top)
    bundle = load_bundle(build(tmp_path / "parts", tmp_path / "bundle"))
    assert bundle.manifest["provenance"]["encoder_top"]["attention_pooling"] is True
    assert bundle.manifest["provenance"]["encoder_top"]["adapter_rank"] == adapter_rank

    clips = [load_audio(p)[0].astype(np.float32) for p in sorted(demo_dir.glob("*.flac"))[:3]]
    got = OnnxEngine(bundle, "cpu").infer(clips)
    rows = list(range(len(clips)))
    features = FeatureSet("tiny.en", {"clean": encode(clips, logmel, encoder)})
    frames = encode_frames(clips, logmel, encoder, [top.input_layer])[top.input_layer]
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in frames])])
    frame_set = FrameSet(top.input_layer, {"clean": np.concatenate(frames)}, {"clean": offsets})
    with torch.inference_mode():
        tuned = torch.from_numpy(tuned_features(features, frame_set, top, rows, ["clean"]).stats["clean"])
        want, _ = heads.audio(tuned.float())
        frozen, _ = heads.audio(torch.from_numpy(features.stats["clean"]).float())
    assert np.abs(want.numpy() - frozen.numpy()).max() > 0.05, "the tuned top changes the embedding"
    assert np.abs(got.embeddings - want.numpy()).max() < 5e-3, "the cached statistics are fp16"
    if speaker_normalisation:
        assert "speaker_normalisation" in bundle.manifest
        np.testing.assert_allclose(got.layer_stats, tuned.float().numpy(), rtol=0.01, atol=0.02)
