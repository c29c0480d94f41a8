"""Where the arousal output puts each arousal level of a held-out arousal-level corpus (BAVED), clip alone and
as published: its rank correlation with the levels and the spread per level, against the fixed level bounds.

Usage: python benchmarks/arousal_spread.py [--data DIR ...] [--cache DIR] [--config TOML] [--threads N]
[--held-out baved]

Trains the config on every other corpus, as leave-one-corpus-out does, and reads the arousal of the held-out
clips; the categorical training corpora's means per emotion show the scale the output learnt.
"""

from __future__ import annotations

import argparse

import held_out
import numpy as np
from scipy.stats import spearmanr

from emoscribe.affect import AROUSAL_BOUNDS, AROUSAL_NAMES
from emoscribe.training.evaluate import audio_arousal
from emoscribe.training.experiment import held_out_split, stream_cases, streamed, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    held_out.add_arguments(parser)
    parser.add_argument("--held-out", default="baved", help="the arousal-level corpus to hold out")
    args = parser.parse_args()
    config, corpus = held_out.load(args)
    train, test = held_out_split(corpus, args.held_out)
    if test.size == 0 or not corpus.utterances[test[0]].arousal_only:
        parser.error(f"no arousal-level clips of corpus {args.held_out!r} were loaded")
    heads, _ = train_model(corpus, train, config)
    records = [corpus.records[r] for r in test]
    truth = np.array([AROUSAL_NAMES.index(r.utterance.emotion) for r in records])
    _, order, streams = stream_cases(records)["as_published"]
    stats = corpus.features.stats["clean"]
    print(f"{config.encoder}, {args.config}; level bounds {AROUSAL_BOUNDS}")
    for name, reference in (
        ("clip alone", None),
        ("as published", streamed(heads, config, corpus.features, test, "clean", order, streams)),
    ):
        values = audio_arousal(heads, stats[test], reference)
        print(f"{name}: Spearman rho with the level {spearmanr(values, truth).statistic:.2f}")
        for level, level_name in enumerate(AROUSAL_NAMES):
            v = values[truth == level]
            q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
            spread = f"q10 {q10:+.2f}  median {q50:+.2f}  q90 {q90:+.2f}"
            print(f"  {level_name:12s} n={v.size:5d} mean {v.mean():+.2f}  {spread}")
    categorical = np.array([r for r in train if corpus.records[r].label >= 0])
    values = audio_arousal(heads, stats[categorical])
    emotions = np.array([corpus.records[r].utterance.emotion for r in categorical])
    print("training corpora, clip alone, mean arousal by emotion:")
    for emotion in sorted(set(emotions)):
        print(f"  {emotion:12s} {values[emotions == emotion].mean():+.2f}")


if __name__ == "__main__":
    main()
