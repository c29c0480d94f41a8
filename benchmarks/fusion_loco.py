"""Fusing the clip-alone and the population-referenced judgements, measured leave-one-corpus-out.

Usage: python benchmarks/fusion_loco.py [--data DIR ...] [--cache DIR] [--config TOML] [--weights 0,0.25,...]
[--threads N] [--json FILE]

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
from pathlib import Path

import held_out
import numpy as np
from scipy.special import log_softmax

from emoscribe.training.evaluate import audio_outputs
from emoscribe.training.experiment import EVALUATION_VARIANTS, held_out_split, stream_cases, streamed, train_model
from emoscribe.training.metrics import classification_metrics, restricted_predictions
from emoscribe.training.records import EMOTIONS, SHARED_CLASSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    held_out.add_arguments(parser)
    parser.add_argument("--weights", default="0,0.25,0.5,0.75,1", help="population shares to score")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    config, corpus = held_out.load(args)
    shared = [EMOTIONS.index(e) for e in SHARED_CLASSES]
    record: dict = {"command": shlex.join(["python", *sys.argv]), "config": str(args.config), "uar": {}}
    for held in sorted({u.corpus for u in corpus.utterances if not u.arousal_only}):
        train, test = held_out_split(corpus, held)
        heads, _ = train_model(corpus, train, config)
        records = [corpus.records[r] for r in test]
        labels = np.array([r.label for r in records])
        for variant in EVALUATION_VARIANTS:
            stats = corpus.features.stats[variant][test]
            alone = log_softmax(audio_outputs(heads, stats)[1], axis=1)
            for case, (kept, order, streams) in stream_cases(records).items():
                reference = streamed(heads, config, corpus.features, test[kept], variant, order, streams)
                population = log_softmax(audio_outputs(heads, stats[kept], reference)[1], axis=1)
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
