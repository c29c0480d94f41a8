"""Sharding RTP legs over worker processes: the kernel's split by SSRC, and a worker that dies mid-call."""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zmq
from fake_bundle import make_fake_bundle
from rtp_packets import build_rtp
from test_daemon_e2e import collect, free_port, speech_only, start_daemon

from emoscribe.audio import load_audio
from emoscribe.cues.binning import QuantileBinner
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.shard_worker import LinkDownstream
from emoscribe.daemon.shards import ShardPool
from emoscribe.daemon.udp_sockets import ssrc_socket_group
from emoscribe.daemon.worker_link import decode
from emoscribe.g711 import ulaw_encode
from emoscribe.messages import StreamEnded, StreamStarted

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT BPF is Linux only")


def drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(2048))
        except BlockingIOError:
            return got


def test_the_kernel_gives_each_ssrc_to_one_socket_of_the_group() -> None:
    group = ssrc_socket_group("127.0.0.1", 0, 3)
    port = group[0].getsockname()[1]
    assert all(sock.getsockname()[1] == port for sock in group)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for repeat in range(2):
            for ssrc in range(0xABC00, 0xABC00 + 30):
                sender.sendto(build_rtp(sequence=repeat, ssrc=ssrc), ("127.0.0.1", port))
        sender.sendto(b"short", ("127.0.0.1", port))
    time.sleep(0.2)
    received = [drain(sock) for sock in group]
    for index, datagrams in enumerate(received):
        ssrcs = [struct.unpack("!I", d[8:12])[0] for d in datagrams if len(d) >= 12]
        assert len(ssrcs) == 20 and all(ssrc % 3 == index for ssrc in ssrcs)
    assert b"short" in received[0], "a datagram without an SSRC goes to the first worker, which counts it"
    for sock in group:
        sock.close()


def test_a_taken_port_is_refused_with_its_number() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        plain.bind(("127.0.0.1", 0))
        port = plain.getsockname()[1]
        with pytest.raises(OSError, match=str(port)):
            ssrc_socket_group("127.0.0.1", port, 2)
    group = ssrc_socket_group("127.0.0.1", 0, 2)
    port = group[0].getsockname()[1]
    with pytest.raises(OSError, match=str(port)):
        ssrc_socket_group("127.0.0.1", port, 2)  # must not join another daemon's group and take half its legs
    for sock in group:
        sock.close()


def worker_pids(daemon_pid: int) -> list[int]:
    """The daemon's spawned workers, oldest first (multiprocessing's resource tracker is not one)."""
    children = Path(f"/proc/{daemon_pid}/task/{daemon_pid}/children").read_text().split()
    workers = [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return sorted(workers)


def send_leg(port: int, ssrc: int, payload: bytes, packets: range) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for index in packets:
            chunk = payload[index * 160 : (index + 1) * 160]
            if len(chunk) == 160:
                sender.sendto(
                    build_rtp(chunk, sequence=index, timestamp=index * 160, ssrc=ssrc), ("127.0.0.1", port)
                )
            time.sleep(0.004)


def test_a_worker_that_dies_ends_its_streams_and_is_replaced(tmp_path: Path, demo_dir: Path) -> None:
    bundle = make_fake_bundle(tmp_path / "bundle")
    port = free_port()
    process, subscriber = start_daemon(
        bundle, tmp_path, f"rtp://127.0.0.1:{port}", extra="[rtp]\ninactivity_timeout_s = 0.5\n", workers=2
    )
    assert collect(subscriber, lambda ms: any(m.kind == "heartbeat" for m in ms), timeout=60)
    speech = speech_only(load_audio(demo_dir / "03-01-05-02-01-01-10.flac")[0])
    audio = np.concatenate([np.zeros(16_000), speech, np.zeros(16_000)])[::2]
    payload = ulaw_encode(np.round(audio * 32767).astype(np.int16)).tobytes()

    send_leg(port, 0x1111, payload, range(80))  # odd SSRC: worker 1; 1.6 s of the call, speech has begun
    opened = collect(subscriber, lambda ms: any(isinstance(m, StreamStarted) for m in ms), 30)
    assert any(isinstance(m, StreamStarted) and m.stream == "rtp-00001111" for m in opened)
    victim = worker_pids(process.pid)[1]
    os.kill(victim, signal.SIGKILL)
    lost = collect(subscriber, lambda ms: any(isinstance(m, StreamEnded) for m in ms), 30)
    assert lost[-1].stream == "rtp-00001111" and lost[-1].reason == "worker_exit"

    send_leg(port, 0x3333, payload, range(len(payload) // 160))  # odd again: served by the new worker 1
    later = collect(subscriber, lambda ms: any(m.kind == "utterance" for m in ms), timeout=60)
    assert any(m.kind == "utterance" and m.stream == "rtp-00003333" for m in later)
    assert len(worker_pids(process.pid)) == 2 and victim not in worker_pids(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()
    subscriber.close()


class Recorder:
    """A Downstream that keeps what it is told."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.watched: dict[str, dict[str, Counter[str]]] = {}
        self.closed: list[tuple] = []

    def count(self, family: str, label: str, n: int = 1) -> None:
        self.counts[(family, label)] += n

    def watch_source(self, name: str, tallies: dict[str, Counter[str]]) -> None:
        self.watched[name] = tallies

    def stream_opened(self, info) -> None:
        pass

    def stream_closed(self, stream: str, reason: str, position) -> None:
        self.closed.append((stream, reason, position))


def test_worker_tallies_reach_the_main_process_per_worker(tmp_path: Path) -> None:
    pool = ShardPool(DaemonConfig(workers=2), QuantileBinner.default(), [])
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.bind(pool.endpoint)
    links = [LinkDownstream(pool.endpoint, index) for index in range(2)]
    for index, link in enumerate(links):
        link.watch_source(
            "RtpSource-0", {"rejected": Counter({"version": 10 + index}), "jitter": Counter(lost=index)}
        )
        link.count("frames", "rtp", 50)
        link.count("drops", "utterance_non_speech")
        link.flush_tally()
        link.close()
    recorder = Recorder()
    for _ in range(2):
        pool._dispatch(decode(pull.recv()), recorder)
    assert recorder.counts == {("frames", "rtp"): 100, ("drops", "utterance_non_speech"): 2}
    assert {name: {f: dict(t) for f, t in tallies.items()} for name, tallies in recorder.watched.items()} == {
        "worker0-RtpSource-0": {"rejected": {"version": 10}, "jitter": {"lost": 0}},
        "worker1-RtpSource-0": {"rejected": {"version": 11}, "jitter": {"lost": 1}},
    }
    pull.close()
    context.term()
