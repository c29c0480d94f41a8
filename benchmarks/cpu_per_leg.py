"""CPU cost per leg-second of the daemon, inference apart, by stage, and the legs per core it projects.

Usage: python benchmarks/cpu_per_leg.py [--legs 8] [--seconds 40] [--workers 1,2] [--bundle tiny.en]
       [--before DIR]

Two measurements of the same call (``calls.py``: the demo sentences with 1.5 s pauses as 8 kHz PCMU, each leg
starting at another point of it):

1. **Deployed**: ``emoscribe run`` on RTP in a subprocess, ``--legs`` real-time legs from the load generator
   (``loadgen/``), CPU time of every thread of the daemon's processes read from ``/proc`` (``schedstat``) over
   the run after its first ``WARM_S`` seconds. In the main process, the threads other than the event loop's
   and ZeroMQ's I/O threads are the engine's (the batcher thread and ONNX Runtime's pool): their CPU is
   *inference*; everything else (the RTP receive, the front ends, describe, publish, the worker link, the
   event loop) is *outside inference*, the figure a GPU node's core count is divided by. Once with each
   ``--workers`` count.
2. **Stages**: the same packets in one process, straight into the RTP source's receive handler and on through
   the front end (segmenter, VAD, speech gate, partial and final cues) to a sink that keeps nothing, with an
   exclusive CPU timer (``time.thread_time``) around each stage: a stage's figure excludes the stages it
   calls. Socket reads, the event loop and the service's work are not in it (they are in the deployed figure).

``--before DIR`` repeats both with the ``emoscribe`` package of another checkout (``DIR`` holding an
``emoscribe/`` folder, e.g. ``git worktree add /tmp/before main``), in the same run, for a before/after.
Figures are CPU milliseconds per leg-second (one leg for one second of its audio); legs per core is 1000
divided by that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from calls import call_script, expected_utterances, packets_of
from loadgen import LoadGenerator
from machine import describe_machine

WARM_S = 3.0
"""Leg seconds before the CPU clock starts: every leg has opened its stream by then."""
HERE = Path(__file__).resolve().parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def wait_for_heartbeat(endpoint: str, daemon: subprocess.Popen, timeout: float = 180.0):
    from emoscribe.clients.subscriber import Subscriber

    subscriber = Subscriber(endpoint, ["utterance.", "heartbeat"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} before its first heartbeat")
        message = subscriber.receive(200)
        if message is not None and message.kind == "heartbeat":
            return subscriber
    raise RuntimeError(f"the daemon did not come up within {timeout:.0f} s")


def deployed(tree: Path, bundle: str, legs: int, seconds: float, workers: int, script: bytes, ends) -> dict:
    """One run of the daemon from ``tree`` under ``legs`` real-time legs; CPU split and utterances received."""
    port, endpoint = free_port(socket.SOCK_DGRAM), f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "daemon.toml"
        config.write_text(
            f'sources = ["rtp://127.0.0.1:{port}"]\nworkers = {workers}\n[engine]\nbundle = "{bundle}"\n'
            "[rtp]\ninactivity_timeout_s = 1.0\n[metrics]\nenabled = false\n"
        )
        with (Path(folder) / "daemon.log").open("w") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "emoscribe", "run", "--config", str(config), "--endpoint", endpoint],
                stderr=log,
                env=env,
                cwd=tree,
            )
        try:
            subscriber = wait_for_heartbeat(endpoint, daemon)
            utterances = 0
            with LoadGenerator(("127.0.0.1", port), legs, seconds, script) as load:
                started = time.monotonic()

                def drain(until: float) -> None:
                    nonlocal utterances
                    while time.monotonic() < until:
                        message = subscriber.receive(100)
                        utterances += message is not None and message.kind == "utterance"

                drain(started + WARM_S)
                first = thread_cpu(daemon.pid)
                drain(started + seconds - 0.1)
                last = thread_cpu(daemon.pid)
                measured = seconds - 0.1 - WARM_S
            drain(time.monotonic() + 3.0)
            subscriber.close()
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    inference, outside = split_inference(daemon.pid, first, last)
    leg_seconds = legs * measured
    return {
        "workers": workers,
        "inference_ms": 1000 * inference / leg_seconds,
        "outside_ms": 1000 * outside / leg_seconds,
        "utterances": utterances,
        "expected_min": expected_utterances(script, ends, legs, seconds),
        "pacing_p99_us": load.report.late_p99_us if load.report else float("nan"),
    }


# --- 2. the front end's stages, in this process ------------------------------------------------------------------
class StageClock:
    """Exclusive CPU time per stage: entering a stage pauses the one it was called from."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._since = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        now = time.thread_time()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
        self._stack.append(name)
        self._since = now
        try:
            yield
        finally:
            now = time.thread_time()
            self.seconds[self._stack.pop()] += now - self._since
            self._since = now

    def wrap(self, owner: object, attribute: str, name: str) -> None:
        original: Callable = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)


