"""The evaluation protocol: fixed speaker split, speaker-fold cross-validation, leave-one-corpus-out, ablation.

Every split is by speaker. The fixed split holds out RAVDESS actors 17-20 and TESS YAF; cross-validation runs
five folds of four RAVDESS actors (two male, two female) with TESS OAF always in training and TESS YAF never
used; leave-one-corpus-out holds each corpus out in turn, trains on all the others (each with its own label
set) and scores the held-out one over the four emotions every categorical corpus has, or, for an arousal-level
corpus, over its three arousal levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from emoscribe.affect import AROUSAL_NAMES, arousal_level
from emoscribe.corpus import VALIDATION_SPEAKERS
from emoscribe.cues.binning import QuantileBinner
from emoscribe.datasets import Utterance, from_manifests, speaker_folds
from emoscribe.training.ct2 import find_packaged_whisper
from emoscribe.training.evaluate import (
    audio_arousal,
    audio_outputs,
    evaluate,
    held_out_reference,
    reference_curve,
)
from emoscribe.training.features import FeatureSet, cached_features
from emoscribe.training.frames import FrameSet, cached_frames
from emoscribe.training.heads import EmotionHeads, Reference
from emoscribe.training.metrics import classification_metrics, fit_temperature, restricted_predictions
from emoscribe.training.records import EMOTIONS, SHARED_CLASSES, Record, build_records, cached_cues
from emoscribe.training.references import streamed_references
from emoscribe.training.text import embed_texts, load_text_encoder
from emoscribe.training.train import CPU, TextBank, TrainConfig, train_heads
from emoscribe.training.tuning import EncoderTop, fine_tune, tuned_features
from emoscribe.training.whisper import LogMel, WhisperAudioEncoder, load_ct2_encoder

EVALUATION_VARIANTS = ("clean", "ulaw")

CALIBRATION_REFERENCES = (0, 3, 10, 20)
"""Reference sizes the calibration pools, so the temperature fits a call's first utterances and its later ones."""

SERVING_REFERENCE = 10
"""Other clips of the speaker a speaker-normalised model knows in the headline figures of the fixed split and
cross-validation: the daemon's position after ten utterances of a call. ``ser_by_reference`` gives the rest of
the curve; leave-one-corpus-out streams every clip as the daemon would instead."""

NEUTRAL_SHARE = 0.7
"""Of the unbalanced held-out mix: a call center's traffic is mostly neutral, and population moments learnt
on it must not then mistake neutral for the population's mean of everything."""


@dataclass(slots=True)
class Corpus:
    """Everything the protocol trains and evaluates on, loaded once."""

    utterances: list[Utterance]
    records: list[Record]
    features: FeatureSet
    bank: TextBank
    encoder: WhisperAudioEncoder
    frames: dict[int, FrameSet] = field(default_factory=dict)
    """Cached frames by hidden-state index, for configs that fine-tune the encoder's top."""
    device: torch.device = CPU
    """Where training (and encoding uncached features) runs."""

    def rows(self, keep) -> list[int]:
        return [i for i, u in enumerate(self.utterances) if keep(u)]


def load_corpus(
    data: Path | Sequence[Path], config: TrainConfig, cache_dir: Path, device: torch.device = CPU
) -> Corpus:
    """Index the manifest(s) of one or several corpus folders, compute (or read cached) cues, prompts, encoder
    features and prompt embeddings, and the frames that a config tuning the encoder's top needs; uncached
    features are encoded on ``device``, where training will run too."""
    utterances = from_manifests([data] if isinstance(data, str | Path) else list(data))
    cues = cached_cues(utterances, cache_dir)
    records = build_records(utterances, cues, QuantileBinner.default())
    encoder = load_ct2_encoder(find_packaged_whisper(config.encoder)).to(device)
    logmel = LogMel(encoder.config.n_mels).to(device)
    features = cached_features(utterances, config.encoder, logmel, encoder, cache_dir)
    layers = [encoder.config.n_layers - config.unfreeze_layers] if config.tunes_encoder_top else []
    frames = cached_frames(utterances, config.encoder, logmel, encoder, cache_dir, layers) if layers else {}
    texts = sorted({p for r in records for p in r.prompts})
    text_encoder, tokenizer, _ = load_text_encoder()
    bank = TextBank(texts, embed_texts(texts, text_encoder, tokenizer))
    return Corpus(utterances, records, features, bank, encoder.cpu(), frames, device)


