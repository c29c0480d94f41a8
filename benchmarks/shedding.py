"""End-of-speech → publish latency under overload, with load shedding on and off.

Usage: python benchmarks/shedding.py [--bundle tiny.en] [--legs 20] [--seconds 30] [--workers 1] [--repeat 1]

The same harness as ``benchmarks/daemon_latency.py`` (the daemon as a subprocess, real-time 8 kHz PCMU legs over
loopback UDP, the demo sentences with 1.5 s pauses), at about twice the legs the machine sustains (that script
found 8-11 on the 2-core development VM, so 20 by default), once with ``[shedding] enabled = false`` and once
with the default shedding. It prints p50 / p95 / p99 of ``latency.end_to_publish_ms``, the utterances that
arrived against the least expected, and the share of utterances published under each shed step (that no
utterance, final cue or emotion is ever shed is what ``tests/test_daemon_trust.py`` checks), and the CPU
seconds the daemon process used (with workers, the main process only). Wall-clock figures: record them with
the machine's load.
"""

from __future__ import annotations

import argparse
import os

from calls import call_script
from daemon_latency import daemon_settings, run_level
from daemon_process import free_port
from machine import describe_machine

from emoscribe.bundle import resolve_bundle
from emoscribe.daemon.shedding import SHED_ORDER

MODES = {"shedding off": "[shedding]\nenabled = false\n", "shedding on": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--legs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="alternate the two modes this many times")
    args = parser.parse_args()
    bundle = resolve_bundle(args.bundle)
    script, ends = call_script()
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.1f}; bundle {bundle.path.name}")
    print(f"{args.legs} legs, {args.seconds:.0f} s, {args.workers} process(es) for the legs, max batch 32")
    print(
        "mode           utterances (least expected)  p50 ms  p95 ms  p99 ms  daemon CPU s  shed: "
        + " / ".join(SHED_ORDER)
    )
    for _ in range(args.repeat):
        for mode, settings in MODES.items():
            metrics = free_port()
            mode_settings = daemon_settings("sharded", args.workers, args.bundle, 1, metrics) + settings
            r = run_level(args.legs, args.seconds, mode_settings, metrics, script, ends)
            shares = " / ".join(f"{100 * r['shed'][step] / max(r['utterances'], 1):3.0f} %" for step in SHED_ORDER)
            figures = f"{r['p50']:6.1f}  {r['p95']:6.1f}  {r['p99']:6.1f}"
            arrived = f"{r['utterances']:10d} ({r['expected_min']:4d})"
            print(f"{mode:<14} {arrived}        {figures}  {r['cpu_s']:12.1f}  {shares}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
