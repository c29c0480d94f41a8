"""Population references in training and evaluation (what a node's ``[population]`` moments hold), the held-out
stream cases of leave-one-corpus-out, and the per-corpus training caches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emoscribe.cues.model import Cues  # noqa: E402
from emoscribe.datasets import Utterance  # noqa: E402
from emoscribe.training import records as records_module  # noqa: E402
from emoscribe.training.cache import clips_key, corpus_rows  # noqa: E402
from emoscribe.training.experiment import stream_cases, streamed  # noqa: E402
from emoscribe.training.features import FeatureSet  # noqa: E402
from emoscribe.training.heads import EmotionHeads, HeadConfig, SpeakerReference  # noqa: E402
from emoscribe.training.records import EMOTIONS, Record, cached_cues  # noqa: E402
from emoscribe.training.references import (  # noqa: E402
    PopulationSampler,
    fit_priors,
    population_counts,
    streamed_references,
)
from emoscribe.training.train import TextBank, TrainConfig, train_heads  # noqa: E402

ANGRY, SAD, NEUTRAL = (EMOTIONS.index(e) for e in ("angry", "sad", "neutral"))


def _records(rows: list[tuple[str, str, int]]) -> list[Record]:
    """Records of (corpus, speaker, label) rows, each with its class prompt."""
    out = []
    for i, (corpus, speaker, label) in enumerate(rows):
        utterance = Utterance(
            Path(f"/clips/{corpus}/{speaker}/{i}.wav"), corpus, speaker, "female", EMOTIONS[label]
        )
        out.append(Record(utterance, label, None, (f"an {EMOTIONS[label]} voice",), ("class",)))
    return out


def _shifted_corpora(rng: np.random.Generator, corpora: dict[str, tuple[float, int]]):
    """Features ``(n, 2 layers, 8)`` where the emotion is a departure along one axis from the corpus's own mean,
    and each corpus (offset, clips per speaker) sits at its own offset (a channel or language shift), larger
    than the emotion itself."""
    rows, values = [], []
    for corpus, (offset, per_speaker) in corpora.items():
        for s in range(4):
            for k in range(per_speaker):
                label = (ANGRY, SAD)[k % 2]
                rows.append((corpus, f"{corpus}-{s}", label))
                vector = rng.normal(0.0, 1.0, (2, 8)) + offset
                vector[:, 0] += 1.5 if label == ANGRY else -1.5
                values.append(vector)
    stats = np.array(values, dtype=np.float32)
    return _records(rows), FeatureSet("test", {"clean": stats})


def test_streamed_references_are_what_was_heard_before_on_the_same_stream() -> None:
    stats = np.arange(6 * 2 * 2, dtype=np.float32).reshape(6, 2, 2) ** 1.5
    features = FeatureSet("test", {"clean": stats})
    rows = np.arange(6)
    order = np.array([3, 0, 5, 1, 4, 2])
    count, mean, var = streamed_references(features, rows, "clean", order, np.zeros(6), horizon=100)
    for step, position in enumerate(order):
        assert count[position] == step
        if step:
            before = stats[order[:step]]
            np.testing.assert_allclose(mean[position], before.mean(0), rtol=1e-5)
            np.testing.assert_allclose(var[position], before.var(0), rtol=1e-4, atol=1e-3)
    streams = np.array([0, 1, 0, 1, 0, 1])
    count, _, _ = streamed_references(features, rows, "clean", np.arange(6), streams, horizon=100)
    assert count.tolist() == [0, 0, 1, 1, 2, 2], "each stream counts only its own utterances"


def test_population_references_come_from_the_rows_own_corpus() -> None:
    records = _records([("a", "a-0", ANGRY)] * 70 + [("b", "b-0", SAD)] * 70)
    stats = np.concatenate([np.zeros((70, 2, 4)), np.full((70, 2, 4), 10.0)]).astype(np.float32)
    stats += np.random.default_rng(0).normal(0.0, 0.1, stats.shape).astype(np.float32)
    features = FeatureSet("test", {"clean": stats})
    sampler = PopulationSampler(records, range(140), features)
    rows = np.array([0, 1, 100, 101])
    count, mean, _ = sampler.draw(features, rows, ["clean"] * 4, [0, 5, 5, 1000], np.random.default_rng(0))
    assert count.tolist() == [0, 5, 5, 1000]
    assert float(mean[0].abs().max()) == 0.0, "nothing heard: the priors alone"
    assert abs(float(mean[1].mean())) < 0.2 and abs(float(mean[2].mean()) - 10.0) < 0.2
    np.testing.assert_allclose(mean[3].numpy(), stats[70:].mean(0), rtol=1e-5)
    counts = population_counts(10_000, 5000, np.random.default_rng(0))
    assert 0.05 < np.mean(counts == 0) < 0.15 and counts.max() <= 5000 and np.mean(counts > 64) > 0.5


def test_population_priors_hold_the_spread_within_a_corpus_not_between_corpora() -> None:
    records = _records(
        [("a", f"a-{i % 3}", ANGRY) for i in range(60)] + [("b", f"b-{i % 3}", SAD) for i in range(60)]
    )
    rng = np.random.default_rng(0)
    stats = np.concatenate([rng.normal(0.0, 1.0, (60, 1, 2)), rng.normal(20.0, 1.0, (60, 1, 2))]).astype(
        np.float32
    )
    features = FeatureSet("test", {"clean": stats})
    reference = SpeakerReference(1, 2)
    fit_priors(reference, features, records, range(120), ["clean"], 8.0, "corpus")
    assert float(reference.prior_var.max()) < 1.5, "the two corpora's distance is no part of the expected spread"
    assert abs(float(reference.prior_mean.mean()) - 10.0) < 0.5


def test_heads_trained_on_population_references_carry_to_a_shifted_corpus() -> None:
    rng = np.random.default_rng(0)
    records, features = _shifted_corpora(rng, {"a": (-2.0, 12), "b": (2.0, 12), "held": (6.0, 50)})
    train = [i for i, r in enumerate(records) if r.utterance.corpus != "held"]
    test = np.array([i for i, r in enumerate(records) if r.utterance.corpus == "held"])
    texts = sorted({p for r in records for p in r.prompts})
    bank = TextBank(texts, torch.from_numpy(rng.normal(size=(len(texts), 6)).astype(np.float32)))
    config = TrainConfig(
        epochs=60, learning_rate=1e-2, batch_size=32, reference="population", affect=False, d_hidden=32, d_joint=16
    )
    heads = train_heads(features, bank, records, train, config)
    labels = np.array([records[r].label for r in test])
    stats = torch.from_numpy(features.stats["clean"][test])
    with torch.inference_mode():
        alone = heads.audio(stats)[1].argmax(1).numpy()
        order = np.random.default_rng(1).permutation(test.size)
        reference = streamed(heads, config, features, test, "clean", order, np.zeros(test.size))
        published = heads.audio(stats, reference)[1].argmax(1).numpy()
    assert np.mean(published == labels) > 0.8, "judged against the held-out corpus's moments as they grow"
    assert np.mean(published == labels) > np.mean(alone == labels) + 0.25, "alone, the shift decides the label"


def test_stream_cases_make_neutral_the_majority_and_keep_one_emotion_per_stream() -> None:
    rows = [("c", f"c-{s}", label) for s in range(5) for label in (NEUTRAL, ANGRY, SAD) for _ in range(10)]
    records = _records(rows)
    cases = stream_cases(records)
    kept, order, _ = cases["neutral_70"]
    assert np.mean([records[k].label == NEUTRAL for k in kept]) == pytest.approx(0.7, abs=0.02)
    assert sorted(order.tolist()) == list(range(kept.size))
    _, order, streams = cases["one_emotion_streams"]
    for stream in set(streams.tolist()):
        members = np.flatnonzero(streams == stream)
        assert (
            len({records[m].label for m in members}) == 1
            and len({records[m].utterance.speaker for m in members}) == 1
        )
        positions = sorted(np.flatnonzero(np.isin(order, members)).tolist())
        assert positions == list(range(positions[0], positions[0] + members.size)), "one stream after another"


def test_caches_are_kept_per_corpus_and_shared_by_relative_and_absolute_paths(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = [Utterance(Path("data/x.wav"), "ravdess", "r-1", None, "sad")]
    b = [Utterance((tmp_path / "data/x.wav").resolve(), "ravdess", "r-1", None, "sad")]
    assert clips_key(a, "tiny.en", 0) == clips_key(b, "tiny.en", 0) != clips_key(a, "base", 0)
    mixed = [
        Utterance(Path("t/1.wav"), "tess", "t-1", None, "sad"),
        Utterance(Path("r/1.wav"), "ravdess", "r-1", None, "angry"),
        Utterance(Path("t/2.wav"), "tess", "t-1", None, "angry"),
    ]
    assert {k: v.tolist() for k, v in corpus_rows(mixed).items()} == {"tess": [0, 2], "ravdess": [1]}
    tess_cues = [Cues(duration_s=1.0), Cues(duration_s=2.0)]
    (tmp_path / f"cues-{clips_key([mixed[0], mixed[2]])}.jsonl").write_text(
        "".join(json.dumps(c.to_dict()) + "\n" for c in tess_cues)
    )
    computed: list[list[Path]] = []

    def fake_cues(paths):
        computed.append(list(paths))
        return [Cues(duration_s=3.0) for _ in paths]

    monkeypatch.setattr(records_module, "files_cues", fake_cues)
    cues = cached_cues(mixed, tmp_path)
    assert computed == [[Path("r/1.wav")]], "the TESS file is reused; only RAVDESS is computed"
    assert [c.duration_s for c in cues] == [1.0, 3.0, 2.0]


def test_heads_config_refuses_an_unknown_reference() -> None:
    with pytest.raises(ValueError, match="reference"):
        TrainConfig(reference="cohort")
    assert EmotionHeads(HeadConfig(n_layers=2, d_audio=4, d_text=4, n_classes=8, speaker_normalisation=True))