def train_model(
    corpus: Corpus, train: Sequence[int], config: TrainConfig, run_dir: Path | None = None
) -> tuple[EmotionHeads, EncoderTop | None]:
    """The heads, then (for a config that tunes it) the encoder's top trained with them."""
    heads = train_heads(corpus.features, corpus.bank, corpus.records, train, config, run_dir, corpus.device)
    if not config.tunes_encoder_top:
        return heads, None
    top = EncoderTop(corpus.encoder, config.unfreeze_layers, config.attention_pooling, config.adapter_rank)
    frames = corpus.frames[top.input_layer]
    fine_tune(heads, top, corpus.features, frames, corpus.bank, corpus.records, train, config, corpus.device)
    return heads, top


def _features(corpus: Corpus, top: EncoderTop | None, rows: Sequence[int]) -> FeatureSet:
    """The statistics ``rows`` have under the trained model: the cached ones, or with a tuned top recomputed."""
    if top is None:
        return corpus.features
    return tuned_features(corpus.features, corpus.frames[top.input_layer], top, rows, EVALUATION_VARIANTS)


def _score(
    heads: EmotionHeads, top: EncoderTop | None, corpus: Corpus, config: TrainConfig, tests: dict[str, list[int]]
) -> dict:
    """Every figure of every test set, clean and through the telephone channel."""
    out: dict[str, dict] = {}
    for name, rows in tests.items():
        features = _features(corpus, top, rows)
        out[name] = {}
        for variant in EVALUATION_VARIANTS:
            reference = published_reference(heads, config, features, corpus.records, np.asarray(rows), variant)
            report = evaluate(heads, features, corpus.bank, corpus.records, rows, variant, reference)
            if heads.audio.reference is not None and config.reference == "speaker":
                report["ser_by_reference"] = reference_curve(heads, features, corpus.records, rows, variant)
            out[name][variant] = report
    return out


def published_reference(
    heads: EmotionHeads,
    config: TrainConfig,
    features: FeatureSet,
    records: Sequence[Record],
    rows: np.ndarray,
    variant: str,
) -> Reference | None:
    """What each test row is judged against when published: for population references, the running moments of
    all the test rows heard in a seeded interleaved order; for speaker references, ``SERVING_REFERENCE`` other
    clips of the speaker; none for a model without references."""
    if config.reference == "population":
        order = np.random.default_rng(0).permutation(len(rows))
        return streamed(heads, config, features, rows, variant, order, np.zeros(len(rows)))
    return held_out_reference(heads, features, records, rows, variant, SERVING_REFERENCE)


def streamed(
    heads: EmotionHeads,
    config: TrainConfig,
    features: FeatureSet,
    rows: np.ndarray,
    variant: str,
    order: np.ndarray,
    streams: np.ndarray,
) -> Reference | None:
    """References of ``rows`` heard in ``order`` on ``streams`` by the daemon: one node-wide set of moments for
    population references, one per stream for speaker references."""
    if heads.audio.reference is None:
        return None
    if config.reference == "population":
        return streamed_references(features, rows, variant, order, np.zeros(len(rows)), config.population_horizon)
    return streamed_references(features, rows, variant, order, streams, config.max_reference)


