"""Fusing the clip-alone and the population-referenced judgements, measured leave-one-corpus-out.

Usage: python benchmarks/fusion_loco.py [--data DIR ...] [--cache DIR] [--config TOML] [--weights 0,0.25,...]
[--json FILE]

One of the ideas of issue 13 to measure rather than assume: the population reference carries a model to
another corpus, the clip alone keeps what the training corpora taught; a weighted mean of their log-posteriors
(weight = the population's share; 1 is what the daemon publishes, 0 the clip alone) might keep the best of
both. Each categorical corpus is held out in turn, the config trained on all the others, and the held-out clips
streamed as the daemon would (``experiment.stream_cases``); 4-class UAR, clean and 8 kHz mu-law.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tomllib
from pathlib import Path

import numpy as np
import torch

from emoscribe.training.experiment import (
    EVALUATION_VARIANTS,
    load_corpus,
    stream_cases,
    streamed,
    train_model,
)
from emoscribe.training.heads import EmotionHeads, Reference
from emoscribe.training.metrics import classification_metrics, restricted_predictions
from emoscribe.training.records import EMOTIONS, SHARED_CLASSES
from emoscribe.training.train import TrainConfig


@torch.inference_mode()
def log_posteriors(heads: EmotionHeads, stats: np.ndarray, reference: Reference | None) -> np.ndarray:
    """Log-softmax of the emotion logits of each row judged against ``reference``."""
    hidden = heads.audio.hidden(torch.from_numpy(stats.astype(np.float32)), reference)
    return torch.log_softmax(heads.audio.read(hidden)[1], dim=1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="corpus folder (repeat)")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--config", type=Path, default=Path("benchmarks/configs/population.toml"))
    parser.add_argument("--weights", default="0,0.25,0.5,0.75,1", help="population shares to score")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads or 1)
    weights = [float(w) for w in args.weights.split(",")]
    config = TrainConfig.from_mapping(tomllib.loads(args.config.read_text(encoding="utf-8")))
    corpus = load_corpus(args.data or [Path("../shared/data")], config, args.cache)
    shared = [EMOTIONS.index(e) for e in SHARED_CLASSES]
    record: dict = {"command": shlex.join(["python", *sys.argv]), "config": str(args.config), "uar": {}}
    for held in sorted({u.corpus for u in corpus.utterances if not u.arousal_only}):
        train = corpus.rows(lambda u, h=held: u.corpus != h)
        test = np.array(corpus.rows(lambda u, h=held: u.corpus == h and u.emotion in SHARED_CLASSES))
        heads, _ = train_model(corpus, train, config)
        records = [corpus.records[r] for r in test]
        labels = np.array([r.label for r in records])
        for variant in EVALUATION_VARIANTS:
            stats = corpus.features.stats[variant][test]
            alone = log_posteriors(heads, stats, None)
            for case, (kept, order, streams) in stream_cases(records).items():
                reference = streamed(heads, config, corpus.features, test[kept], variant, order, streams)
                population = log_posteriors(heads, stats[kept], reference)
                scores = {}
                for w in weights:
                    fused = w * population + (1 - w) * alone[kept]
                    predicted = restricted_predictions(fused, shared)
                    scores[w] = classification_metrics(labels[kept], predicted, len(EMOTIONS))["uar"]
                record["uar"][f"{held}/{variant}/{case}"] = scores
                shown = "  ".join(f"w={w:g} {100 * u:5.1f}" for w, u in scores.items())
                print(f"{held:8s} {variant:5s} {case:20s} {shown}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
