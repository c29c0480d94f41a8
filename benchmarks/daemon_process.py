"""The daemon as the benchmarks run it: ``emoscribe run`` on one RTP port in a subprocess, up once it beats."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from emoscribe.clients.subscriber import Subscriber


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DaemonProcess:
    """A daemon listening for RTP on ``rtp_port`` and publishing on ``endpoint``, started by ``with``.

    ``settings`` is the TOML after the sources line. ``tree`` runs the ``emoscribe`` of another checkout;
    ``launcher`` replaces ``-m emoscribe`` (a script that wraps it). On entry it waits for the first heartbeat
    (bundle checked, engine warm, every worker ready) and ``subscriber`` holds what was asked for in ``topics``.
    """

    def __init__(
        self,
        settings: str,
        topics: Sequence[str] = ("utterance.",),
        tree: Path | None = None,
        launcher: Sequence[str] = ("-m", "emoscribe"),
    ) -> None:
        self.rtp_port, self.endpoint = free_port(socket.SOCK_DGRAM), f"tcp://127.0.0.1:{free_port()}"
        self.settings, self.topics, self.tree, self.launcher = settings, topics, tree, launcher
        self.process: subprocess.Popen[bytes] | None = None
        self.cpu_s = float("nan")
        """CPU seconds (user + system) the daemon process used, once it has exited (its workers not counted)."""

    def __enter__(self) -> DaemonProcess:
        self._folder = tempfile.TemporaryDirectory()
        config = Path(self._folder.name) / "daemon.toml"
        config.write_text(f'sources = ["rtp://127.0.0.1:{self.rtp_port}"]\n{self.settings}')
        env = {**os.environ, "PYTHONPATH": str(self.tree)} if self.tree else None
        self.subscriber = Subscriber(self.endpoint, [*self.topics, "heartbeat"])
        with (Path(self._folder.name) / "daemon.log").open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.launcher, "run", "--config", str(config), "--endpoint", self.endpoint],
                stderr=log,
                env=env,
                cwd=self.tree,
            )
        try:
            self._wait_for_heartbeat()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_for_heartbeat(self, timeout: float = 180.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (Path(self._folder.name) / "daemon.log").read_text()[-2000:]
                raise RuntimeError(f"the daemon exited with {self.process.returncode} before it was up:\n{log}")
            message = self.subscriber.receive(200)
            if message is not None and message.kind == "heartbeat":
                return
        raise RuntimeError(f"the daemon did not come up within {timeout:.0f} s")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            _, status, usage = os.wait4(self.process.pid, 0)
            self.process.returncode = os.waitstatus_to_exitcode(status)
            self.cpu_s = usage.ru_utime + usage.ru_stime
        self.subscriber.close()
        self._folder.cleanup()
