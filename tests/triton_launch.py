"""Starting and stopping ``triton_server.py`` (a real Triton server on free loopback ports) from any interpreter;
the server itself runs under ``.venv-triton``'s, which has pytriton."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).with_name("triton_server.py")


class ServerStartError(RuntimeError):
    """The stand-in could not start here; the message holds the end of its log."""


def triton_python() -> Path:
    """The interpreter with pytriton: ``$EMOSCRIBE_TRITON_PYTHON``, else the repository's ``.venv-triton``."""
    return Path(os.environ.get("EMOSCRIBE_TRITON_PYTHON", ROOT / ".venv-triton" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(repository: Path, workspace: Path, timeout_s: float = 180.0) -> Iterator[str]:
    """The stand-in serving ``repository`` on free loopback ports; yields its gRPC ``host:port``."""
    python = triton_python()
    if not python.exists():
        raise ServerStartError(
            f"no {python} (python3 -m venv .venv-triton && .venv-triton/bin/pip install nvidia-pytriton==0.7.0 "
            "onnxruntime; .ci/run does this)"
        )
    ports = [free_port() for _ in range(3)]
    workspace.mkdir(parents=True, exist_ok=True)
    log = workspace / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [str(python), str(SERVER), str(repository), *map(str, ports), str(workspace / "pytriton")],
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while "ready" not in log.read_text().splitlines():
            if server.poll() is not None or time.monotonic() > deadline:
                raise ServerStartError(log.read_text()[-2000:])
            time.sleep(0.2)
        yield f"127.0.0.1:{ports[0]}"
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
