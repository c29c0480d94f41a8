r"""Training variants side by side on the model-selection protocol: 5-fold speaker CV, leave-one-corpus-out and
the fixed split.

Usage: python benchmarks/train_variants.py [--data DIR ...] [--cache DIR] [--protocol cv,loco,fixed]
[--json FILE] SETTINGS...

Each SETTINGS is TOML for ``TrainConfig`` (``emoscribe train --config`` takes the same keys), one variant per
argument, several keys one per line, e.g. ``$'reference = "population"\nepochs = 40'``; ``""`` is ``TrainConfig``'s
defaults (the shipped parts' configs are ``benchmarks/configs/*.toml``). Each variant prints, clean / 8 kHz mu-law:

- ``cv``: RAVDESS 8-class accuracy over five speaker folds (every other corpus always in training), as
  published (the daemon's reference: ``experiment.published_reference``);
- ``loco``: each corpus held out in turn, trained on all the others: 4-class UAR clip alone, as published
  (speakers' streams interleaved), with 70 % neutral, and as one-emotion streams; BAVED by 3-level arousal UAR;
- ``fixed``: RAVDESS 17-20 and TESS YAF accuracy.

Features come from the per-corpus cache that ``emoscribe train`` builds (``runs/cache``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import tomllib
from dataclasses import asdict
from pathlib import Path

import torch
from machine import describe_machine

from emoscribe.training.experiment import Corpus, cross_validation, fixed_split, leave_one_corpus_out, load_corpus
from emoscribe.training.train import TrainConfig

PROTOCOLS = ("cv", "loco", "fixed")


def percent(metrics: dict, key: str) -> str:
    return f"{100 * metrics[key]:5.1f}"


def run(corpus: Corpus, config: TrainConfig, protocols: list[str]) -> tuple[dict, list[str]]:
    """The chosen protocols' results and their printed lines."""
    results: dict = {}
    lines: list[str] = []
    if "cv" in protocols:
        summary = cross_validation(corpus, config)["summary"]
        results["cross_validation"] = summary
        lines.append(
            "  RAVDESS 8-class 5-fold CV accuracy, as published: "
            + " / ".join(
                f"{100 * summary[f'{v}/accuracy']['mean']:.1f} ± {100 * summary[f'{v}/accuracy']['sd']:.1f}"
                for v in ("clean", "ulaw")
            )
        )
    if "loco" in protocols:
        loco = leave_one_corpus_out(corpus, config)
        results["leave_one_corpus_out"] = loco
        for held, by_variant in loco.items():
            cases = list(by_variant["clean"])
            figures = "   ".join(
                f"{case} {percent(by_variant['clean'][case], 'uar')} / {percent(by_variant['ulaw'][case], 'uar')}"
                for case in cases
            )
            lines.append(f"  LOCO {held} UAR: {figures}")
    if "fixed" in protocols:
        _, _, fixed = fixed_split(corpus, config)
        results["fixed_split"] = {name: {v: f[v]["ser"] for v in f} for name, f in fixed.items()}
        for name, by_variant in fixed.items():
            lines.append(
                f"  fixed split {name} accuracy: {percent(by_variant['clean']['ser'], 'accuracy')} / "
                f"{percent(by_variant['ulaw']['ser'], 'accuracy')}"
            )
    return results, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="corpus folder; repeat for several")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--protocol", default="cv,loco", help=f"comma-separated, of {', '.join(PROTOCOLS)}")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: one per core)")
    parser.add_argument("settings", nargs="+", help='TOML settings per variant ("" = default)')
    args = parser.parse_args()
    protocols = args.protocol.split(",")
    if unknown := set(protocols) - set(PROTOCOLS):
        parser.error(f"unknown protocol(s) {', '.join(sorted(unknown))}; choose of {', '.join(PROTOCOLS)}")
    data = args.data or [Path(os.environ.get("EMOSCRIBE_DATA", "../shared/data"))]
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    machine = f"{describe_machine()}; torch {torch.__version__}"
    print(f"machine: {machine}")
    record = {"command": shlex.join(["python", *sys.argv]), "machine": machine, "variants": []}
    for settings in args.settings:
        config = TrainConfig.from_mapping(tomllib.loads(settings))
        corpus = load_corpus(data, config, args.cache)
        started = time.monotonic()
        results, lines = run(corpus, config, protocols)
        shown = "; ".join(settings.splitlines()) or "default"
        print(f"{shown} ({time.monotonic() - started:.0f} s)", *lines, sep="\n", flush=True)
        record["variants"].append({"settings": settings, "config": asdict(config), **results})
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
