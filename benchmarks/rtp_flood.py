"""Malformed-packet flood: two real call legs under at least a million malformed datagrams, against a clean run.

Usage: python benchmarks/rtp_flood.py [--flood 1000000] [--workers 1] [--bundle DIR]

The daemon (a subprocess, as deployed) receives two real-time PCMU legs of the demo sentences with 1.5 s pauses.
In the flood run, a separate process sends ``--flood`` malformed datagrams as fast as it can while the legs
play (too short, wrong version, RTCP, unknown payload type, half samples, bad padding, CSRCs or extension that
do not fit, random bytes; random SSRCs, so a sharded daemon's workers share them). The same legs run once
without the flood. Printed: the flood's rate, the daemon's counts by reason, the kernel's drops, and per leg
the utterances of both runs. Target: the real legs' utterances and labels equal the clean run's, or every real
packet lost is counted: no real packet was refused by the daemon (no refusal of a stream) and the real packets
missing (sent - accepted) are within the kernel's counted drops; the jitter buffers' ``lost`` shows them per
stream (all but a loss at the very end of a leg, which no later packet reveals).
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import describe_machine
from rtp_harness import SAMPLES, Daemon, daemon_arguments, fake_bundle, packets, pcmu

from emoscribe.demo import demo_clips

LEGS = (0x1111, 0x2222)
SETTINGS = "[rtp]\ninactivity_timeout_s = 1.0\n"
TOLERANCE_S = 0.05
REFUSALS = {"too_many_streams", "address_limit", "dormant", "format_change", "internal"}
"""Rejections that could hit a real leg's packets (the others are reasons a packet is malformed)."""


def leg_codes() -> bytes:
    """The demo sentences with 1.5 s pauses, as PCMU."""
    pause = b"\xff" * 12_000
    return pause + b"".join(pcmu(path) + pause for path in demo_clips())


def malformed(rng: np.random.Generator, count: int) -> list[bytes]:
    """``count`` datagrams, each failing one check of the RTP source."""
    kinds: list[Any] = [
        lambda ssrc: rng.bytes(int(rng.integers(0, 12))),  # short
        lambda ssrc: struct.pack("!BBHII", 0x00, 0, 1, 2, ssrc) + bytes(160),  # version 0
        lambda ssrc: struct.pack("!BBHII", 0x81, 201, 1, ssrc, 0),  # RTCP receiver report
        lambda ssrc: struct.pack("!BBHII", 0x80, 18, 1, 2, ssrc) + bytes(20),  # G.729: not configured
        lambda ssrc: struct.pack("!BBHII", 0x80, 11, 1, 2, ssrc) + bytes(3),  # half an L16 sample
        lambda ssrc: struct.pack("!BBHII", 0xA0, 0, 1, 2, ssrc) + bytes(10) + b"\xff",  # padding beyond size
        lambda ssrc: struct.pack("!BBHII", 0x8F, 0, 1, 2, ssrc) + bytes(8),  # 15 CSRCs in 8 bytes
        lambda ssrc: struct.pack("!BBHIIHH", 0x90, 0, 1, 2, ssrc, 0xBEDE, 500),  # extension beyond size
        lambda ssrc: rng.bytes(int(rng.integers(12, 200))),  # random bytes
    ]
    ssrcs = rng.integers(0, 2**32, size=count, dtype=np.uint64)
    picks = rng.integers(0, len(kinds), size=count)
    return [kinds[k](int(s)) for k, s in zip(picks, ssrcs, strict=True)]


