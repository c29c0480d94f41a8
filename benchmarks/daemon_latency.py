"""End-of-speech → publish latency and the most concurrent real-time 8 kHz RTP streams the daemon sustains.

Usage: python benchmarks/daemon_latency.py [--bundle tiny.en] [--seconds 20] [--levels 1,2,4,8,12,16,24,32]
       [--workers 2]

For each level N, the daemon (a subprocess, as deployed) receives N PCMU call legs over loopback UDP, paced in
real time (one 20 ms packet per leg every 20 ms), each a loop of demo sentences with 1.5 s pauses. A subscriber
collects every utterance's ``latency.end_to_publish_ms``: from the segmenter's end-of-utterance decision to the
message leaving the socket, so the VAD hangover is not counted. A level is sustained when its p95 is under
150 ms and no utterance is missing. The same ladder runs on the same bundle with a naive baseline (one
utterance at a time, no batching, one process), with dynamic batching (max batch 32, 5 ms wait) in one
process, and with dynamic batching and the legs sharded over ``--workers`` processes.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from machine import describe_machine

from emoscribe.audio import load_audio, resample
from emoscribe.bundle import resolve_bundle
from emoscribe.clients.subscriber import Subscriber
from emoscribe.demo import demo_clips
from emoscribe.g711 import ulaw_encode

P95_LIMIT_MS = 150.0
NAIVE, BATCHED = (1, 0.0), (32, 5.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call_script() -> tuple[bytes, np.ndarray]:
    """PCMU bytes of the demo sentences with 1.5 s pauses, and the script times (s) where each sentence ends."""
    pause = np.zeros(12_000)
    parts, ends, length = [pause], [], pause.size
    for path in demo_clips():
        sentence = resample(load_audio(path)[0], 16_000, 8_000)
        parts += [sentence, pause]
        length += sentence.size
        ends.append(length / 8_000)
        length += pause.size
    pcm = np.round(np.concatenate(parts) * 32767).clip(-32768, 32767).astype(np.int16)
    return ulaw_encode(pcm).tobytes(), np.array(ends)


def leg_offsets(packets: int, legs: int) -> list[int]:
    """Each leg starts at another point of the script, so that ends of speech spread out over time."""
    return [(leg * packets) // legs for leg in range(legs)]


def expected_utterances(script: bytes, ends: np.ndarray, legs: int, seconds: float) -> int:
    """Sentence ends the legs play in ``seconds``: each must arrive (a sentence cut at a leg's start or end can
    add one more, never fewer)."""
    packets = len(script) // 160
    length = packets * 0.02
    total = 0
    for offset in leg_offsets(packets, legs):
        relative = (ends - offset * 0.02) % length
        total += int(np.maximum(0.0, np.ceil((seconds - relative) / length)).sum())
    return total


def send_legs(port: int, legs: int, seconds: float, script: bytes, stop: threading.Event) -> None:
    """``legs`` real-time PCMU streams, each starting at another point of the script so speech ends spread out."""
    packets = len(script) // 160
    offsets = leg_offsets(packets, legs)
    header = bytearray(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        started = time.perf_counter()
        for tick in range(int(seconds * 50)):
            if stop.is_set():
                return
            for leg, offset in enumerate(offsets):
                index = (offset + tick) % packets
                header[0], header[1] = 0x80, 0
                header[2:4] = (tick & 0xFFFF).to_bytes(2, "big")
                header[4:8] = ((tick * 160) & 0xFFFFFFFF).to_bytes(4, "big")
                header[8:12] = (0x10000 + leg).to_bytes(4, "big")
                sender.sendto(bytes(header) + script[index * 160 : (index + 1) * 160], ("127.0.0.1", port))
            delay = started + (tick + 1) * 0.02 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def wait_until_up(subscriber: Subscriber, timeout: float = 120.0) -> None:
    """Until the daemon's first heartbeat: bundle checked, session warm, every worker ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = subscriber.receive(200)
        if message is not None and message.kind == "heartbeat":
            return
    raise RuntimeError(f"the daemon did not come up within {timeout:.0f} s")


