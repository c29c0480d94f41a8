"""End-of-speech → publish latency and the most concurrent real-time 8 kHz RTP streams the daemon sustains.

Usage: python benchmarks/daemon_latency.py [--bundle tiny.en] [--seconds 20] [--levels 1,2,4,8,12,16,24,32]
       [--workers 2] [--modes naive,batched,sharded] [--engine-threads 1]

For each level N, the daemon (a subprocess, as deployed) receives N PCMU call legs over loopback UDP from the
load generator (``loadgen/``: one 20 ms packet per leg every 20 ms, the legs spread over the period), each a
loop of demo sentences with 1.5 s pauses (``calls.py``), each leg starting at another point of it. A subscriber
collects every utterance's ``latency.end_to_publish_ms``: from the segmenter's end-of-utterance decision to the
message leaving the socket, so the VAD hangover is not counted. A level is sustained when its p95 is under
150 ms and no utterance is missing. The same ladder runs on the same bundle with a naive baseline (one
utterance at a time, no batching, one process), with dynamic batching (max batch 32, 5 ms wait) in one
process, and with dynamic batching and the legs sharded over ``--workers`` processes. Each level's line also
gives the load generator's own pacing (99th percentile of how late it sent) and the daemon's engine batches
(mean utterances per batch, from its metrics), so a ratio between the modes can be explained.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import urllib.request
from collections import Counter

import numpy as np
from calls import call_script, expected_utterances
from daemon_process import DaemonProcess, free_port
from loadgen import LoadGenerator
from machine import describe_machine

from emoscribe.bundle import resolve_bundle

P95_LIMIT_MS = 150.0
MODES = {"naive": ((1, 0.0), False), "batched": ((32, 5.0), False), "sharded": ((32, 5.0), True)}
"""Name: ((max batch, max wait ms), legs sharded over --workers processes)."""


def mean_batch(metrics_port: int) -> float:
    """Utterances per engine batch so far, from the daemon's Prometheus histogram."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    total = re.search(r"^emoscribe_batch_size_sum ([0-9.e+]+)$", text, re.M)
    count = re.search(r"^emoscribe_batch_size_count ([0-9.e+]+)$", text, re.M)
    return float(total.group(1)) / max(float(count.group(1)), 1.0) if total and count else float("nan")


def daemon_settings(mode: str, workers: int, bundle: str, threads: int, metrics_port: int) -> str:
    """The daemon's TOML (after its sources) for a batching mode of :data:`MODES`."""
    (size, wait), sharded = MODES[mode]
    return (
        f'workers = {workers if sharded else 1}\n[engine]\nbundle = "{bundle}"\nthreads = {threads}\n'
        f"[batch]\nmax_batch = {size}\nmax_wait_ms = {wait}\n"
        f"[rtp]\ninactivity_timeout_s = 1.0\n[metrics]\nport = {metrics_port}\n"
    )


def run_level(legs: int, seconds: float, settings: str, metrics_port: int, script: bytes, ends) -> dict:
    """One level: ``legs`` real-time legs into a daemon with ``settings``; latency percentiles, batches, the
    utterances published under each shed step, and the daemon process's CPU seconds."""
    latencies, shed = [], Counter()
    with DaemonProcess(settings) as daemon:

        def collect(until: float) -> None:
            while time.monotonic() < until:
                message = daemon.subscriber.receive(200)
                if message is not None and message.kind == "utterance":
                    latencies.append(message.latency["end_to_publish_ms"])
                    shed.update(message.shed)

        with LoadGenerator(("127.0.0.1", daemon.rtp_port), legs, seconds, script) as load:
            collect(time.monotonic() + seconds)
        collect(time.monotonic() + 3.0)
        batch = mean_batch(metrics_port)
    values = np.array(latencies) if latencies else np.array([np.inf])
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "utterances": len(latencies),
        "expected_min": expected_utterances(script, ends, legs, seconds),
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "batch": batch,
        "pacing_p99_us": load.report.late_p99_us if load.report else float("nan"),
        "shed": shed,
        "cpu_s": daemon.cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--levels", default="1,2,4,8,12,16,24,32")
    parser.add_argument("--workers", type=int, default=2, help="processes for the sharded run")
    parser.add_argument("--modes", default=",".join(MODES), help=f"any of {', '.join(MODES)}")
    parser.add_argument(
        "--engine-threads", type=int, default=1, help="[engine] threads (the daemon's default 1; 0: one per core)"
    )
    args = parser.parse_args()
    bundle = resolve_bundle(args.bundle)
    script, ends = call_script()
    threads = args.engine_threads or "ONNX Runtime's default"
    print(f"machine: {describe_machine()}; bundle {bundle.path.name}; engine threads {threads}")
    print(f"load average at the start {os.getloadavg()[0]:.2f}")
    best = {}
    for mode in args.modes.split(","):
        (size, wait), sharded = MODES[mode]
        workers = args.workers if sharded else 1
        print(f"\n{mode} (max batch {size}, max wait {wait} ms, {workers} process(es) for the legs)")
        print("legs  utterances  p50 ms  p95 ms  p99 ms  batch  loadgen p99 us  sustained")
        best[mode] = 0
        for legs in (int(x) for x in args.levels.split(",")):
            metrics = free_port()
            settings = daemon_settings(mode, args.workers, args.bundle, args.engine_threads, metrics)
            r = run_level(legs, args.seconds, settings, metrics, script, ends)
            ok = r["p95"] <= P95_LIMIT_MS and r["utterances"] >= r["expected_min"]
            figures = f"{r['p50']:6.1f}  {r['p95']:6.1f}  {r['p99']:6.1f}  {r['batch']:5.2f}"
            counts = f"{r['utterances']:4d} of ≥{r['expected_min']:<3d}"
            print(f"{legs:4d}  {counts}  {figures}  {r['pacing_p99_us']:14.0f}  {'yes' if ok else 'no'}")
            if not ok:
                break
            best[mode] = legs
    print("\nmost legs sustained: " + ", ".join(f"{mode} {legs}" for mode, legs in best.items()))
    naive = best.get("naive")
    for mode, legs in best.items():
        if mode != "naive" and naive is not None:
            print(f"ratio {mode} / naive: {legs / naive:.2f}" if naive else f"{mode}: naive sustained none")


if __name__ == "__main__":
    main()
