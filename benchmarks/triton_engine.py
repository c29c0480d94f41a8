"""The Triton engine on a real bundle: outputs against the local engine, and the daemon's CPU per utterance.

Usage: python benchmarks/triton_engine.py [--bundle tiny.en] [--batches 10] [--batch 8]

Writes the bundle's Triton repository (fp32: the stand-in server runs ONNX Runtime on this CPU) into a temporary
folder, serves it with the pytriton server of ``tests/triton_server.py`` (needs ``.venv-triton``, see README),
and prints the largest difference between the two engines' outputs on the demo clips and on run-time queries,
then the CPU time this process spends per utterance with each engine (process CPU time: ONNX Runtime's threads
included, the server's process not), which is what a daemon node saves by sending its inference to a pool, and
what the speaker graph, which stays on the node, costs it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe_machine

from emoscribe.audio import load_audio
from emoscribe.bundle import resolve_bundle
from emoscribe.daemon.engine import Engine, open_engine
from emoscribe.daemon.speaker_reference import speaker_normaliser
from emoscribe.demo import demo_clips
from emoscribe.export.triton import write_repository

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from triton_launch import running_server

QUERIES = ["an agitated customer", "a calm and friendly voice", "someone on the verge of tears"]


def cpu_ms_per_utterance(engine: Engine, utterances: list[np.ndarray], batches: int) -> tuple[float, float]:
    """CPU and wall milliseconds per utterance over ``batches`` calls, after one untimed call."""
    engine.infer(utterances)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(batches):
        engine.infer(utterances)
    count = batches * len(utterances)
    return 1000 * (time.process_time() - cpu) / count, 1000 * (time.perf_counter() - wall) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8, help="utterances per call (3 s each)")
    args = parser.parse_args()
    bundle = resolve_bundle(args.bundle)
    clips = [load_audio(path)[0].astype(np.float32) for path in demo_clips()]
    with tempfile.TemporaryDirectory() as scratch:
        repository = Path(scratch) / "repository"
        write_repository(bundle, repository, "fp32")
        started = time.perf_counter()
        with running_server(repository, Path(scratch) / "server") as url:
            print(
                f"machine: {describe_machine()}; bundle {bundle.path.name}; server up in "
                f"{time.perf_counter() - started:.1f} s"
            )
            local = open_engine(bundle, "local", device="cpu")
            triton = open_engine(bundle, "triton", url=url, variant="fp32")
            for name, batches in (("one batch", [clips]), ("one by one", [[clip] for clip in clips])):
                pairs = [(triton.infer(batch), local.infer(batch)) for batch in batches]
                for field in ("embeddings", "logits", "layer_stats"):
                    diff = max(float(np.abs(getattr(g, field) - getattr(w, field)).max()) for g, w in pairs)
                    print(f"demo clips {name}: {field} max |triton - local| = {diff:.2e}")
            if bundle.has_text_tower:
                diff = np.abs(triton.embed_texts(QUERIES) - local.embed_texts(QUERIES)).max()
                print(f"queries: text embedding max |triton - local| = {diff:.2e}")
            rng = np.random.default_rng(0)
            utterances = [rng.normal(0, 0.1, 48_000).astype(np.float32) for _ in range(args.batch)]
            for label, engine in (("local ONNX Runtime", local), ("triton client", triton)):
                cpu, wall = cpu_ms_per_utterance(engine, utterances, args.batches)
                print(
                    f"{label}: {cpu:.2f} CPU-ms per 3 s utterance in this process, {wall:.2f} ms wall "
                    f"(batches of {args.batch}, {args.batches} batches)"
                )
            normaliser = speaker_normaliser(bundle)
            if normaliser is not None:
                stats = local.infer(utterances[:1]).layer_stats
                for size in (1, 8, 32):
                    rows = np.repeat(stats, size, axis=0)
                    cpu = time.process_time()
                    for _ in range(200):
                        normaliser.judge([None] * size, rows)
                    per_utterance = 1000 * (time.process_time() - cpu) / (200 * size)
                    print(
                        f"speaker graph on this node: {per_utterance:.3f} CPU-ms per utterance, batches of {size}"
                    )


if __name__ == "__main__":
    main()
