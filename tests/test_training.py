"""Training pieces: metrics, the multi-positive loss, and a tiny real training run that lowers the loss."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from emoscribe.audio import load_audio  # noqa: E402
from emoscribe.corpus import parse_ravdess_name  # noqa: E402
from emoscribe.cues import extract_cues  # noqa: E402
from emoscribe.cues.binning import QuantileBinner  # noqa: E402
from emoscribe.datasets import Utterance  # noqa: E402
from emoscribe.training.ct2 import find_packaged_whisper  # noqa: E402
from emoscribe.training.evaluate import evaluate  # noqa: E402
from emoscribe.training.experiment import Corpus, every_speaker, fixed_training_rows, speakers_of  # noqa: E402
from emoscribe.training.features import FeatureSet, encode  # noqa: E402
from emoscribe.training.frames import FrameSet, encode_frames  # noqa: E402
from emoscribe.training.heads import SpeakerReference  # noqa: E402
from emoscribe.training.metrics import classification_metrics, precision_at_k  # noqa: E402
from emoscribe.training.objective import contrastive_loss  # noqa: E402
from emoscribe.training.records import EMOTIONS, Record, build_records  # noqa: E402
from emoscribe.training.references import ReferenceSampler, fit_priors  # noqa: E402
from emoscribe.training.text import embed_texts, load_text_encoder  # noqa: E402
from emoscribe.training.train import TextBank, TrainConfig, train_heads  # noqa: E402
from emoscribe.training.tuning import EncoderTop, fine_tune, tuned_features  # noqa: E402
from emoscribe.training.whisper import LogMel, load_ct2_encoder  # noqa: E402


def test_classification_metrics_by_hand() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(labels, predicted, n_classes=4)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["uar"] == pytest.approx((0.5 + 1.0 + 0.5) / 3), "class 3 is absent and left out"
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1.0 / (2 / 3 + 1.0), 2 * 1.0 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))


def test_precision_at_k_by_hand() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    relevant = np.array([[True, False, True, False], [False, False, False, False]])
    figures = precision_at_k(scores, relevant, ks=(1, 2, 3))
    assert figures == {"p@1": 1.0, "p@2": 0.5, "p@3": pytest.approx(2 / 3)}, "the unanswerable query is skipped"


def test_contrastive_loss_prefers_true_pairs() -> None:
    positives = torch.tensor([[True, False], [True, False], [False, True]])
    good = torch.tensor([[5.0, -5.0], [5.0, -5.0], [-5.0, 5.0]])
    assert contrastive_loss(good, positives) < contrastive_loss(-good, positives)
    # rows: one sure positive each (~0); columns: the first has two equal positives (log 2), the second one (~0)
    assert contrastive_loss(good, positives) == pytest.approx(np.log(2) / 4, abs=0.01)


@pytest.fixture(scope="module")
def demo_training_set(demo_dir):
    clips = sorted(demo_dir.glob("*.flac"))
    audio = [load_audio(p)[0].astype(np.float32) for p in clips]
    utterances = []
    for path in clips:
        name = parse_ravdess_name(path.name)
        utterances.append(Utterance(path, "ravdess", f"ravdess-{name.actor:02d}", name.sex, name.emotion))
    records = build_records(utterances, [extract_cues(a) for a in audio], QuantileBinner.default())
    encoder = load_ct2_encoder(find_packaged_whisper("tiny.en"))
    stats = encode(audio, LogMel(encoder.config.n_mels), encoder)
    features = FeatureSet("tiny.en", {"clean": stats, "ulaw": stats})
    texts = sorted({p for r in records for p in r.prompts})
    sentence, tokenizer, _ = load_text_encoder()
    return features, TextBank(texts, embed_texts(texts, sentence, tokenizer)), records


def _loss(heads, features, bank, records) -> float:
    with torch.no_grad():
        audio, _ = heads.audio(torch.from_numpy(features.stats["clean"].astype(np.float32)))
        text = heads.text(bank.embeddings)
        positives = torch.tensor([[t in r.prompts for t in bank.texts] for r in records])
        return float(contrastive_loss(heads.similarity(audio, text), positives))


def test_a_few_steps_lower_the_contrastive_loss(demo_training_set, tmp_path) -> None:
    features, bank, records = demo_training_set
    rows = list(range(len(records)))
    config = TrainConfig(epochs=30, batch_size=6, telephone_probability=0.0, dropout=0.0)
    config = replace(config, speaker_normalisation=False)
    untrained = train_heads(features, bank, records, rows, replace(config, epochs=0))
    trained = train_heads(features, bank, records, rows, config, run_dir=tmp_path / "run")
    before, after = _loss(untrained, features, bank, records), _loss(trained, features, bank, records)
    assert after < 0.7 * before, (before, after)
    assert (tmp_path / "run" / "checkpoint.pt").exists() and (tmp_path / "run" / "tensorboard").is_dir()
    report = evaluate(trained, features, bank, records, rows)
    assert report["ser"]["accuracy"] > 0.5, "six clips can be fitted"
    resumed = train_heads(features, bank, records, rows, config, run_dir=tmp_path / "run")
    for a, b in zip(resumed.state_dict().values(), trained.state_dict().values(), strict=True):
        assert torch.equal(a, b), "a finished run resumes to the same weights"


@pytest.fixture(scope="module")
def demo_frames(demo_dir):
    """Frames entering the tiny.en encoder's top block, for the demo clips (clean only)."""
    audio = [load_audio(p)[0].astype(np.float32) for p in sorted(demo_dir.glob("*.flac"))]
    encoder = load_ct2_encoder(find_packaged_whisper("tiny.en"))
    layer = encoder.config.n_layers - 1
    clips = encode_frames(audio, LogMel(encoder.config.n_mels), encoder, [layer])[layer]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])])
    return encoder, FrameSet(layer, {"clean": np.concatenate(clips)}, {"clean": offsets})


