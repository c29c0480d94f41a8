"""A daemon run as users run it (a subprocess on loopback ports), for the tests of its clients and monitoring."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveDaemon:
    process: subprocess.Popen
    endpoint: str
    metrics_url: str
    log: Path


@contextlib.contextmanager
def live_daemon(
    bundle: Path | str, folder: Path, *arguments: str, endpoint: str | None = None
) -> Iterator[LiveDaemon]:
    """The daemon with ``arguments`` (sources, ``--demo``) publishing on ``endpoint`` (a free port if none),
    serving metrics on a free port, logging to ``folder/daemon.log``; stopped with SIGTERM on exit. An RTP
    source keeps it running after its files end."""
    endpoint = endpoint or f"tcp://127.0.0.1:{free_port()}"
    metrics_port = free_port()
    config = folder / "daemon.toml"
    config.write_text(
        "[publish]\nheartbeat_s = 0.5\njoin_delay_s = 1.0\n"
        f"[engine]\nbundle = '{bundle}'\n[metrics]\nenabled = true\nport = {metrics_port}\n"
    )
    command = [sys.executable, "-m", "emoscribe", "run", "--config", str(config), "--endpoint", endpoint]
    log = (folder / "daemon.log").open("w")
    process = subprocess.Popen([*command, *arguments], stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield LiveDaemon(process, endpoint, f"http://127.0.0.1:{metrics_port}/metrics", folder / "daemon.log")
    finally:
        stop(process, signal.SIGTERM, 20)
        log.close()


def stop(process: subprocess.Popen, signum: int, timeout: float) -> None:
    """Ask with ``signum``, wait ``timeout`` seconds, then kill."""
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
