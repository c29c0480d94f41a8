"""Speaker normalisation as served: SER by how many earlier utterances of the speaker the model knows.

Usage: python benchmarks/speaker_normalisation.py [--data DIR] [--cache DIR] [SETTINGS...]

Each SETTINGS is TOML for ``TrainConfig`` on top of ``speaker_normalisation = true`` (default: none, i.e. the
shipped settings), e.g. ``"prior_clips = 0.5"`` (several keys: one per line). Each trains on the fixed split
and on the five speaker folds and prints, for references of 0 to 20 other clips of the speaker (drawn at random
from the held-out clips, through the same channel) and for 8 clips of one emotion (a call whose earlier
utterances were all alike), the accuracy on RAVDESS 17-20 and the 5-fold CV mean ± sd, clean and 8 kHz mu-law.
Features come from ``runs/cache``.
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine

from emoscribe.training.experiment import cross_validation, fixed_split, load_corpus
from emoscribe.training.train import TrainConfig


def curve_rows(fixed: dict, folds: list[dict]) -> list[str]:
    """One line per reference case: fixed split clean / mu-law, CV mean ± sd clean / mu-law (percent)."""
    ravdess = fixed["ravdess-17-20"]
    lines = []
    for case in ravdess["clean"]["ser_by_reference"]:
        cells = [f"{100 * ravdess[v]['ser_by_reference'][case]['accuracy']:5.1f}" for v in ("clean", "ulaw")]
        for variant in ("clean", "ulaw"):
            values = 100 * np.array([f[variant]["ser_by_reference"][case]["accuracy"] for f in folds])
            cells.append(f"{values.mean():5.1f} ± {values.std(ddof=1):4.1f}")
        lines.append(f"  {case:<26} {cells[0]} / {cells[1]}        {cells[2]} / {cells[3]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data")))
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("settings", nargs="*", default=[""], help="TOML settings per variant")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {describe_machine()}; torch {torch.__version__}")
    for settings in args.settings:
        config = TrainConfig.from_mapping({"speaker_normalisation": True, **tomllib.loads(settings)})
        corpus = load_corpus(args.data, config, args.cache)
        started = time.monotonic()
        fixed = fixed_split(corpus, config)[2]
        folds = cross_validation(corpus, config)["per_fold"]
        shown = "; ".join(["speaker_normalisation = true", *filter(None, settings.splitlines())])
        print(f"\n{config.encoder}, {shown}  ({time.monotonic() - started:.0f} s)")
        print(f"  {'reference':<26} RAVDESS 17-20 clean / mu-law   5-fold CV clean / mu-law")
        print("\n".join(curve_rows(fixed, folds)), flush=True)


if __name__ == "__main__":
    main()
