"""What an engine batch costs per utterance by batch size: whether dynamic batching can pay on this provider.

Usage: python benchmarks/batch_cost.py [--bundle tiny.en] [--device auto] [--sizes 1,2,4,8,16] [--batches 8]
       [--threads 0]

Dynamic batching helps the daemon only when a batch of n utterances costs less than n batches of one. This
runs the bundle's audio tower (as the daemon's engine does, warm) on batches of the demo sentences and prints,
per batch size, the process CPU time per utterance (all threads: ONNX Runtime's pool included) and the wall
time per batch and per utterance.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from machine import describe_machine

from emoscribe.audio import load_audio
from emoscribe.bundle import resolve_bundle
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.demo import demo_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--batches", type=int, default=8, help="batches timed per size")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    args = parser.parse_args()
    engine = OnnxEngine(resolve_bundle(args.bundle), args.device, threads=args.threads)
    clips = [load_audio(path)[0].astype(np.float32) for path in demo_clips()]
    sizes = [int(size) for size in args.sizes.split(",")]
    engine.warm_up(max(sizes))
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.2f}; providers {engine.providers}")
    print(f"intra-op threads: {args.threads or 'ONNX Runtime default'}")
    print(
        f"utterances: the {len(clips)} demo sentences in turn ({np.mean([c.size for c in clips]) / 16000:.1f} s)"
    )
    print("batch  CPU ms per utterance  wall ms per batch  wall ms per utterance  CPU vs batch of 1")
    single = None
    for size in sizes:
        batches = [[clips[(b * size + i) % len(clips)] for i in range(size)] for b in range(args.batches)]
        engine.infer(batches[0])
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in batches:
            engine.infer(batch)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per = 1000 * cpu / (size * args.batches)
        single = single or per
        print(
            f"{size:5d}  {per:20.1f}  {1000 * wall / args.batches:17.1f}"
            f"  {1000 * wall / (size * args.batches):21.1f}"
            f"  {per / single:17.2f}"
        )


if __name__ == "__main__":
    main()
