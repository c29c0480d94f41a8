"""What the RTP benchmarks share: the daemon as a subprocess with a subscriber, RTP packets, process memory.

The daemon runs as deployed (``emoscribe run`` on an RTP port, optionally with worker processes); a thread
keeps every message it publishes; ``/metrics`` is read for the RTP source's counters. Without ``--bundle`` the
engine is the test suite's numpy-made bundle (no torch, no trained weights): the benchmarks are about the
receive path and the per-stream state, not about the model.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from emoscribe.audio import load_audio, resample
from emoscribe.clients.subscriber import Message, Subscriber
from emoscribe.g711 import ulaw_encode
from emoscribe.messages import StreamEnded

SAMPLES = 160
"""20 ms of 8 kHz G.711 per packet."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pcmu(path: Path, seconds: float | None = None) -> bytes:
    """A clip as 8 kHz mu-law bytes; with ``seconds``, that much from 50 ms before its speech begins."""
    audio = resample(load_audio(path)[0], 16_000, 8_000)
    if seconds is not None:
        onset = int(np.argmax(np.abs(audio) > 0.01 * np.abs(audio).max()))
        audio = audio[max(0, onset - 400) :][: int(seconds * 8_000)]
    return ulaw_encode(np.round(audio * 32767).clip(-32768, 32767).astype(np.int16)).tobytes()


def packets(ssrc: int, codes: bytes, payload_type: int = 0) -> list[bytes]:
    """RTP packets of 20 ms carrying ``codes``, sequence and timestamp from 0."""
    return [
        bytes([0x80, payload_type])
        + (k & 0xFFFF).to_bytes(2, "big")
        + ((k * SAMPLES) & 0xFFFFFFFF).to_bytes(4, "big")
        + ssrc.to_bytes(4, "big")
        + codes[k * SAMPLES : (k + 1) * SAMPLES]
        for k in range(len(codes) // SAMPLES)
    ]


def daemon_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every RTP benchmark takes: how many workers, which bundle."""
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bundle", help="bundle directory or default bundle name (default: a numpy-made one)")


def fake_bundle(folder: Path) -> Path:
    """The test suite's numpy-made bundle with speaker normalisation."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fake_bundle import make_fake_bundle

    return make_fake_bundle(folder / "bundle", speaker=True)


def rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (the workers of a sharded daemon)."""
    total = 0
    for member in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            pass
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class Daemon:
    """``emoscribe run`` on an RTP port with ``settings`` (TOML lines) added; every message is kept."""

    def __init__(self, bundle: Path | str, workers: int = 1, settings: str = "") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="emoscribe-bench-"))
        self.port = free_port(socket.SOCK_DGRAM)
        self.metrics_port = free_port()
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        config = self.folder / "daemon.toml"
        config.write_text(
            f'sources = ["rtp://127.0.0.1:{self.port}"]\nworkers = {workers}\n'
            f'[engine]\nbundle = "{bundle}"\n[publish]\nheartbeat_s = 0.5\n'
            f"[metrics]\nport = {self.metrics_port}\n{settings}\n"
        )
        self.messages: list[Message] = []
        self._stop = threading.Event()
        self._up = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(endpoint,), daemon=True)
        self._thread.start()
        self.log = (self.folder / "daemon.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emoscribe", "run", "--config", str(config), "--endpoint", endpoint],
            stderr=self.log,
        )
        if not self._up.wait(180):
            self.stop()
            raise RuntimeError(f"the daemon did not come up; see {self.log.name}")

    def _listen(self, endpoint: str) -> None:
        subscriber = Subscriber(endpoint)
        while not self._stop.is_set():
            message = subscriber.receive(100)
            if message is not None:
                self._up.set()
                self.messages.append(message)
        subscriber.close()

    def ended(self) -> int:
        """Streams whose end was published."""
        return sum(1 for m in self.messages if isinstance(m, StreamEnded))

    def wait_ended(self, count: int, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.ended() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def utterances(self) -> dict[str, list[dict[str, Any]]]:
        """Published utterances by stream."""
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in self.messages:
            if message.kind == "utterance":
                found[message.stream].append(message.to_payload())
        return dict(found)

    def rss_kb(self) -> int:
        return rss_kb(self.process.pid)

    def counters(self, metric: str) -> Counter[str]:
        """A counter of ``/metrics`` summed over sources, by its second label (e.g. the reason)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        found: Counter[str] = Counter()
        for name, labels, value in re.findall(r"^(\w+)\{([^}]*)\} (\S+)$", text, re.MULTILINE):
            if name == f"{metric}_total":
                label = [v for k, v in re.findall(r'(\w+)="([^"]*)"', labels) if k != "source"]
                found[label[0] if label else ""] += int(float(value))
        return found

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        time.sleep(0.5)
        self._stop.set()
        self._thread.join()
        self.log.close()
        return code


def send_paced(sock: socket.socket, port: int, datagrams: list[bytes], rate: float) -> None:
    """Send ``datagrams`` to the daemon at ``rate`` per second (in blocks of 1 ms)."""
    block = max(1, int(rate / 1000))
    started = time.perf_counter()
    address = ("127.0.0.1", port)
    for first in range(0, len(datagrams), block):
        for datagram in datagrams[first : first + block]:
            sock.sendto(datagram, address)
        delay = started + (first + block) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
