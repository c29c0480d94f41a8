"""What per-speaker normalisation of the pooled encoder statistics would buy, before the daemon can serve it.

Usage: python benchmarks/speaker_normalisation.py [--data DIR] [--encoder tiny.en] [--reference 0,10]

Each clip's per-layer statistics are standardised by the mean and standard deviation of statistics of the same
speaker, then the heads are trained and scored with the usual protocol (fixed split and 5-fold speaker CV, clean
and 8 kHz mu-law). ``--reference 0`` uses all of the speaker's clips (an oracle: RAVDESS speakers read every
emotion equally often, which a real call does not); ``--reference K`` uses K other clips of the speaker drawn at
random, about what a daemon would know after K utterances of a call. Features come from ``runs/cache`` (built
by ``emoscribe train``).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine
from train_variants import HEADER, score

from emoscribe.training.experiment import Corpus, load_corpus
from emoscribe.training.features import FeatureSet
from emoscribe.training.train import TrainConfig


def speaker_normalised(corpus: Corpus, reference: int, seed: int = 0) -> FeatureSet:
    """The corpus' statistics, each standardised by ``reference`` other clips of its speaker (0: all of them)."""
    speakers = np.array([u.speaker for u in corpus.utterances])
    rng = np.random.default_rng(seed)
    stats = {}
    for variant, values in corpus.features.stats.items():
        values = values.astype(np.float32)
        out = np.empty_like(values)
        for speaker in np.unique(speakers):
            rows = np.flatnonzero(speakers == speaker)
            if reference == 0:
                out[rows] = (values[rows] - values[rows].mean(0)) / (values[rows].std(0) + 1e-3)
                continue
            for row in rows:
                chosen = values[rng.choice(rows[rows != row], size=reference, replace=False)]
                out[row] = (values[row] - chosen.mean(0)) / (chosen.std(0) + 1e-3)
        stats[variant] = out
    return FeatureSet(encoder=corpus.features.encoder, stats=stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data")))
    parser.add_argument("--encoder", default="tiny.en")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--reference", default="0,10", help="clips per speaker to normalise by (0 = all)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    config = TrainConfig(encoder=args.encoder)
    corpus = load_corpus(args.data, config, args.cache)
    print(f"machine: {describe_machine()}; torch {torch.__version__}; encoder {args.encoder} (frozen)")
    print(f"{'normalisation':<24} {HEADER}")
    rows = [("none", corpus)]
    rows += [
        (f"speaker, {k or 'all'} clips", replace(corpus, features=speaker_normalised(corpus, k)))
        for k in (int(x) for x in args.reference.split(","))
    ]
    for name, variant in rows:
        started = time.monotonic()
        print(f"{name:<24} {score(variant, config)}   ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