def stream_cases(records: Sequence[Record], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """How the held-out clips reach the daemon, each case as (positions kept, order, stream ids):
    ``as_published`` every speaker a stream, all streams interleaved; ``neutral_70`` the same with clips
    dropped so that neutral is ``NEUTRAL_SHARE`` of them; ``one_emotion_streams`` each (speaker, emotion) a
    stream, played one after another (the caller who stays angry for the whole call)."""
    rng = np.random.default_rng(seed)
    n = len(records)
    speakers = {s: i for i, s in enumerate(sorted({r.utterance.speaker for r in records}))}
    by_speaker = np.array([speakers[r.utterance.speaker] for r in records])
    out = {"as_published": (np.arange(n), rng.permutation(n), by_speaker)}
    labels = np.array([r.label for r in records])
    if labels[0] < 0:
        return out
    neutral = np.flatnonzero(labels == EMOTIONS.index("neutral"))
    others = np.flatnonzero(labels != EMOTIONS.index("neutral"))
    wanted = min(others.size, round(neutral.size * (1 - NEUTRAL_SHARE) / NEUTRAL_SHARE))
    kept = np.sort(np.concatenate([neutral, rng.choice(others, size=wanted, replace=False)]))
    out["neutral_70"] = (kept, rng.permutation(kept.size), by_speaker[kept])
    groups: dict[tuple[int, int], list[int]] = {}
    for position, key in enumerate(zip(by_speaker.tolist(), labels.tolist(), strict=True)):
        groups.setdefault(key, []).append(position)
    keys = list(groups)
    order = np.concatenate([rng.permutation(groups[keys[g]]) for g in rng.permutation(len(keys))])
    streams = np.empty(n, dtype=np.int64)
    for g, key in enumerate(keys):
        streams[groups[key]] = g
    out["one_emotion_streams"] = (np.arange(n), order, streams)
    return out


def fixed_training_rows(corpus: Corpus) -> list[int]:
    """The fixed split's training rows: every speaker but the validation ones."""
    return corpus.rows(lambda u: u.speaker not in VALIDATION_SPEAKERS)


def speakers_of(corpus: Corpus, rows: Sequence[int]) -> list[str]:
    """The speakers of ``rows``, sorted: what a model's parts record it was trained on."""
    return sorted({corpus.utterances[r].speaker for r in rows})


def fixed_split(
    corpus: Corpus, config: TrainConfig, run_dir: Path | None = None
) -> tuple[EmotionHeads, EncoderTop | None, dict]:
    """Train on every non-validation speaker; score RAVDESS 17-20 and TESS YAF separately."""
    train = fixed_training_rows(corpus)
    tests = {
        "ravdess-17-20": corpus.rows(lambda u: u.corpus == "ravdess" and u.speaker in VALIDATION_SPEAKERS),
        "tess-YAF": corpus.rows(lambda u: u.speaker == "tess-YAF"),
    }
    heads, top = train_model(corpus, train, config, run_dir)
    return heads, top, _score(heads, top, corpus, config, tests)


def every_speaker(
    corpus: Corpus, config: TrainConfig, run_dir: Path | None = None
) -> tuple[EmotionHeads, EncoderTop | None, list[int]]:
    """The model to ship: the config the protocol measured on held-out speakers, trained once more on every
    speaker of the corpus (validation speakers included), since more voices generalise better; and its rows."""
    rows = list(range(len(corpus.utterances)))
    return *train_model(corpus, rows, config, run_dir), rows


def cross_validation(corpus: Corpus, config: TrainConfig) -> dict:
    """Five speaker folds over RAVDESS actors 01-20: per-fold figures and their mean and sd, and the SER
    temperature that calibrates the out-of-fold posteriors of actors 01-16 (17-20 stay out of it, since they
    are the fixed split's test speakers)."""
    folds = speaker_folds(corpus.utterances, n_folds=5, corpus="ravdess")
    results, logits, labels = [], [], []
    for fold in folds:
        held = set(fold)
        train = corpus.rows(lambda u, held=held: u.speaker not in held and u.speaker != "tess-YAF")
        test = corpus.rows(lambda u, held=held: u.speaker in held)
        heads, top = train_model(corpus, train, config)
        results.append(_score(heads, top, corpus, config, {"fold": test})["fold"])
        calibrate = np.array([r for r in test if corpus.utterances[r].speaker not in VALIDATION_SPEAKERS])
        if calibrate.size:
            features = _features(corpus, top, calibrate)
            for variant in EVALUATION_VARIANTS:
                for reference in calibration_references(
                    heads, config, features, corpus.records, calibrate, variant
                ):
                    logits.append(audio_outputs(heads, features.stats[variant][calibrate], reference)[1])
                    labels.append(np.array([corpus.records[r].label for r in calibrate]))
    summary = {}
    for variant in EVALUATION_VARIANTS:
        for metric in ("accuracy", "uar", "macro_f1"):
            values = np.array([r[variant]["ser"][metric] for r in results])
            summary[f"{variant}/{metric}"] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1))}
    temperature = fit_temperature(np.concatenate(logits), np.concatenate(labels))
    folds_out = [sorted(f) for f in folds]
    return {"folds": folds_out, "per_fold": results, "summary": summary, "temperature": temperature}


def calibration_references(
    heads: EmotionHeads,
    config: TrainConfig,
    features: FeatureSet,
    records: Sequence[Record],
    rows: np.ndarray,
    variant: str,
) -> list[Reference | None]:
    """The references calibration pools: speaker ones of every size in ``CALIBRATION_REFERENCES``, or for
    population references none and the streamed population (a fresh node and one in service)."""
    if config.reference == "population":
        return [None, published_reference(heads, config, features, records, rows, variant)]
    return [held_out_reference(heads, features, records, rows, variant, clips) for clips in CALIBRATION_REFERENCES]