def run_level(
    bundle: str,
    legs: int,
    seconds: float,
    mode: tuple[tuple[int, float], int],
    script: bytes,
    ends: np.ndarray,
    settings: str = "",
) -> dict:
    """One level; ``settings`` is TOML appended to the daemon's configuration (whole sections)."""
    batch, workers = mode
    port, endpoint = free_port(), f"tcp://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "daemon.toml"
        config.write_text(
            f'sources = ["rtp://127.0.0.1:{port}"]\nworkers = {workers}\n[engine]\nbundle = "{bundle}"\n'
            f"[batch]\nmax_batch = {batch[0]}\nmax_wait_ms = {batch[1]}\n"
            f"[rtp]\ninactivity_timeout_s = 1.0\n[metrics]\nenabled = false\n{settings}"
        )
        subscriber = Subscriber(endpoint, ["utterance.", "heartbeat"])
        daemon = subprocess.Popen(
            [sys.executable, "-m", "emoscribe", "run", "--config", str(config), "--endpoint", endpoint],
            stderr=(Path(folder) / "daemon.log").open("w"),
        )
        wait_until_up(subscriber)
        stop = threading.Event()
        sender = threading.Thread(target=send_legs, args=(port, legs, seconds, script, stop))
        sender.start()
        latencies, shed, deadline = [], Counter(), time.monotonic() + seconds + 3.0
        while time.monotonic() < deadline:
            message = subscriber.receive(200)
            if message is not None and message.kind == "utterance":
                latencies.append(message.latency["end_to_publish_ms"])
                shed.update(message.shed)
        stop.set()
        sender.join()
        daemon.terminate()
        _, status, usage = os.wait4(daemon.pid, 0)
        daemon.returncode = os.waitstatus_to_exitcode(status)
        subscriber.close()
    expected = expected_utterances(script, ends, legs, seconds)
    values = np.array(latencies) if latencies else np.array([np.inf])
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "legs": legs,
        "utterances": len(latencies),
        "expected_min": expected,
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "shed": shed,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--levels", default="1,2,4,8,12,16,24,32")
    parser.add_argument("--workers", type=int, default=2, help="processes for the sharded run")
    args = parser.parse_args()
    modes = {
        "naive": (NAIVE, 1),
        "batched": (BATCHED, 1),
        f"batched, {args.workers} workers": (BATCHED, args.workers),
    }
    bundle = resolve_bundle(args.bundle)
    script, ends = call_script()
    print(f"machine: {describe_machine()}; bundle {bundle.path.name}")
    best = {}
    for mode, ((size, wait), workers) in modes.items():
        print(f"\n{mode} (max batch {size}, max wait {wait} ms, {workers} process(es) for the legs)")
        print("legs  utterances  p50 ms  p95 ms  p99 ms  sustained")
        best[mode] = 0
        for legs in (int(x) for x in args.levels.split(",")):
            r = run_level(args.bundle, legs, args.seconds, modes[mode], script, ends)
            ok = r["p95"] <= P95_LIMIT_MS and r["utterances"] >= r["expected_min"]
            figures = f"{r['p50']:6.1f}  {r['p95']:6.1f}  {r['p99']:6.1f}"
            print(f"{legs:4d}  {r['utterances']:10d}  {figures}  {'yes' if ok else 'no'}")
            if not ok:
                break
            best[mode] = legs
    naive = best["naive"]
    print("\nmost legs sustained: " + ", ".join(f"{mode} {legs}" for mode, legs in best.items()))
    for mode, legs in best.items():
        if mode != "naive":
            print(f"ratio {mode} / naive: {legs / naive:.2f}" if naive else f"{mode}: naive sustained none")


if __name__ == "__main__":
    main()