def flood(port: int, count: int, ready: Any, sent: Any) -> None:
    """Send ``count`` malformed datagrams as fast as possible (a sample of 50,000 distinct ones, repeated)."""
    sample = malformed(np.random.default_rng(1), min(count, 50_000))
    ready.set()
    address = ("127.0.0.1", port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        started = time.perf_counter()
        for k in range(count):
            sock.sendto(sample[k % len(sample)], address)
        sent.value = time.perf_counter() - started


def play_legs(port: int, codes: bytes) -> int:
    """Both legs in real time (one 20 ms packet each every 20 ms); returns the packets sent."""
    legs = [packets(ssrc, codes) for ssrc in LEGS]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        started = time.perf_counter()
        for k in range(len(legs[0])):
            for leg in legs:
                sock.sendto(leg[k], ("127.0.0.1", port))
            delay = started + (k + 1) * SAMPLES / 8000 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return sum(len(leg) for leg in legs)


def run(bundle: Path | str, workers: int, codes: bytes, flood_count: int) -> dict[str, Any]:
    daemon = Daemon(bundle, workers, SETTINGS)
    context = multiprocessing.get_context("spawn")
    ready, took = context.Event(), context.Value("d", 0.0)
    flooder = None
    try:
        if flood_count:
            flooder = context.Process(target=flood, args=(daemon.port, flood_count, ready, took))
            flooder.start()
            ready.wait(120)
        sent: list[int] = []
        player = threading.Thread(target=lambda: sent.append(play_legs(daemon.port, codes)))
        player.start()
        player.join()
        if flooder is not None:
            flooder.join()
        daemon.wait_ended(len(LEGS), timeout=60)
        result = {
            "sent": sent[0],
            "flood_s": took.value,
            "accepted": daemon.counters("emoscribe_source_accepted")["packets"],
            "rejected": daemon.counters("emoscribe_source_rejected"),
            "jitter": daemon.counters("emoscribe_rtp_jitter_events"),
            "kernel": daemon.counters("emoscribe_rtp_kernel_drops"),
            "streams": daemon.counters("emoscribe_rtp_streams"),
        }
    finally:
        result_code = daemon.stop()
    result["exit"] = result_code
    result["utterances"] = daemon.utterances()
    return result


def same(clean: list[dict], flooded: list[dict]) -> bool:
    return len(clean) == len(flooded) and all(
        abs(a["start"] - b["start"]) <= TOLERANCE_S
        and abs(a["end"] - b["end"]) <= TOLERANCE_S
        and a["emotion"]["label"] == b["emotion"]["label"]
        for a, b in zip(clean, flooded, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=1_000_000)
    daemon_arguments(parser)
    args = parser.parse_args()
    codes = leg_codes()
    with tempfile.TemporaryDirectory() as folder:
        bundle = args.bundle or fake_bundle(Path(folder))
        clean = run(bundle, args.workers, codes, 0)
        flooded = run(bundle, args.workers, codes, args.flood)
    print(f"machine: {describe_machine()}; workers {args.workers}; bundle {bundle}")
    print(f"legs: {len(LEGS)} x {len(codes) / 8000:.1f} s PCMU in real time; {clean['sent']} real packets per run")
    rate = args.flood / flooded["flood_s"] if flooded["flood_s"] else float("nan")
    print(f"flood: {args.flood} malformed datagrams in {flooded['flood_s']:.1f} s ({rate / 1000:.0f} k/s)")
    equal = True
    for name, result in (("clean", clean), ("flood", flooded)):
        lost = result["sent"] - result["accepted"]
        counted = result["jitter"]["lost"]
        print(f"{name}: exit {result['exit']}; real packets accepted {result['accepted']} of {result['sent']}")
        print(f"  lost real packets {lost}, counted as lost by the jitter buffers {counted}")
        print(f"  rejected {sum(result['rejected'].values())}: {dict(result['rejected'])}")
        print(f"  kernel drops {dict(result['kernel'])}; jitter {dict(result['jitter'])}")
        print(f"  streams {dict(result['streams'])}")
    for ssrc in LEGS:
        stream = f"rtp-{ssrc:08x}"
        a, b = clean["utterances"].get(stream, []), flooded["utterances"].get(stream, [])
        match = same(a, b)
        equal &= match
        print(f"{stream}: clean {len(a)} utterances, flood {len(b)}; equal (times +-50 ms, labels): {match}")
        for x, y in zip(a, b, strict=False):
            print(
                f"  {x['start']:6.2f}-{x['end']:6.2f} {x['emotion']['label']!s:10} | "
                f"{y['start']:6.2f}-{y['end']:6.2f} {y['emotion']['label']!s:10}"
            )
    lost = flooded["sent"] - flooded["accepted"]
    counted = lost <= flooded["kernel"]["receive_buffer"] and not REFUSALS & set(flooded["rejected"])
    verdict = "met" if equal or counted else "NOT met"
    print(f"target (utterances equal: {equal}, or every lost real packet counted: {counted}): {verdict}")


if __name__ == "__main__":
    main()
