"""What the held-out-corpus diagnostics share: their options, and the config and corpus those name."""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

import torch

from emoscribe.training.experiment import Corpus, load_corpus
from emoscribe.training.train import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` (repeatable), ``--cache``, ``--config`` (default: the shipped tiny.en config), ``--threads``."""
    parser.add_argument("--data", type=Path, action="append", help="corpus folder; repeat for several")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--config", type=Path, default=Path("benchmarks/configs/population.toml"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: one per core)")


def load(args: argparse.Namespace) -> tuple[TrainConfig, Corpus]:
    """The config of ``--config`` and the corpus of ``--data`` (else ``$EMOSCRIBE_DATA``) under it."""
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    config = TrainConfig.from_mapping(tomllib.loads(args.config.read_text(encoding="utf-8")))
    data = args.data or [Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data"))]
    return config, load_corpus(data, config, args.cache)
