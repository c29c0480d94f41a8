"""Training on several corpora at once: manifests of several folders, per-corpus label sets (no false
negatives), corpus- and speaker-balanced draws, and arousal-only labels that train only the arousal output."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emoscribe.affect import CIRCUMPLEX, affect_phrase, arousal_level  # noqa: E402
from emoscribe.corpus import COLUMNS  # noqa: E402
from emoscribe.datasets import Utterance, from_manifests  # noqa: E402
from emoscribe.training.heads import EmotionHeads, HeadConfig  # noqa: E402
from emoscribe.training.objective import affect_loss, contrastive_loss, ser_loss  # noqa: E402
from emoscribe.training.records import EMOTIONS, Record, corpus_classes  # noqa: E402
from emoscribe.training.sampling import balance_weights, batch_targets, epoch_order  # noqa: E402
from emoscribe.training.train import TextBank, TrainConfig, batch_loss, training_pairs  # noqa: E402


def _manifest(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A manifest of (corpus, speaker, emotion) rows; the audio is never read."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i, (corpus, speaker, emotion) in enumerate(rows):
            writer.writerow(
                {
                    "path": f"{speaker}/{i}.opus",
                    "corpus": corpus,
                    "speaker": speaker,
                    "gender": "female",
                    "emotion": emotion,
                    "intensity": "normal",
                    "text": "",
                    "language": "xx",
                    "duration_s": "2.0",
                }
            )
    return folder


def _record(corpus: str, speaker: str, emotion: str, classes: frozenset[int], arousal_only: bool = False):
    label = -1 if arousal_only else EMOTIONS.index(emotion)
    valence, arousal = (
        (None, {"lowarousal": -0.6, "neutral": 0.0, "higharousal": 0.7}[emotion])
        if arousal_only
        else CIRCUMPLEX[emotion]
    )
    prompts = (f"high pitch {emotion}",) if not arousal_only else ("high pitch",)
    utterance = Utterance(Path(f"{speaker}.wav"), corpus, speaker, "female", emotion, arousal_only=arousal_only)
    return Record(utterance, label, None, prompts, ("pitch",), classes, valence, arousal)


def test_several_manifests_load_as_one_set_with_their_label_kinds(tmp_path) -> None:
    ased = _manifest(tmp_path / "ased", [("ased", "ased-01", "angry"), ("ased", "ased-02", "neutral")])
    baved = _manifest(tmp_path / "baved", [("baved", "baved-0", "lowarousal"), ("baved", "baved-0", "neutral")])
    utterances = from_manifests([ased, baved])
    assert [u.corpus for u in utterances] == ["ased", "ased", "baved", "baved"]
    assert [u.arousal_only for u in utterances] == [False, False, True, True], "BAVED's neutral is a level"
    assert utterances[2].path == baved / "baved-0" / "0.opus", "paths are relative to their own folder"
    classes = corpus_classes(utterances)
    assert classes["baved"] == frozenset()
    assert classes["ased"] == {EMOTIONS.index("angry"), EMOTIONS.index("neutral")}
    with pytest.raises(ValueError, match="ased-01"):
        from_manifests([ased, _manifest(tmp_path / "copy", [("ased", "ased-01", "sad")])])


def test_balanced_draws_weigh_every_corpus_and_speaker_alike() -> None:
    every = frozenset(range(len(EMOTIONS)))
    records = [_record("tess", "tess-OAF", "sad", every) for _ in range(400)]
    records += [_record("ased", f"ased-{s}", "sad", every) for s in range(4) for _ in range(5 + 10 * s)]
    rows = list(range(len(records)))
    weights = balance_weights(records, rows)
    assert weights[:400].sum() == pytest.approx(0.5)
    by_speaker = Counter()
    for r, w in zip(rows, weights, strict=True):
        by_speaker[records[r].utterance.speaker] += w
    assert [by_speaker[f"ased-{s}"] for s in range(4)] == pytest.approx([0.125] * 4)
    drawn = epoch_order(records, rows, True, np.random.default_rng(0))
    assert len(drawn) == len(rows)
    assert 0.4 < np.mean([records[r].utterance.corpus == "tess" for r in drawn]) < 0.6, "a uniform draw gives 0.85"
    assert sorted(epoch_order(records, rows, False, np.random.default_rng(0))) == rows
    even = records[:400]
    assert sorted(epoch_order(even, rows[:400], True, np.random.default_rng(0))) == rows[:400], (
        "nothing to balance"
    )


def test_a_class_the_corpus_lacks_gets_no_negative() -> None:
    logits = torch.zeros(1, len(EMOTIONS), requires_grad=True)
    classes = torch.zeros(1, len(EMOTIONS), dtype=torch.bool)
    classes[0, [EMOTIONS.index(e) for e in ("angry", "happy", "neutral", "sad")]] = True
    ser_loss(logits, torch.tensor([EMOTIONS.index("angry")]), 0.1, classes).backward()
    gradient = logits.grad[0]
    assert float(gradient[EMOTIONS.index("calm")]) == 0.0 and float(gradient[EMOTIONS.index("disgust")]) == 0.0
    assert float(gradient[EMOTIONS.index("sad")]) > 0.0, "a class the corpus has is a negative"
    full = torch.randn(5, len(EMOTIONS))
    labels = torch.tensor([0, 2, 3, 4, 7])
    expected = torch.nn.functional.cross_entropy(full, labels, label_smoothing=0.1)
    assert float(ser_loss(full, labels, 0.1)) == pytest.approx(float(expected), rel=1e-5)


def test_prompts_naming_an_absent_class_are_no_contrastive_negatives() -> None:
    four = frozenset(EMOTIONS.index(e) for e in ("angry", "happy", "neutral", "sad"))
    records = [
        _record("ased", "ased-01", "angry", four),
        _record("ravdess", "ravdess-01", "disgust", frozenset(range(len(EMOTIONS)))),
    ]
    texts = ["high pitch angry", "high pitch disgust"]
    bank = TextBank(texts, torch.zeros(2, 4))
    columns, positives, valid = training_pairs(
        bank, records, np.array([0, 1]), TrainConfig(), np.random.default_rng(0)
    )
    assert columns == [0, 1] and positives.tolist() == [[True, False], [False, True]]
    assert valid.tolist() == [[True, False], [True, True]], "ASED has no disgust: no negative for its clip"
    similarity = torch.zeros(2, 2, requires_grad=True)
    contrastive_loss(similarity, positives, valid).backward()
    assert float(similarity.grad[0, 1]) == 0.0 and float(similarity.grad[1, 0]) != 0.0


def test_arousal_only_rows_train_only_the_arousal_output() -> None:
    heads = EmotionHeads(HeadConfig(n_layers=2, d_audio=4, d_text=4, n_classes=len(EMOTIONS), affect=True))
    records = [_record("baved", "baved-0", level, frozenset(), True) for level in ("lowarousal", "higharousal")]
    rows = np.array([0, 1])
    bank = TextBank(["high pitch"], torch.randn(1, 4))
    columns, positives, valid = training_pairs(bank, records, rows, TrainConfig(), np.random.default_rng(0))
    targets = batch_targets(records, rows)
    assert torch.isnan(targets.affect[:, 0]).all() and targets.labels.tolist() == [-1, -1]
    audio = torch.randn(2, 2, 8)
    config = TrainConfig(contrastive_weight=0.0)
    loss, _, ser = batch_loss(heads, audio, bank.embeddings[columns], positives, valid, targets, config)
    loss.backward()
    assert float(ser.detach()) == 0.0
    assert float(heads.audio.classifier.weight.grad.abs().sum()) == 0.0, "no class is taught"
    affect = heads.audio.affect.weight.grad
    assert float(affect[1].abs().sum()) > 0.0 and float(affect[3].abs().sum()) > 0.0, "arousal and its variance"
    assert float(affect[0].abs().sum()) == 0.0 and float(affect[2].abs().sum()) == 0.0, "valence is unknown"


def test_affect_loss_prefers_the_right_value_and_the_mapping_reads_back() -> None:
    target = torch.tensor([[0.8, float("nan")]])
    log_var = torch.zeros(1, 2)
    assert affect_loss(torch.tensor([[0.8, 0.0]]), log_var, target) < affect_loss(
        torch.tensor([[-0.5, 0.0]]), log_var, target
    )
    assert arousal_level(CIRCUMPLEX["angry"][1]) == 2 and arousal_level(CIRCUMPLEX["sad"][1]) == 0
    assert affect_phrase(0.7, -0.6) == "high arousal, negative valence"
    assert affect_phrase(0.0, 0.1) == ""


def test_training_config_takes_several_corpus_folders() -> None:
    config = TrainConfig.from_mapping({"data": ["a", "b"]})
    assert config.data == ("a", "b")
    with pytest.raises(ValueError, match="datas"):
        TrainConfig.from_mapping({"datas": ["a"]})


def test_the_exported_speaker_tower_adds_the_affect_output_only_for_heads_with_it() -> None:
    from emoscribe.export.towers import SpeakerTower

    for affect, outputs in ((True, 3), (False, 2)):
        config = HeadConfig(
            n_layers=2, d_audio=4, d_text=4, n_classes=8, speaker_normalisation=True, affect=affect
        )
        head = EmotionHeads(config).audio.eval()
        stats = torch.randn(3, 2, 8)
        got = SpeakerTower(head)(stats, torch.tensor([0.0, 2.0, 5.0]), torch.zeros(3, 2, 8), torch.ones(3, 2, 8))
        assert len(got) == outputs
        if affect:
            assert got[2].shape == (3, 4) and bool((got[2][:, 2:] > 0).all()), "values, then positive spreads"


def test_the_shared_corpora_load_together_with_their_label_kinds() -> None:
    from emoscribe.corpus import data_dir

    folder = data_dir()
    if folder is None or not (folder / "ased" / "manifest.csv").is_file() or not (folder / "baved").is_dir():
        pytest.skip(
            "corpus not available: set EMOSCRIBE_DATA to the folder holding manifest.csv, ased/ and baved/"
        )
    utterances = from_manifests([folder, folder / "ased", folder / "baved"])
    kinds = {u.corpus: u.arousal_only for u in utterances}
    assert kinds == {"ravdess": False, "tess": False, "ased": False, "baved": True}
    classes = corpus_classes(utterances)
    assert EMOTIONS.index("calm") in classes["ravdess"] and EMOTIONS.index("calm") not in classes["ased"]
    assert {u.emotion for u in utterances if u.corpus == "baved"} == {"lowarousal", "neutral", "higharousal"}
    assert all(u.path.is_file() for u in utterances[:: len(utterances) // 50])
