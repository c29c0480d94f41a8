"""An RTP load generator that can drive a many-core node: thousands of real-time call legs, each on a 20 ms grid.

The sending is done by a small C program (``loadgen.c`` beside this file), compiled with the system's C compiler
on first use into a folder under the temporary directory named by the source's hash; no binary is kept in the
repository. One process sends many legs per wake-up with ``sendmmsg``; :class:`LoadGenerator` can split the legs
over several processes. Each process reports how late it sent its packets (never early), so every run states
its own pacing error.

Usage from a benchmark::

    with LoadGenerator(("127.0.0.1", port), legs=16, seconds=20.0, script=pcmu_bytes) as load:
        ...                      # the legs are being sent
    report = load.report         # packets sent, lateness percentiles, CPU seconds
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType

SOURCE = Path(__file__).with_name("loadgen.c")
PACKET_S = 0.02
PAYLOAD_BYTES = 160
"""20 ms of 8 kHz PCMU per packet."""


class LoadgenError(RuntimeError):
    """The generator could not be built or run; the message says why."""


def build() -> Path:
    """The compiled generator for the current source, built now if it is not there yet."""
    source = SOURCE.read_bytes()
    folder = Path(tempfile.gettempdir()) / f"emoscribe-loadgen-{hashlib.sha256(source).hexdigest()[:16]}"
    binary = folder / "loadgen"
    if binary.is_file():
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise LoadgenError("no C compiler found (set CC or install gcc) to build the load generator")
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"loadgen.{os.getpid()}"
    done = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LoadgenError(f"building {SOURCE.name} with {compiler} failed:\n{done.stderr}")
    partial.replace(binary)
    return binary


@dataclass(frozen=True, slots=True)
class Report:
    """What the generator did. Lateness (send call returned minus due time, in microseconds) over several
    processes is the worst process's percentile, an upper bound of the pooled one."""

    legs: int
    packets: int
    sent: int
    send_errors: int
    late_p50_us: float
    late_p99_us: float
    late_p999_us: float
    late_max_us: float
    wall_s: float
    cpu_s: float
    realtime: bool
    interrupted: bool

    @classmethod
    def combine(cls, parts: list[dict]) -> Report:
        summed = ("legs", "packets", "sent", "send_errors", "cpu_s")
        values = {}
        for field in fields(cls):
            column = [part[field.name] for part in parts]
            if field.name in summed:
                values[field.name] = sum(column)
            elif field.name == "realtime":
                values[field.name] = all(column)
            elif field.name == "interrupted":
                values[field.name] = any(column)
            else:
                values[field.name] = max(column)
        return cls(**values)


class LoadGenerator:
    """``legs`` real-time RTP legs to ``target`` for ``seconds``, the payload cycling through ``script``.

    Leg ``i`` (SSRC ``ssrc + i``) starts ``i / legs`` of the way into the script and sends its packets
    ``i / legs`` of a period after the others' grid, so the legs' speech ends and packets spread out as
    independent calls' do. ``processes`` splits the legs (leg ``i`` goes to process ``i mod processes``);
    ``realtime`` asks for SCHED_FIFO scheduling (granted to root or with CAP_SYS_NICE, else silently not: the
    report says which), which keeps the pacing within a millisecond on a loaded machine.
    """

    def __init__(
        self,
        target: tuple[str, int],
        legs: int,
        seconds: float,
        script: bytes,
        *,
        processes: int = 1,
        realtime: bool = True,
        payload_type: int = 0,
        ssrc: int = 0x10000,
    ) -> None:
        if legs < 1 or seconds <= 0 or not 1 <= processes <= legs:
            raise ValueError(
                f"need legs ≥ 1, seconds > 0 and 1 ≤ processes ≤ legs, got {legs}, {seconds}, {processes}"
            )
        if len(script) < PAYLOAD_BYTES:
            raise ValueError(f"the script holds {len(script)} bytes, less than one packet ({PAYLOAD_BYTES})")
        self.target, self.legs, self.seconds, self.script = target, legs, seconds, script
        self.processes, self.realtime, self.payload_type, self.ssrc = processes, realtime, payload_type, ssrc
        self.report: Report | None = None
        self._running: list[subprocess.Popen[str]] = []
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> LoadGenerator:
        binary = build()
        self._folder = tempfile.TemporaryDirectory(prefix="emoscribe-loadgen-")
        script = Path(self._folder.name) / "script.bin"
        script.write_bytes(self.script)
        for first in range(self.processes):
            count = len(range(first, self.legs, self.processes))
            command = [str(binary), "--host", self.target[0], "--port", str(self.target[1])]
            command += ["--legs", str(count), "--total-legs", str(self.legs), "--first-leg", str(first)]
            command += ["--stride", str(self.processes), "--seconds", str(self.seconds), "--script", str(script)]
            command += ["--payload-type", str(self.payload_type), "--ssrc", str(self.ssrc)]
            command += ["--realtime", str(int(self.realtime))]
            self._running.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        return self

    def wait(self, timeout: float | None = None) -> Report:
        """Until every process has sent its legs; the combined report."""
        parts = []
        for process in self._running:
            out, err = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise LoadgenError(f"the load generator failed (exit {process.returncode}): {err.strip()}")
            parts.append(json.loads(out))
        self._running.clear()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self.report = Report.combine(parts)
        return self.report

    def stop(self) -> Report:
        """End the legs now (the processes finish their current wake-up and report)."""
        for process in self._running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return self.wait(timeout=10.0)

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._running:
            if kind is None:
                self.wait(timeout=self.seconds + 30.0)
            else:
                self.stop()
