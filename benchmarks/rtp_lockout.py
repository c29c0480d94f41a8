"""Lock-out attack: thousands of silent SSRCs hold the RTP table, then a real call starts; is it heard?

Usage: python benchmarks/rtp_lockout.py [--ssrcs 2500] [--workers 1] [--bundle DIR]

The daemon (a subprocess, as deployed, with the default settings but a 10 s inactivity timeout) receives a PCMU
silence packet a second from each of ``--ssrcs`` SSRCs (another process sends them) from the call's address,
for 15 s; 4 s after every SSRC has sent its first, a real call (the demo sentences, real time) starts.
Printed: when the call's stream opened, its utterances published against the sentences played, and the
daemon's stream events and refusals by reason.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import describe_machine
from rtp_harness import SAMPLES, Daemon, daemon_arguments, fake_bundle, packets, pcmu

from emoscribe.demo import demo_clips

CALL = 0xCA11
PERIOD_S = 1.0
SETTINGS = "[rtp]\ninactivity_timeout_s = 10.0\n"
"""The worst case for a lock-out: idle streams are kept long, even if the flood's sender lags on a busy machine."""


def flood_silence(port: int, ssrcs: int, seconds: float, filled: Any) -> None:
    """A silence packet every ``PERIOD_S`` from each SSRC, spread over the period; ``filled`` is set once every
    SSRC has sent one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        started = time.perf_counter()
        for tick in range(int(seconds / PERIOD_S)):
            for ssrc in range(ssrcs):
                due = started + (tick + ssrc / ssrcs) * PERIOD_S
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                header = bytes([0x80, 0]) + (tick & 0xFFFF).to_bytes(2, "big") + (tick * 8000).to_bytes(4, "big")
                sock.sendto(header + (0x20000 + ssrc).to_bytes(4, "big") + b"\xff" * SAMPLES, ("127.0.0.1", port))
            filled.set()


def play_call(port: int, delay: float) -> tuple[int, float]:
    """The demo sentences with 1 s pauses, in real time, after ``delay``; returns the sentences played and the
    wall time the call began."""
    clips = demo_clips()
    codes = b"".join(pcmu(path) + b"\xff" * 8000 for path in clips)
    time.sleep(delay)
    began = time.time()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        started = time.perf_counter()
        for k, packet in enumerate(packets(CALL, codes)):
            sock.sendto(packet, ("127.0.0.1", port))
            pause = started + (k + 1) * SAMPLES / 8000 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    return len(clips), began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ssrcs", type=int, default=2500)
    daemon_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bundle = args.bundle or fake_bundle(Path(folder))
        daemon = Daemon(bundle, args.workers, SETTINGS)
        try:
            context = multiprocessing.get_context("spawn")
            filled = context.Event()
            flood = context.Process(target=flood_silence, args=(daemon.port, args.ssrcs, 15.0, filled))
            flood.start()
            filled.wait(120)
            played, began = play_call(daemon.port, 4.0)
            flood.join()
            time.sleep(3.0)
            events = daemon.counters("emoscribe_rtp_streams")
            rejected = daemon.counters("emoscribe_source_rejected")
        finally:
            code = daemon.stop()
    stream = f"rtp-{CALL:08x}"
    heard = daemon.utterances().get(stream, [])
    opened = [m.wall_time for m in daemon.messages if m.kind == "stream" and m.stream == stream]
    print(f"machine: {describe_machine()}; workers {args.workers}; bundle {bundle}; exit {code}")
    print(f"{args.ssrcs} silent SSRCs at 1 packet/s, then a call of {played} sentences from the same address")
    late = f"{opened[0] - began:.1f} s after its first packet" if opened else "never"
    print(f"the call's stream opened {late}; its utterances published: {len(heard)} of {played}")
    print(f"stream events: {dict(events)}")
    print(f"rejected: {dict(rejected)}")


if __name__ == "__main__":
    main()
