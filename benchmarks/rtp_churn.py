"""Stream churn soak: tens of thousands of short RTP legs through the daemon's real socket, memory sampled.

Usage: python benchmarks/rtp_churn.py [--legs 20000] [--concurrency 200] [--workers 1] [--bundle DIR]

The daemon (a subprocess, as deployed) receives waves of ``concurrency`` legs at a time, in accelerated time (a
leg's packets arrive faster than real time, the inactivity timeout is 1 s): half of the legs carry speech (a
demo sentence cut to 1.2 s, so each ends in an utterance), half only faint line noise. After each wave has
ended (every stream's end published) the daemon's resident memory is read (with its workers, if any). The
figure is the slope of a line fitted to resident memory over the ended legs of the second half of the run (the
first half holds the warm-up: allocator arenas, pools and caches growing to the concurrency). Target: at most
5 kB kept per ended leg.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe_machine
from rtp_harness import Daemon, daemon_arguments, fake_bundle, packets, pcmu, send_paced

from emoscribe.demo import demo_clips
from emoscribe.g711 import ulaw_encode

SETTINGS = "[rtp]\ninactivity_timeout_s = 1.0\n"


def wave_datagrams(first_leg: int, count: int, speech: list[bytes], noise: bytes) -> list[bytes]:
    """The packets of legs ``first_leg`` .. ``+count``, interleaved as concurrent legs arrive; even legs speak."""
    legs = []
    for leg in range(first_leg, first_leg + count):
        codes = speech[leg // 2 % len(speech)] if leg % 2 == 0 else noise
        legs.append(packets(0x100000 + leg, codes))
    longest = max(len(leg) for leg in legs)
    return [leg[k] for k in range(longest) for leg in legs if k < len(leg)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5_000, help="packets per second sent")
    daemon_arguments(parser)
    args = parser.parse_args()

    speech = [pcmu(path, seconds=1.2) for path in demo_clips()]
    rng = np.random.default_rng(0)
    noise = ulaw_encode(np.round(rng.standard_normal(4_000) * 10).astype(np.int16)).tobytes()  # 0.5 s, -70 dBFS
    with tempfile.TemporaryDirectory() as folder:
        bundle = args.bundle or fake_bundle(Path(folder))
        daemon = Daemon(bundle, args.workers, SETTINGS)
        started = time.monotonic()
        samples: list[tuple[int, int]] = [(0, daemon.rss_kb())]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for first in range(0, args.legs, args.concurrency):
                count = min(args.concurrency, args.legs - first)
                send_paced(sock, daemon.port, wave_datagrams(first, count, speech, noise), args.rate)
                if not daemon.wait_ended(first + count, timeout=120):
                    print(f"wave at leg {first}: only {daemon.ended()} of {first + count} streams ended in time")
                samples.append((first + count, daemon.rss_kb()))
                print(f"legs ended {samples[-1][0]:6d}  RSS {samples[-1][1] / 1024:7.1f} MB", flush=True)
            rejected = daemon.counters("emoscribe_source_rejected")
            events = daemon.counters("emoscribe_rtp_streams")
            jitter = daemon.counters("emoscribe_rtp_jitter_events")
            drops = daemon.counters("emoscribe_rtp_kernel_drops")
            dropped = daemon.counters("emoscribe_drops")
        finally:
            sock.close()
            code = daemon.stop()
        took = time.monotonic() - started
    legs, rss = np.array(samples, dtype=float).T
    half = legs >= legs[-1] / 2
    slope = np.polyfit(legs[half], rss[half], 1)[0]
    utterances = sum(len(u) for u in daemon.utterances().values())
    print(f"machine: {describe_machine()}; workers {args.workers}; bundle {bundle}")
    print(f"legs: {int(legs[-1])} ({args.concurrency} at a time), half with speech; {took:.0f} s; exit {code}")
    print(f"published: {daemon.ended()} stream ends, {utterances} utterances (expected {(args.legs + 1) // 2})")
    print(f"utterances dropped by the segmenter: {dict(dropped)}")
    print(
        f"stream events: {dict(events)}; rejected: {dict(rejected)}; jitter: {dict(jitter)}; kernel: {dict(drops)}"
    )
    print(f"RSS MB: start {rss[0] / 1024:.1f}, half-way {rss[half][0] / 1024:.1f}, end {rss[-1] / 1024:.1f}")
    verdict = "met" if slope <= 5 else "NOT met"
    print(f"RSS slope over the second half: {slope:+.2f} kB per ended leg (target <= 5 kB: {verdict})")


if __name__ == "__main__":
    main()