@pytest.mark.parametrize(
    ("adapter_rank", "speaker_normalisation"), [(0, False), (4, False), (4, True)], ids=["full", "lora", "lora+sn"]
)
def test_fine_tuning_starts_from_the_frozen_statistics_and_lowers_the_loss(
    demo_training_set, demo_frames, adapter_rank, speaker_normalisation
) -> None:
    features, bank, records = demo_training_set
    encoder, frames = demo_frames
    top = EncoderTop(encoder, unfreeze_layers=1, attention=True, adapter_rank=adapter_rank)
    rows = list(range(len(records)))
    with torch.no_grad():
        untouched = top(*frames.batch(["clean"] * len(rows), rows)).numpy()
    np.testing.assert_allclose(untouched, features.stats["clean"][:, -1:], rtol=0.02, atol=0.02)

    # affect off: the loss measured is the contrastive one, which the arousal/valence objective would share
    config = TrainConfig(epochs=5, batch_size=6, telephone_probability=0.0, dropout=0.0, affect=False)
    config = replace(config, unfreeze_layers=1, adapter_rank=adapter_rank)
    config = replace(config, speaker_normalisation=speaker_normalisation)
    heads = train_heads(features, bank, records, rows, config)
    before = _loss(heads, tuned_features(features, frames, top, rows, ["clean"]), bank, records)
    tuned = replace(config, unfreeze_epochs=30, encoder_learning_rate=1e-3, head_learning_rate_scale=1.0)
    fine_tune(heads, top, features, frames, bank, records, rows, tuned)
    seen = tuned_features(features, frames, top, rows, ["clean"])
    after = _loss(heads, seen, bank, records)
    assert after < 0.7 * before, (before, after)
    block = top.blocks[0]
    if adapter_rank:
        assert torch.equal(block.mlp[0].base.weight, encoder.blocks[-1].mlp[0].weight), "the block stays frozen"
        assert float(block.mlp[0].up.detach().abs().max()) > 0, "its adapter was trained"
        assert all(name.endswith(("adapter_down", "adapter_up")) for name in top.encoder_state())
    else:
        assert not torch.equal(block.mlp[0].weight, encoder.blocks[-1].mlp[0].weight), "the block was trained"
    if speaker_normalisation:
        tuned_mean = seen.stats["clean"].astype(np.float64).mean(0)
        np.testing.assert_allclose(
            heads.audio.reference.prior_mean.numpy(), tuned_mean, atol=2e-3, err_msg="priors of the tuned top"
        )
        frozen_mean = features.stats["clean"].astype(np.float64).mean(0)
        assert np.abs(tuned_mean - frozen_mean)[-1].max() > 0.01, "the tuned top's statistics moved"