STAGES = (
    ("emoscribe.daemon.sources.rtp_source", "RtpSource.receive", "RTP receive (parse, G.711, jitter, resample)"),
    ("emoscribe.daemon.frontend", "Frontend.frame", "front end, per frame"),
    ("emoscribe.daemon.segmenter", "Segmenter.push", "segmenter + VAD"),
    ("emoscribe.daemon.segmenter", "Segmenter.flush", "segmenter + VAD"),
    ("emoscribe.daemon.speech_gate", "check", "speech gate"),
    ("emoscribe.daemon.frontend", "Frontend._partial", "partial cues"),
    ("emoscribe.daemon.frontend", "extract_cues", "final cues"),
)
"""What is timed: (module, attribute, stage). The names exist in every version this benchmark compares."""


class NullDownstream:
    """Counts what a front end hands on and keeps nothing."""

    def __init__(self) -> None:
        self.utterances = self.partials = 0

    def stream_opened(self, info) -> None: ...

    def partial_cues(self, stream, body, seconds) -> None:
        self.partials += 1

    def utterance_ready(self, ready) -> None:
        self.utterances += 1

    def stream_closed(self, stream, reason, position) -> None: ...

    def count(self, family, label, n=1) -> None: ...

    def watch_source(self, name, rejected) -> None: ...


def stages(legs: int, seconds: float) -> dict:
    """Per-stage CPU ms per leg-second of the front end on ``legs`` legs of ``seconds`` each."""
    import importlib

    from emoscribe.cues.binning import QuantileBinner
    from emoscribe.daemon.config import DaemonConfig
    from emoscribe.daemon.frontend import Frontend, segmenter_factory
    from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource

    clock = StageClock()
    for module, attribute, name in STAGES:
        owner: object = importlib.import_module(module)
        *path, leaf = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        clock.wrap(owner, leaf, name)
    script, _ = call_script()
    ticks = packets_of(script, legs, seconds)
    config = DaemonConfig()
    sink = NullDownstream()
    frontend = Frontend(segmenter_factory(config), QuantileBinner.default(), config.cues.partial_interval_s, sink)

    async def replay() -> float:
        source = RtpSource(RtpConfig(port=0, inactivity_timeout=3600.0))
        stop = asyncio.Event()
        running = asyncio.create_task(source.run(frontend, stop))
        await source.listening.wait()
        loop = asyncio.get_running_loop()
        began = time.thread_time()
        for row in ticks:
            now = loop.time()
            for datagram in row:
                source.receive(datagram, ("127.0.0.1", 5000), now)
        stop.set()
        await running
        return time.thread_time() - began

    total = asyncio.run(replay())
    leg_seconds = legs * seconds
    figures = {name: 1000 * value / leg_seconds for name, value in clock.seconds.items()}
    figures["other (sink, replay loop)"] = 1000 * (total - sum(clock.seconds.values())) / leg_seconds
    return {"stages": figures, "total": 1000 * total / leg_seconds, "utterances": sink.utterances,
            "partials": sink.partials}  # fmt: skip


def stages_of(tree: Path, legs: int, seconds: float) -> dict:
    """:func:`stages` with the ``emoscribe`` of ``tree``, in a child process."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"}
    command = [sys.executable, __file__, "--stages-json", f"{legs},{seconds}"]
    return json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)


# --- report ------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--workers", default="1,2", help="worker counts of the deployed runs")
    parser.add_argument("--bundle", default="tiny.en")
    parser.add_argument("--before", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--stages-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages_json:
        legs, seconds = args.stages_json.split(",")
        print(json.dumps(stages(int(legs), float(seconds))))
        return

    trees = {"this checkout": HERE.parent}
    if args.before is not None:
        trees = {"before": args.before.resolve(), "after": HERE.parent}
    script, ends = call_script()
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{args.legs} legs x {args.seconds:.0f} s of the demo call (8 kHz PCMU); bundle {args.bundle}\n")
    staged = {label: stages_of(tree, args.legs, args.seconds) for label, tree in trees.items()}
    names = list(dict.fromkeys(name for result in staged.values() for name in result["stages"]))
    print("front-end stages, CPU ms per leg-second (one process, exclusive timers)")
    print(f"{'stage':48s}" + "".join(f"{label:>16s}" for label in trees))
    for name in names:
        print(f"{name:48s}" + "".join(f"{staged[label]['stages'].get(name, 0.0):16.2f}" for label in trees))
    print(f"{'total':48s}" + "".join(f"{staged[label]['total']:16.2f}" for label in trees))
    counts = "".join(f"{staged[label]['utterances']:>9d} / {staged[label]['partials']:<5d}" for label in trees)
    print(f"{'utterances / partial cue messages':48s}" + counts)

    print("\ndeployed daemon, CPU ms per leg-second (all its processes, from /proc)")
    print("tree            workers  outside inference  inference  all   legs/core outside  all   utterances  "
          "loadgen p99 us")  # fmt: skip
    for label, tree in trees.items():
        for workers in (int(w) for w in args.workers.split(",")):
            r = deployed(tree, args.bundle, args.legs, args.seconds, workers, script, ends)
            every = r["outside_ms"] + r["inference_ms"]
            print(
                f"{label:16s}{workers:7d}  {r['outside_ms']:17.2f}  {r['inference_ms']:9.2f}  {every:5.2f}"
                f"  {1000 / r['outside_ms']:17.0f}  {1000 / every:4.0f}"
                f"  {r['utterances']:5d} of ≥{r['expected_min']:<4d}"
                f"  {r['pacing_p99_us']:8.0f}"
            )


if __name__ == "__main__":
    main()
