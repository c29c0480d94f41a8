"""Leave-one-corpus-out on cached frozen-encoder statistics: what population normalisation is worth, as the
daemon would apply it.

Each corpus (RAVDESS, TESS, ASED; BAVED for arousal) is held out in turn. A balanced logistic regression over
the frozen tower's per-layer statistics (corpus x speaker sample weights) is trained on the other corpora's
clips of the four shared emotions, and scored on the held-out corpus, clean and through 8 kHz mu-law:

- ``clip alone``: standardised by the training population's moments (what a node knows before it hears
  anything);
- ``population, batch``: standardised by the held-out corpus's own moments (every clip known in advance: the
  probe of issue #13);
- ``population, streaming``: as the daemon's ``[population]`` does: the held-out clips heard one by one in a
  seeded order of its streams (a random interleaving of every clip), each judged against the running moments of
  everything heard before it (``RunningMoments``, the daemon's own, shrunk toward the training priors by
  ``PRIOR_CLIPS`` utterances as ``speaker.onnx`` does), labels never used;
- the same with a realistic unbalanced stream, 70 % neutral;
- one-emotion streams (RAVDESS and ASED held out): every (speaker, emotion) group as one stream, played one after
  another in a seeded order; population-normalised and speaker-normalised (the stream's own earlier clips,
  what ``speaker.onnx`` does per stream today) against the clip alone.

With population normalisation the training corpora are each standardised by their own moments too, so the model
learns departures from a corpus's population. BAVED (arousal levels only) is scored by a ridge regression of
circumplex arousal (``emoscribe.affect``) trained on the categorical corpora, read as three levels; valence and
arousal are also correlated with the mapped values of each held-out categorical corpus. ``--prosody`` adds the
Praat cues (``emoscribe.cues``) as a second input branch beside the encoder statistics.

    python benchmarks/loco.py --data ../shared/data --data ../shared/data/ased --data ../shared/data/baved \
        --cache /work/cache-models --json benchmarks/results/loco-tiny.en.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from emoscribe.affect import AROUSAL_NAMES, CIRCUMPLEX, arousal_level
from emoscribe.daemon.speaker_reference import RunningMoments
from emoscribe.datasets import Utterance, from_manifests
from emoscribe.training.metrics import classification_metrics
from emoscribe.training.records import SHARED_CLASSES
from emoscribe.training.sampling import corpus_speaker_weights

CATEGORICAL = ("ravdess", "tess", "ased")
ONE_EMOTION = ("ravdess", "ased")
PRIOR_CLIPS = 8.0
"""Weight of the training priors in a reference, in utterances (the shipped heads' ``prior_clips``)."""
HORIZON = 5000
"""The daemon's default ``[population] horizon``."""
SPEAKER_HORIZON = 20
"""The shipped bundles' speaker horizon."""
NEUTRAL_SHARE = 0.7
CUE_FIELDS = (
    "f0_median_st",
    "f0_sd_st",
    "f0_range_st",
    "intensity_mean_db",
    "intensity_sd_db",
    "intensity_range_db",
    "speech_rate",
    "articulation_rate",
    "pause_ratio",
    "voiced_fraction",
    "jitter_local",
    "shimmer_local",
    "hnr_db",
    "alpha_ratio_db",
    "hammarberg_db",
    "slope_0_500_db_per_khz",
    "slope_500_1500_db_per_khz",
    "f1_mean_hz",
)
"""The prosody branch: Praat cues of pitch (in semitones), energy, rate, voice quality and spectrum."""


def load_features(
    utterances: Sequence[Utterance], encoder: str, cache: Path, variant: str, prosody: bool
) -> dict[str, np.ndarray]:
    """Flattened per-layer statistics of each corpus's clips (cached per clip list; encoded where missing),
    with the Praat cues appended where ``prosody``."""
    from emoscribe.training.ct2 import find_packaged_whisper
    from emoscribe.training.features import cached_features
    from emoscribe.training.records import cached_cues
    from emoscribe.training.whisper import LogMel, load_ct2_encoder

    model = load_ct2_encoder(find_packaged_whisper(encoder))
    logmel = LogMel(model.config.n_mels)
    out = {}
    for corpus, members in by_corpus(utterances).items():
        stats = cached_features(members, encoder, logmel, model, cache, (variant,)).stats[variant]
        x = stats.reshape(len(members), -1).astype(np.float32)
        if prosody:
            cues = cached_cues(members, cache)
            table = np.array(
                [[np.nan if getattr(c, f) is None else getattr(c, f) for f in CUE_FIELDS] for c in cues],
                dtype=np.float32,
            )
            x = np.concatenate([x, table], axis=1)
        out[corpus] = x
    return out


def by_corpus(utterances: Sequence[Utterance]) -> dict[str, list[Utterance]]:
    groups: dict[str, list[Utterance]] = defaultdict(list)
    for u in utterances:
        groups[u.corpus].append(u)
    return dict(groups)


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance, ignoring missing cues (NaN)."""
    return np.nanmean(x, axis=0), np.nanvar(x, axis=0) + 1e-6


BRANCH_SCALE: np.ndarray | float = 1.0
"""Multiplies the standardised columns so that, with ``--prosody``, the cue branch weighs as much in the L2
penalty as the thousands of statistics columns (set in :func:`run`)."""


def standardise(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return np.nan_to_num((x - mean) / np.sqrt(var + 1e-6)) * BRANCH_SCALE


def streamed(x: np.ndarray, order: np.ndarray, prior: tuple[np.ndarray, np.ndarray], horizon: int) -> np.ndarray:
    """Rows judged in ``order`` against the running moments of the rows before them, shrunk toward ``prior``
    by ``PRIOR_CLIPS`` (as ``speaker.onnx`` mixes a reference with its priors); the rows back in their places."""
    running = RunningMoments(x.shape[1:], horizon)
    out = np.empty_like(x)
    prior_mean, prior_var = prior
    for row in order:
        n = running.count
        mean = (n * running.mean + PRIOR_CLIPS * prior_mean) / (n + PRIOR_CLIPS)
        var = (n * running.var + PRIOR_CLIPS * prior_var) / (n + PRIOR_CLIPS)
        out[row] = standardise(x[row], mean, var)
        running.update(np.where(np.isnan(x[row]), mean, x[row]).astype(np.float32))  # a missing cue moves nothing
    return out


def interleaved(n: int, seed: int) -> np.ndarray:
    """A seeded order of ``n`` clips: the node's streams interleaved."""
    return np.random.default_rng(seed).permutation(n)


def neutral_mix(labels: np.ndarray, neutral: int, seed: int) -> np.ndarray:
    """Rows of a stream 70 % neutral: every neutral clip, and the other classes equally, subsampled."""
    rng = np.random.default_rng(seed)
    keep = list(np.flatnonzero(labels == neutral))
    others = [c for c in np.unique(labels) if c != neutral]
    per_class = round(len(keep) * (1 - NEUTRAL_SHARE) / NEUTRAL_SHARE / len(others))
    for c in others:
        rows = np.flatnonzero(labels == c)
        keep += list(rng.choice(rows, size=min(per_class, rows.size), replace=False))
    return rng.permutation(np.array(keep))


def one_emotion_streams(members: Sequence[Utterance], rows: np.ndarray, seed: int) -> list[np.ndarray]:
    """Every (speaker, emotion) group among ``rows`` as one stream, the streams in a seeded order, each
    stream's clips in a seeded order."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        groups[(members[r].speaker, members[r].emotion)].append(int(r))
    rng = np.random.default_rng(seed)
    keys = sorted(groups)
    return [rng.permutation(np.array(groups[keys[i]])) for i in rng.permutation(len(keys))]


def fit_classifier(x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float) -> LogisticRegression:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=300)
    return model.fit(x, y, sample_weight=weights * len(weights))


def score(model: LogisticRegression, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return classification_metrics(y, model.predict(x), len(SHARED_CLASSES))


def run(args: argparse.Namespace) -> dict:
    global BRANCH_SCALE
    utterances = from_manifests(args.data)
    groups = by_corpus(utterances)
    channels = args.channels.split(",")
    variants = {v: load_features(utterances, args.encoder, args.cache, v, args.prosody) for v in channels}
    if args.prosody:
        width = next(iter(variants["clean"].values())).shape[1]
        BRANCH_SCALE = np.ones(width, dtype=np.float32)
        BRANCH_SCALE[-len(CUE_FIELDS) :] = np.sqrt((width - len(CUE_FIELDS)) / len(CUE_FIELDS))
    shared = {e: i for i, e in enumerate(SHARED_CLASSES)}
    results: dict = {"held_out": {}, "arousal": {}}
    for held in [c for c in CATEGORICAL if c in groups]:
        train = [c for c in CATEGORICAL if c in groups and c != held]
        started = time.perf_counter()
        x_parts, y_parts, corpus_of, speaker_of, own = [], [], [], [], []
        for corpus in train:
            rows = np.array([i for i, u in enumerate(groups[corpus]) if u.emotion in shared])
            for variant in channels:
                x = variants[variant][corpus]
                own.append(standardise(x[rows], *moments(x)))
                x_parts.append(x[rows])
                y_parts.append(np.array([shared[groups[corpus][r].emotion] for r in rows]))
                corpus_of += [corpus] * len(rows)
                speaker_of += [groups[corpus][r].speaker for r in rows]
        x_train, y_train = np.concatenate(x_parts), np.concatenate(y_parts)
        weights = corpus_speaker_weights(corpus_of, speaker_of)
        prior = moments(x_train)
        global_model = fit_classifier(standardise(x_train, *prior), y_train, weights, args.c)
        population_model = fit_classifier(np.concatenate(own), y_train, weights, args.c)
        members = groups[held]
        test = np.array([i for i, u in enumerate(members) if u.emotion in shared])
        y = np.array([shared[members[r].emotion] for r in test])
        figures: dict = {}
        for variant in channels:
            x = variants[variant][held]
            order = interleaved(len(members), args.seed)
            live = streamed(x, order, prior, HORIZON)
            mix = test[neutral_mix(y, shared["neutral"], args.seed)]
            mix_live = streamed(x[mix], np.arange(len(mix)), prior, HORIZON)
            y_mix = np.array([shared[members[r].emotion] for r in mix])
            figures[variant] = {
                "clip alone (training moments)": score(global_model, standardise(x[test], *prior), y),
                "population model, clip alone (priors)": score(population_model, standardise(x[test], *prior), y),
                "population, batch (corpus's own moments)": score(
                    population_model, standardise(x, *moments(x))[test], y
                ),
                "population, streaming": score(population_model, live[test], y),
                "clip alone, 70 % neutral": score(global_model, standardise(x[mix], *prior), y_mix),
                "population, streaming, 70 % neutral": score(population_model, mix_live, y_mix),
            }
            if held in ONE_EMOTION:
                figures[variant]["one-emotion streams"] = one_emotion(
                    members, x, test, y, prior, global_model, population_model, args.seed
                )
        figures["train_corpora"] = train
        figures["train_rows"] = len(y_train)
        figures["test_rows"] = len(test)
        figures["seconds"] = round(time.perf_counter() - started, 1)
        results["held_out"][held] = figures
        print(held, json.dumps(figures, indent=1), flush=True)
    results["arousal"] = affect_figures(groups, variants, args.seed)
    return results


def one_emotion(members, x, test, y, prior, global_model, population_model, seed: int) -> dict:
    """Clip alone, population-normalised (the node's moments adapting over every stream in turn) and
    speaker-normalised (each stream against its own earlier clips) on one-emotion streams."""
    streams = one_emotion_streams(members, test, seed)
    position = {int(r): i for i, r in enumerate(test)}
    order = np.concatenate(streams)
    population = streamed(x, order, prior, HORIZON)
    speaker = np.empty_like(x)
    for stream in streams:
        judged = streamed(x[stream], np.arange(len(stream)), prior, SPEAKER_HORIZON)
        speaker[stream] = judged
    rows = np.array([position[int(r)] for r in order])
    truth = y[rows]
    return {
        "streams": len(streams),
        "clip alone": classification_metrics(truth, global_model.predict(standardise(x[order], *prior)), 4),
        "population, streaming (as published)": classification_metrics(
            truth, population_model.predict(population[order]), 4
        ),
        "speaker-normalised per stream": classification_metrics(
            truth, population_model.predict(speaker[order]), 4
        ),
    }


def affect_figures(groups: dict[str, list[Utterance]], variants: dict, seed: int) -> dict:
    """BAVED's three arousal levels from a circumplex-arousal ridge regression trained on the categorical
    corpora (population-normalised, streamed like the daemon), and the correlation of predicted valence and
    arousal with the mapped values of each categorical corpus held out."""
    out: dict = {}
    for held in [c for c in (*CATEGORICAL, "baved") if c in groups]:
        train = [c for c in CATEGORICAL if c in groups and c != held]
        x_train = np.concatenate(
            [standardise(variants["clean"][c], *moments(variants["clean"][c])) for c in train]
        )
        targets = np.array([CIRCUMPLEX[u.emotion] for c in train for u in groups[c]])
        raw = np.concatenate([variants["clean"][c] for c in train])
        prior = moments(raw)
        weights = corpus_speaker_weights(
            [u.corpus for c in train for u in groups[c]], [u.speaker for c in train for u in groups[c]]
        )
        model = Ridge(alpha=1000.0).fit(x_train, targets, sample_weight=weights * len(weights))
        members = groups[held]
        figures = {}
        for variant in variants:
            x = variants[variant][held]
            live = streamed(x, interleaved(len(members), seed), prior, HORIZON)
            for name, judged in (("clip alone", standardise(x, *prior)), ("population, streaming", live)):
                valence, arousal = np.clip(model.predict(judged), -1, 1).T
                if held == "baved":
                    truth = np.array([AROUSAL_NAMES.index(u.emotion) for u in members])
                    levels = np.array([arousal_level(float(a)) for a in arousal])
                    figures[f"{variant}/{name}/3-level arousal"] = classification_metrics(truth, levels, 3)
                    figures[f"{variant}/{name}/pearson with level"] = float(np.corrcoef(arousal, truth)[0, 1])
                else:
                    mapped = np.array([CIRCUMPLEX[u.emotion] for u in members])
                    figures[f"{variant}/{name}/pearson"] = {
                        "valence": float(np.corrcoef(valence, mapped[:, 0])[0, 1]),
                        "arousal": float(np.corrcoef(arousal, mapped[:, 1])[0, 1]),
                    }
        out[held] = figures
        print(held, "affect", json.dumps(figures), flush=True)
    return out


def markdown(results: dict) -> str:
    """The tables of RESULTS.md: 4-class UAR / accuracy per held-out corpus and condition, then the affect
    figures."""
    held = results["held_out"]
    channels = [k for k in next(iter(held.values())) if isinstance(next(iter(held.values()))[k], dict)]
    lines = ["| held out | channel | condition | UAR | accuracy | n |", "| --- | --- | --- | --- | --- | --- |"]
    for corpus, figures in held.items():
        for channel in channels:
            for condition, value in figures[channel].items():
                rows = value.items() if condition == "one-emotion streams" else [(None, value)]
                for name, m in rows:
                    if not isinstance(m, dict):
                        continue
                    label = condition if name is None else f"one-emotion streams: {name}"
                    cells = [corpus, channel, label, f"{100 * m['uar']:.1f} %", f"{100 * m['accuracy']:.1f} %"]
                    lines.append("| " + " | ".join([*cells, str(m["n"])]) + " |")
    lines += ["", "| held out | figure | value |", "| --- | --- | --- |"]
    for corpus, figures in results["arousal"].items():
        for name, value in figures.items():
            if isinstance(value, dict) and "uar" in value:
                shown = f"UAR {100 * value['uar']:.1f} %, accuracy {100 * value['accuracy']:.1f} %"
            elif isinstance(value, dict):
                shown = ", ".join(f"{k} r = {v:.2f}" for k, v in value.items())
            else:
                shown = f"r = {value:.2f}"
            lines.append(f"| {corpus} | {name} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, action="append", default=[], help="corpus folder (repeat)")
    parser.add_argument("--encoder", default="tiny.en")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--c", type=float, default=0.05, help="inverse L2 strength of the logistic regression")
    parser.add_argument("--prosody", action="store_true", help="append the Praat cues to the statistics")
    parser.add_argument("--channels", default="clean,ulaw", help="channel variants: trained on all, each scored")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path, help="only print the tables of an earlier --json file")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text(encoding="utf-8"))))
        return
    started = time.perf_counter()
    results = run(args)
    results |= {
        "command": shlex.join(["python", *sys.argv]),
        "machine": f"{platform.machine()} {os.cpu_count()} cores (shared), {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