def test_merged_adapters_compute_what_the_adapted_block_computes(demo_frames) -> None:
    from emoscribe.training.adapters import merge_adapters

    encoder, frames = demo_frames
    top = EncoderTop(encoder, unfreeze_layers=1, attention=False, adapter_rank=2)
    with torch.no_grad():
        for parameter in top.encoder_parameters():
            parameter.normal_(0.0, 0.05)
    merged = load_ct2_encoder(find_packaged_whisper("tiny.en"))
    merged.load_state_dict(merge_adapters(merged.state_dict(), top.encoder_state()))
    plain = EncoderTop(merged, unfreeze_layers=1, attention=False)
    batch = frames.batch(["clean"] * 3, [0, 1, 2])
    with torch.no_grad():
        np.testing.assert_allclose(top(*batch).numpy(), plain(*batch).numpy(), rtol=1e-4, atol=1e-4)
    state = top.encoder_state()
    with pytest.raises(ValueError, match="incomplete adapters"):
        merge_adapters(merged.state_dict(), {k: v for k, v in state.items() if not k.endswith("mlp.0.adapter_up")})
    stray = {k.replace("blocks.3.", "blocks.9."): v for k, v in state.items()}
    with pytest.raises(ValueError, match=r"adapter blocks\.9\..* adapts no weight"):
        merge_adapters(merged.state_dict(), stray)
    with pytest.raises(ValueError, match="adapter_rank must be 0, or positive with unfreeze_layers"):
        TrainConfig(adapter_rank=4)


def test_training_device_is_what_was_asked_for_or_a_clear_error() -> None:
    from emoscribe.training.device import mixed_precision, training_device

    assert training_device("cpu") == torch.device("cpu")
    assert training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        training_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            training_device("cuda")
    with mixed_precision(torch.device("cpu"), enabled=True):
        assert not torch.is_autocast_enabled("cpu"), "the CPU trains in full precision"


def test_the_shipped_model_trains_on_every_speaker_the_fixed_split_on_all_but_validation(
    demo_training_set,
) -> None:
    features, bank, demo_records = demo_training_set
    validation = replace(demo_records[0], utterance=replace(demo_records[0].utterance, speaker="ravdess-17"))
    records = [*demo_records, validation]
    stats = {v: np.concatenate([x, x[:1]]) for v, x in features.stats.items()}
    corpus = Corpus([r.utterance for r in records], records, FeatureSet("tiny.en", stats), bank, encoder=None)
    assert speakers_of(corpus, fixed_training_rows(corpus)) == ["ravdess-03", "ravdess-10"]
    config = TrainConfig(epochs=2, batch_size=4)
    heads, top, rows = every_speaker(corpus, config)
    assert rows == list(range(len(records))) and top is None
    assert speakers_of(corpus, rows) == ["ravdess-03", "ravdess-10", "ravdess-17"]
    held_out = train_heads(corpus.features, bank, records, fixed_training_rows(corpus), config)
    shipped, fixed = heads.audio.reference.prior_mean, held_out.audio.reference.prior_mean
    assert not torch.allclose(shipped, fixed), "the priors of the shipped model include the extra voice"


def _records(speakers: list[str], labels: list[int]) -> list[Record]:
    utterances = [
        Utterance(Path(f"{i}.flac"), "test", s, None, EMOTIONS[c])
        for i, (s, c) in enumerate(zip(speakers, labels, strict=True))
    ]
    return [Record(u, c, None, (), ()) for u, c in zip(utterances, labels, strict=True)]


def test_references_are_other_clips_of_the_same_speaker_through_the_same_channel() -> None:
    records = _records(["a", "a", "a", "a", "b", "b"], [0, 0, 1, 1, 2, 2])
    row_value = np.arange(6, dtype=np.float16)[:, None, None] * np.ones((1, 2, 4), dtype=np.float16)
    features = FeatureSet("test", {"clean": row_value, "ulaw": row_value + 100})
    sampler = ReferenceSampler(records, range(6))
    rng = np.random.default_rng(0)
    count, mean, var = sampler.draw(features, [0, 4, 1], ["clean", "clean", "ulaw"], [3, 5, 0], rng)
    assert count.tolist() == [3, 1, 0], "never the clip itself; fewer where the speaker has fewer"
    assert float(mean[0, 0, 0]) == pytest.approx(2.0) and float(var[0, 0, 0]) == pytest.approx(np.var([1, 2, 3]))
    assert float(mean[1, 0, 0]) == pytest.approx(5.0) and float(var[1].abs().max()) == 0.0
    count, mean, _ = sampler.draw(features, [0], ["ulaw"], [8], rng, one_emotion=True)
    assert (int(count[0]), float(mean[0, 0, 0])) in {(1, 101.0), (2, 102.5)}, "one emotion, read through mu-law"

    reference = SpeakerReference(2, 4)
    fit_priors(reference, features, records, range(6), ["clean"], prior_clips=3.0)
    assert reference.prior_mean[0, 0].item() == pytest.approx(2.5)
    assert reference.prior_var[0, 0].item() == pytest.approx((4 * np.var([0, 1, 2, 3]) + 2 * 0.25) / 6)
    assert reference.prior_clips.item() == 3.0


