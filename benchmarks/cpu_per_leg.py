"""CPU cost per leg-second of the daemon, inference apart, by stage, and the legs per core it projects.

Usage: python benchmarks/cpu_per_leg.py [--legs 8] [--seconds 40] [--workers 1,2] [--bundle tiny.en]
       [--before DIR] [--repeat 1]

The daemon runs as deployed (``emoscribe run`` on RTP, in a subprocess) under ``--legs`` real-time legs of the
demo call (``calls.py``: the demo sentences with 1.5 s pauses as 8 kHz PCMU, each leg starting at another point
of it) from the load generator (``loadgen/``). CPU time is counted over the run after its first ``WARM_S``
seconds, so start-up and the legs' first packets are left out:

- **by process and thread**, from ``/proc`` (``schedstat``), once with each ``--workers`` count. In the main
  process, the threads other than the event loop's and ZeroMQ's I/O threads are the engine's (the batcher
  thread and ONNX Runtime's pool): their CPU is *inference*. Everything else (RTP receive, front ends,
  describe, publish, the worker link, the event loop) is *outside inference*: the figure a GPU node's cores
  are divided by.
- **by stage**, with ``workers = 1``: the daemon is started through this script, which wraps the pipeline's
  entry points in exclusive CPU timers (``time.thread_time`` on the event loop's thread: a stage's figure
  leaves out the stages it calls) before it runs ``emoscribe``, and reads them when signalled. What no timer
  covers is the event loop itself and its socket reads.

``--before DIR`` repeats everything with the ``emoscribe`` package of another checkout (``DIR`` holding an
``emoscribe/`` folder, e.g. ``git worktree add /tmp/before main``), in the same run, for a before/after.
Figures are CPU milliseconds per leg-second (one leg for one second of its audio); legs per core is 1000
divided by that.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import runpy
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from calls import call_script, expected_utterances
from daemon_process import DaemonProcess
from loadgen import LoadGenerator
from machine import describe_machine

WARM_S = 3.0
"""Leg seconds before the CPU clock starts: every leg has opened its stream by then."""
HERE = Path(__file__).resolve().parent


# --- 1. the daemon as deployed -----------------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children[int(fields[1])].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def thread_cpu(root: int) -> dict[tuple[int, int, str], float]:
    """CPU seconds of every thread of ``root``'s process tree, keyed by (process, thread, thread name)."""
    times = {}
    for pid in descendants(root):
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                name = (task / "comm").read_text().strip()
                times[(pid, int(task.name), name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
            except OSError:
                continue
    return times


def split_inference(root: int, before: dict, after: dict) -> tuple[float, float]:
    """(inference, outside inference) CPU seconds between two :func:`thread_cpu` readings."""
    inference = outside = 0.0
    for key, seconds in after.items():
        used = seconds - before.get(key, 0.0)
        pid, tid, name = key
        if pid == root and tid != root and not name.startswith("ZMQbg"):
            inference += used
        else:
            outside += used
    return inference, outside


def deployed(
    tree: Path, bundle: str, legs: int, seconds: float, workers: int, script: bytes, ends, timed: bool = False
) -> dict:
    """One run of the daemon from ``tree`` under ``legs`` real-time legs: CPU split, utterances received, and
    ``timed`` (with one worker) the stages' CPU."""
    settings = f'workers = {workers}\n[engine]\nbundle = "{bundle}"\n[rtp]\ninactivity_timeout_s = 1.0\n'
    settings += "[metrics]\nenabled = false\n"
    with tempfile.TemporaryDirectory() as folder:
        snapshots = Path(folder) / "stages.jsonl"
        launcher = [__file__, "--timed-daemon", str(snapshots)] if timed else ["-m", "emoscribe"]
        with DaemonProcess(settings, tree=tree, launcher=launcher) as daemon:
            assert daemon.process is not None
            pid, utterances = daemon.process.pid, 0

            def drain(until: float) -> None:
                nonlocal utterances
                while time.monotonic() < until:
                    message = daemon.subscriber.receive(100)
                    utterances += message is not None and message.kind == "utterance"

            with LoadGenerator(("127.0.0.1", daemon.rtp_port), legs, seconds, script) as load:
                started = time.monotonic()
                drain(started + WARM_S)
                first = thread_cpu(pid)
                if timed:
                    daemon.process.send_signal(signal.SIGUSR1)
                drain(started + seconds - 0.1)
                last = thread_cpu(pid)
                if timed:
                    daemon.process.send_signal(signal.SIGUSR1)
                measured = seconds - 0.1 - WARM_S
            drain(time.monotonic() + 3.0)
            stages = _stage_figures(snapshots, legs * measured) if timed else None
    inference, outside = split_inference(pid, first, last)
    leg_seconds = legs * measured
    return {
        "workers": workers,
        "inference_ms": 1000 * inference / leg_seconds,
        "outside_ms": 1000 * outside / leg_seconds,
        "utterances": utterances,
        "expected_min": expected_utterances(script, ends, legs, seconds),
        "pacing_p99_us": load.report.late_p99_us if load.report else float("nan"),
        "stages": stages,
    }


def _stage_figures(snapshots: Path, leg_seconds: float) -> dict:
    """CPU ms per leg-second of each stage between the two snapshots, and of what no timer covered."""
    first, last = (json.loads(line) for line in snapshots.read_text().splitlines()[:2])
    figures = {
        name: 1000 * (seconds - first["stages"].get(name, 0.0)) / leg_seconds
        for name, seconds in last["stages"].items()
    }
    thread = 1000 * (last["thread_s"] - first["thread_s"]) / leg_seconds
    figures[UNTIMED] = thread - sum(figures.values())
    return {"stages": figures, "thread": thread, "missing": last["missing"]}


# --- 2. the front end's stages, in this process ------------------------------------------------------------------
class StageClock:
    """Exclusive CPU time per stage: entering a stage pauses the one it was called from. Each timed call costs
    two ``thread_time`` system calls (about 2 us each here), which the deployed figures without timers do not
    pay."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._since = 0.0

    def wrap(self, owner: object, attribute: str, name: str) -> None:
        original: Callable = getattr(owner, attribute)
        seconds, stack, clock = self.seconds, self._stack, time.thread_time

        def timed(*args, **kwargs):
            now = clock()
            if stack:
                seconds[stack[-1]] += now - self._since
            stack.append(name)
            self._since = now
            try:
                return original(*args, **kwargs)
            finally:
                now = clock()
                seconds[stack.pop()] += now - self._since
                self._since = now

        setattr(owner, attribute, timed)


STAGES = (
    ("emoscribe.daemon.sources.rtp_source", "RtpSource.receive", "RTP receive (parse, G.711, jitter, resample)"),
    ("emoscribe.daemon.frontend", "Frontend.frame", "front end, per frame"),
    ("emoscribe.daemon.segmenter", "Segmenter.push", "segmenter + VAD"),
    ("emoscribe.daemon.segmenter", "Segmenter.flush", "segmenter + VAD"),
    ("emoscribe.daemon.speech_gate", "check", "speech gate"),
    ("emoscribe.daemon.frontend", "Frontend._partial", "partial cues"),
    ("emoscribe.daemon.frontend", "extract_cues", "final cues"),
    ("emoscribe.daemon.service", "Service.partial_cues", "publish partial cues"),
    ("emoscribe.daemon.service", "Service.utterance_ready", "hand to the engine"),
    ("emoscribe.daemon.service", "Service._complete", "describe + publish"),
)
"""What is timed: (module, attribute, stage); an attribute a version lacks is reported as not timed."""
UNTIMED = "event loop, socket reads, the rest"


def install_timers(clock: StageClock) -> list[str]:
    """Wrap every stage's entry point; the names of those not found."""
    missing = []
    for module, attribute, name in STAGES:
        owner: object = importlib.import_module(module)
        *path, leaf = attribute.split(".")
        try:
            for part in path:
                owner = getattr(owner, part)
            clock.wrap(owner, leaf, name)
        except AttributeError:
            missing.append(f"{module}.{attribute}")
    return missing


def daemon_with_timers(snapshots: Path, argv: list[str]) -> None:
    """Run ``emoscribe`` with stage timers; each SIGUSR1 appends the timers and the thread's CPU to
    ``snapshots`` as a JSON line."""
    clock = StageClock()
    missing = install_timers(clock)

    def snapshot(signum: int, frame: object) -> None:
        line = {"thread_s": time.thread_time(), "stages": dict(clock.seconds), "missing": missing}
        with snapshots.open("a") as out:
            out.write(json.dumps(line) + "\n")

    signal.signal(signal.SIGUSR1, snapshot)
    sys.argv = ["emoscribe", *argv]
    runpy.run_module("emoscribe", run_name="__main__")


# --- report ------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--workers", default="1,2", help="worker counts of the deployed runs")
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--before", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each deployed figure (median shown)")
    parser.add_argument("--timed-daemon", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.timed_daemon:
        daemon_with_timers(args.timed_daemon, rest)
        return

    trees = {"this checkout": HERE.parent}
    if args.before is not None:
        trees = {"before": args.before.resolve(), "after": HERE.parent}
    script, ends = call_script()
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{args.legs} legs x {args.seconds:.0f} s of the demo call (8 kHz PCMU); bundle {args.bundle}")
    runs: dict[tuple[str, int], list[dict]] = defaultdict(list)
    timed = {}
    for _ in range(args.repeat):  # interleaved, so a change in the machine's load hits every tree alike
        for workers in (int(w) for w in args.workers.split(",")):
            for label, tree in trees.items():
                runs[label, workers].append(
                    deployed(tree, args.bundle, args.legs, args.seconds, workers, script, ends)
                )
    for label, tree in trees.items():
        run = deployed(tree, args.bundle, args.legs, args.seconds, 1, script, ends, timed=True)
        timed[label] = {**run["stages"], "inference": run["inference_ms"], "utterances": run["utterances"]}

    print(
        f"\ndeployed daemon, CPU ms per leg-second (all its processes, from /proc); median of {args.repeat} run(s)"
    )
    print(f"{'tree':16s}workers  outside inference (range)  inference    all  legs/core: outside   all"
          "  utterances  loadgen p99 us")  # fmt: skip
    for (label, workers), repeats in runs.items():
        outside = [r["outside_ms"] for r in repeats]
        middle = {key: statistics.median(r[key] for r in repeats) for key in ("outside_ms", "inference_ms")}
        every = middle["outside_ms"] + middle["inference_ms"]
        utterances = min(r["utterances"] for r in repeats)
        print(
            f"{label:16s}{workers:7d}  {middle['outside_ms']:8.2f} ({min(outside):5.2f}-{max(outside):5.2f})"
            f"  {middle['inference_ms']:9.2f}  {every:5.2f}"
            f"  {1000 / middle['outside_ms']:18.0f}  {1000 / every:4.0f}"
            f"  {utterances:4d} of ≥{repeats[0]['expected_min']:<3d}"
            f"  {max(r['pacing_p99_us'] for r in repeats):14.0f}"
        )
    print("\nby stage, in another run with workers = 1 and a CPU timer around each stage: CPU ms per leg-second")
    print("on the event loop's thread (a stage's figure leaves out the stages it calls; the timers' own cost")
    print("lands in the stages and inflates the thread's total against the run above)")
    names = list(dict.fromkeys(name for result in timed.values() for name in result["stages"]))
    print(f"{'stage':48s}" + "".join(f"{label:>16s}" for label in timed))
    for name in names:
        print(f"{name:48s}" + "".join(f"{result['stages'].get(name, 0.0):16.2f}" for result in timed.values()))
    print(f"{'event loop thread, all':48s}" + "".join(f"{result['thread']:16.2f}" for result in timed.values()))
    engine = "".join(f"{result['inference']:16.2f}" for result in timed.values())
    print(f"{'inference (engine threads)':48s}" + engine)
    print(f"{'utterances published':48s}" + "".join(f"{result['utterances']:16d}" for result in timed.values()))
    for label, result in timed.items():
        if result["missing"]:
            print(f"{label}: not timed (absent in that version): {', '.join(result['missing'])}")


if __name__ == "__main__":
    main()
