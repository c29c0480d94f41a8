r"""Training variants side by side on the model-selection protocol: fixed split and 5-fold speaker CV.

Usage: python benchmarks/train_variants.py [--data DIR] [--cache DIR] SETTINGS...

Each SETTINGS is TOML for ``TrainConfig`` (``emoscribe train --config`` takes the same keys), one variant per
argument, several keys one per line, e.g. ``$'speaker_normalisation = false\nunfreeze_layers = 1'``; ``""``
is the default (shipped) config. Each variant trains on the fixed split and on every CV fold and prints clean
and 8 kHz mu-law accuracy. Features come from the cache that ``emoscribe train`` builds (``runs/cache``).
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from pathlib import Path

import torch
from machine import describe_machine

from emoscribe.training.experiment import Corpus, cross_validation, fixed_split, load_corpus
from emoscribe.training.train import TrainConfig

HEADER = "RAVDESS 17-20 clean / mu-law   TESS YAF   5-fold CV clean / mu-law"


def score(corpus: Corpus, config: TrainConfig) -> str:
    """One row: fixed-split accuracies and the CV mean ± sd, in percent."""
    _, _, fixed = fixed_split(corpus, config)
    cv = cross_validation(corpus, config)["summary"]
    ravdess, tess = fixed["ravdess-17-20"], fixed["tess-YAF"]
    return (
        f"{100 * ravdess['clean']['ser']['accuracy']:5.1f} / {100 * ravdess['ulaw']['ser']['accuracy']:5.1f}   "
        f"{100 * tess['clean']['ser']['accuracy']:5.1f}   "
        f"{100 * cv['clean/accuracy']['mean']:5.1f} ± {100 * cv['clean/accuracy']['sd']:4.1f} / "
        f"{100 * cv['ulaw/accuracy']['mean']:5.1f} ± {100 * cv['ulaw/accuracy']['sd']:4.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data")))
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("settings", nargs="+", help='TOML settings per variant ("" = default)')
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {describe_machine()}; torch {torch.__version__}")
    print(f"{'variant':<32} {HEADER}")
    for settings in args.settings:
        config = TrainConfig.from_mapping(tomllib.loads(settings))
        corpus = load_corpus(args.data, config, args.cache)
        started = time.monotonic()
        row = score(corpus, config)
        shown = "; ".join(settings.splitlines()) or "default"
        print(f"{shown:<32} {row}   ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
