"""Does SER on unseen speakers still improve with more training voices? The case for shipping parts trained on
every speaker.

Usage: python benchmarks/speaker_count.py [--data DIR] [--cache DIR] [--actors N ...]

For each of the five speaker folds over RAVDESS actors 01-20, trains the shipped config on N of the 16 other
actors (half of each sex, drawn with a seeded generator) plus TESS OAF, and scores the fold's four actors
(clean, knowing 10 other clips of the speaker, as the headline figures). N = 16 is the protocol's own CV.
Features come from ``runs/cache``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine

from emoscribe.datasets import speaker_folds
from emoscribe.training.evaluate import evaluate
from emoscribe.training.experiment import load_corpus, published_reference, train_model
from emoscribe.training.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data")))
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--actors", type=int, nargs="+", default=[8, 16], help="even numbers of RAVDESS actors")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    config = TrainConfig()
    corpus = load_corpus(args.data, config, args.cache)
    sex = {u.speaker: u.sex for u in corpus.utterances}
    folds = speaker_folds(corpus.utterances, n_folds=5, corpus="ravdess")
    print(f"machine: {describe_machine()}; torch {torch.__version__}")
    for n in args.actors:
        started, accuracies = time.monotonic(), []
        for index, fold in enumerate(folds):
            others = sorted({s for s in sex if s.startswith("ravdess-")} - fold)
            rng = np.random.default_rng([n, index])
            chosen = set()
            for group in ("male", "female"):
                voices = [s for s in others if sex[s] == group]
                chosen |= set(rng.choice(voices, size=n // 2, replace=False).tolist())
            train = corpus.rows(lambda u, keep=chosen: u.speaker in keep or u.speaker == "tess-OAF")
            test = corpus.rows(lambda u, held=fold: u.speaker in held)
            heads, _ = train_model(corpus, train, config)
            reference = published_reference(
                heads, config, corpus.features, corpus.records, np.asarray(test), "clean"
            )
            report = evaluate(heads, corpus.features, corpus.bank, corpus.records, test, "clean", reference)
            accuracies.append(100 * report["ser"]["accuracy"])
        values = np.array(accuracies)
        print(
            f"{n:2d} RAVDESS actors + TESS OAF: {values.mean():5.1f} % ± {values.std(ddof=1):4.1f} "
            f"(folds {', '.join(f'{v:.1f}' for v in values)}; {time.monotonic() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
