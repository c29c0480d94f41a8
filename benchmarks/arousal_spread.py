"""Where the arousal output puts each arousal level of a held-out arousal-level corpus (BAVED), clip alone and
as published: its rank correlation with the levels and the spread per level, against the fixed level bounds.

Usage: python benchmarks/arousal_spread.py [--data DIR ...] [--cache DIR] [--config TOML] [--held-out baved]

Trains the config on every other corpus, as leave-one-corpus-out does, and reads the arousal of the held-out
clips; the categorical training corpora's means per emotion show the scale the output learnt.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from emoscribe.affect import AROUSAL_BOUNDS, AROUSAL_NAMES
from emoscribe.training.experiment import load_corpus, stream_cases, streamed, train_model
from emoscribe.training.heads import EmotionHeads, Reference
from emoscribe.training.train import TrainConfig


@torch.inference_mode()
def arousal(heads: EmotionHeads, stats: np.ndarray, reference: Reference | None) -> np.ndarray:
    """The arousal output of each row of ``stats`` judged against ``reference``."""
    hidden = heads.audio.hidden(torch.from_numpy(stats.astype(np.float32)), reference)
    return heads.audio.affect_outputs(hidden)[0][:, 1].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="corpus folder (repeat)")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--config", type=Path, default=Path("benchmarks/configs/population.toml"))
    parser.add_argument("--held-out", default="baved")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads or 1)
    config = TrainConfig.from_mapping(tomllib.loads(args.config.read_text(encoding="utf-8")))
    corpus = load_corpus(args.data or [Path("../shared/data")], config, args.cache)
    train = corpus.rows(lambda u: u.corpus != args.held_out)
    test = np.array(corpus.rows(lambda u: u.corpus == args.held_out and u.arousal_only))
    if test.size == 0:
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
        values = arousal(heads, stats[test], reference)
        print(f"{name}: Spearman rho with the level {spearmanr(values, truth).statistic:.2f}")
        for level, level_name in enumerate(AROUSAL_NAMES):
            v = values[truth == level]
            q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
            spread = f"q10 {q10:+.2f}  median {q50:+.2f}  q90 {q90:+.2f}"
            print(f"  {level_name:12s} n={v.size:5d} mean {v.mean():+.2f}  {spread}")
    categorical = np.array([r for r in train if corpus.records[r].label >= 0])
    values = arousal(heads, stats[categorical], None)
    emotions = np.array([corpus.records[r].utterance.emotion for r in categorical])
    print("training corpora, clip alone, mean arousal by emotion:")
    for emotion in sorted(set(emotions)):
        print(f"  {emotion:12s} {values[emotions == emotion].mean():+.2f}")


if __name__ == "__main__":
    main()