def leave_one_corpus_out(corpus: Corpus, config: TrainConfig) -> dict:
    """Each corpus held out in turn, the model trained on every speaker of all the
    others: a categorical one scored over :data:`SHARED_CLASSES`, an arousal-level one by its three levels read
    from the arousal output; each clip alone (``ser``) and as the daemon would publish it (see
    :func:`stream_cases`; the normalising references built in that order, labels never used)."""
    shared = [EMOTIONS.index(e) for e in SHARED_CLASSES]
    out = {}
    for held in sorted({u.corpus for u in corpus.utterances}):
        train, test = held_out_split(corpus, held)
        arousal_only = all(u.arousal_only for u in corpus.utterances if u.corpus == held)
        if not train or test.size == 0:
            continue
        heads, top = train_model(corpus, train, config)
        if arousal_only and heads.audio.affect is None:
            continue
        features = _features(corpus, top, test)
        records = [corpus.records[r] for r in test]
        out[f"others->{held}"] = {}
        for variant in EVALUATION_VARIANTS:
            stats = features.stats[variant][test]
            scores = {"ser": held_out_scores(heads, stats, None, records, shared)}
            for name, (kept, order, streams) in stream_cases(records).items():
                reference = streamed(heads, config, features, test[kept], variant, order, streams)
                chosen = [records[k] for k in kept]
                scores[name] = held_out_scores(heads, stats[kept], reference, chosen, shared)
            out[f"others->{held}"][variant] = scores
    return out


def held_out_split(corpus: Corpus, held: str) -> tuple[list[int], np.ndarray]:
    """Leave-one-corpus-out's rows with corpus ``held`` out: every other corpus's for training, and ``held``'s
    clips it can be scored on (its arousal levels, or its categories among :data:`SHARED_CLASSES`)."""
    train = corpus.rows(lambda u: u.corpus != held)
    test = corpus.rows(lambda u: u.corpus == held and (u.arousal_only or u.emotion in SHARED_CLASSES))
    return train, np.array(test, dtype=int)


def held_out_scores(
    heads: EmotionHeads, stats: np.ndarray, reference, records: Sequence[Record], shared: Sequence[int]
) -> dict:
    """4-class metrics of categorical records, 3-level arousal metrics of arousal-only ones."""
    if records[0].label < 0:
        arousal = audio_arousal(heads, stats, reference)
        truth = np.array([AROUSAL_NAMES.index(r.utterance.emotion) for r in records])
        predicted = np.array([arousal_level(float(a)) for a in arousal])
        return classification_metrics(truth, predicted, len(AROUSAL_NAMES))
    logits = audio_outputs(heads, stats, reference)[1]
    labels = np.array([r.label for r in records])
    return classification_metrics(labels, restricted_predictions(logits, shared), len(EMOTIONS))


def ablation(corpus: Corpus, config: TrainConfig) -> dict:
    """Class-label prompts only versus prompt augmentation, on the fixed split (the paper's comparison)."""
    return {
        name: fixed_split(corpus, replace(config, prompt_augmentation=augment))[2]
        for name, augment in (("class_prompts_only", False), ("prompt_augmentation", True))
    }


def linear_probe_floor(corpus: Corpus, steps: int = 500) -> dict:
    """The floor to clear: logistic regression on the frozen encoder's last layer, mean+std pooled.

    Trained on every non-validation speaker, scored on RAVDESS actors 17-20, clean and telephone.
    """
    train = [r for r in fixed_training_rows(corpus) if corpus.records[r].label >= 0]
    test = corpus.rows(lambda u: u.corpus == "ravdess" and u.speaker in VALIDATION_SPEAKERS)
    x = torch.from_numpy(corpus.features.stats["clean"][:, -1].astype(np.float32))
    mean, sd = x[train].mean(0), x[train].std(0) + 1e-6
    labels = torch.tensor([r.label for r in corpus.records])
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], len(EMOTIONS))
    optimiser = torch.optim.LBFGS(probe.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe((x[train] - mean) / sd), labels[train])
        loss = loss + 1e-3 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    out = {}
    with torch.no_grad():
        for variant in EVALUATION_VARIANTS:
            features = torch.from_numpy(corpus.features.stats[variant][:, -1].astype(np.float32))
            predicted = probe((features[test] - mean) / sd).argmax(1).numpy()
            out[variant] = classification_metrics(labels[test].numpy(), predicted, len(EMOTIONS))
    return out