def test_speaker_normalised_heads_train_and_use_what_they_know(demo_training_set) -> None:
    features, bank, records = demo_training_set
    rows = list(range(len(records)))
    config = TrainConfig(
        epochs=30, batch_size=6, telephone_probability=0.0, dropout=0.0, speaker_normalisation=True
    )
    untrained = train_heads(features, bank, records, rows, replace(config, epochs=0))
    trained = train_heads(features, bank, records, rows, config)
    assert _loss(trained, features, bank, records) < 0.7 * _loss(untrained, features, bank, records)
    stats = torch.from_numpy(features.stats["clean"].astype(np.float32))
    np.testing.assert_allclose(trained.audio.reference.prior_mean.numpy(), stats.mean(0).numpy(), atol=1e-3)
    known = (torch.full((len(rows),), 2.0), stats.roll(1, 0), torch.ones_like(stats))
    with torch.no_grad():
        assert not torch.allclose(trained.audio(stats)[1], trained.audio(stats, known)[1])


def test_report_of_a_speaker_normalised_run_tabulates_the_reference_curve(tmp_path) -> None:
    from emoscribe.training.report import write_report

    def ser(accuracy: float) -> dict:
        return {"accuracy": accuracy, "uar": accuracy, "macro_f1": accuracy, "n": 240}

    def variant(accuracy: float) -> dict:
        curve = {"0 clips": ser(accuracy - 0.1), "10 clips": ser(accuracy)}
        confusion = np.eye(len(EMOTIONS), dtype=int).tolist()
        return {"ser": ser(accuracy), "zero_shot_ser": ser(0.5), "retrieval": {}, "confusion": confusion} | {
            "ser_by_reference": curve
        }

    folds = [{"clean": variant(a), "ulaw": variant(a - 0.02)} for a in (0.7, 0.8)]
    results = {
        "encoder": "tiny.en",
        "command": "emoscribe train",
        "machine": "test",
        "config": {"speaker_normalisation": True},
        "fixed_split": {"ravdess-17-20": {"clean": variant(0.75), "ulaw": variant(0.73)}},
        "linear_probe_floor": {"clean": ser(0.6), "ulaw": ser(0.5)},
        "cross_validation": {"per_fold": folds, "summary": {}},
    }
    results["cross_validation"]["summary"] = {
        f"{v}/{m}": {"mean": 0.75, "sd": 0.07} for v in ("clean", "ulaw") for m in ("accuracy", "uar", "macro_f1")
    }
    report = write_report(results, tmp_path).read_text()
    assert "(frozen, speaker-normalised)" in report
    assert "| 10 clips | 75.0 % | 73.0 % | 75.0 % ± 7.1 % | 73.0 % ± 7.1 % |" in report
    assert "| 0 clips | 65.0 % | 63.0 % | 65.0 % ± 7.1 % | 63.0 % ± 7.1 % |" in report
    assert (tmp_path / "confusion-ravdess-17-20.png").stat().st_size > 0


def test_expected_calibration_error_by_hand() -> None:
    from emoscribe.training.metrics import calibration

    posteriors = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    figures = calibration(labels, posteriors, bins=10)
    # bin 0.9: confidence 0.9, accuracy 0.5 (half the clips); bin 0.6: confidence 0.6, accuracy 1.0 (half)
    assert figures["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert figures["mean_confidence"] == pytest.approx(0.75) and figures["accuracy"] == pytest.approx(0.75)


def test_temperature_recovers_the_scale_that_calibrates_the_logits() -> None:
    from emoscribe.training.metrics import fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 2.0, size=(4000, 8))
    posteriors = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(8, p=p) for p in posteriors])
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1), "calibrated logits keep T = 1"
    assert fit_temperature(3.0 * logits, labels) == pytest.approx(3.0, rel=0.1), "overconfident: T > 1"
    assert fit_temperature(0.5 * logits, labels) == pytest.approx(0.5, rel=0.1), "underconfident: T < 1"
