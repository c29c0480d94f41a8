"""How many real-time legs the RTP load generator sustains with under 1 ms of pacing error on this machine.

Usage: python benchmarks/loadgen_capacity.py [--levels 500,1000,2000,4000,8000] [--seconds 10] [--processes 1]
       [--host 127.0.0.1 --port PORT]

Each level sends that many 20 ms PCMU legs for ``--seconds``; by default to a UDP socket on loopback that
nobody reads (the kernel queues and then drops, as it does for a receiver that keeps up, at about the same
cost to the sender), or to ``--host``/``--port`` (a daemon on another machine). A level is sustained when every
packet was sent and the 99th percentile of lateness (send call returned minus due time, as the generator
measures it) is under 1 ms. The ladder stops at the first level that is not.
"""

from __future__ import annotations

import argparse
import os
import socket

from calls import call_script
from loadgen import LoadGenerator
from machine import describe_machine

LIMIT_US = 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="500,1000,2000,4000,8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="send here instead of to a local socket nobody reads")
    args = parser.parse_args()
    script, _ = call_script()
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{args.seconds:.0f} s per level, {args.processes} process(es)")
    print("  legs  packets/s      sent  late p50 us  p99 us  p99.9 us  max us  CPU cores  realtime  sustained")
    best = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        target = (args.host, args.port) if args.port else sink.getsockname()
        for legs in (int(x) for x in args.levels.split(",")):
            with LoadGenerator(target, legs, args.seconds, script, processes=args.processes) as load:
                pass
            r = load.report
            assert r is not None
            ok = r.sent == r.packets == legs * round(args.seconds * 50) and r.late_p99_us < LIMIT_US
            print(
                f"{legs:6d}  {r.sent / r.wall_s:9.0f}  {r.sent:8d}  {r.late_p50_us:11.0f}  {r.late_p99_us:6.0f}"
                f"  {r.late_p999_us:8.0f}  {r.late_max_us:6.0f}  {r.cpu_s / r.wall_s:9.2f}  {r.realtime!s:>8}"
                f"  {'yes' if ok else 'no'}"
            )
            if not ok:
                break
            best = legs
    print(f"most legs sustained with p99 lateness under {LIMIT_US:.0f} us: {best}")


if __name__ == "__main__":
    main()
