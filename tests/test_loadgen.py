"""The benchmarks' RTP load generator: right packets, every leg on its own 20 ms grid, never early."""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from loadgen import PAYLOAD_BYTES, LoadGenerator

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler to build the load generator"
)
LEGS, SECONDS = 40, 1.5


def receive(legs: int, seconds: float, processes: int) -> tuple[dict[int, list], object, bytes]:
    """Every datagram of a run, by SSRC, with its arrival time (monotonic ns)."""
    script = bytes(range(256)) * 40  # 64 packets of distinct payloads
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.5)
        packets: dict[int, list] = defaultdict(list)
        with LoadGenerator(sink.getsockname(), legs, seconds, script, processes=processes) as load:
            deadline = time.monotonic() + seconds + 10.0
            while sum(map(len, packets.values())) < legs * round(seconds * 50) and time.monotonic() < deadline:
                try:
                    data = sink.recv(2048)
                except TimeoutError:
                    continue
                packets[int.from_bytes(data[8:12], "big")].append((time.monotonic_ns(), data))
    return packets, load.report, script


@pytest.mark.parametrize("processes", [1, 3])
def test_every_leg_gets_its_packets_in_order(processes: int) -> None:
    packets, report, script = receive(LEGS, SECONDS, processes)
    ticks, count = round(SECONDS * 50), len(script) // PAYLOAD_BYTES
    assert report.legs == LEGS and report.packets == report.sent == LEGS * ticks and report.send_errors == 0
    assert sorted(packets) == [0x10000 + leg for leg in range(LEGS)]
    for leg in range(LEGS):
        got = packets[0x10000 + leg]
        assert len(got) == ticks
        for tick, (_, data) in enumerate(got):
            assert data[0] == 0x80 and data[1] == 0  # RTP version 2, PCMU
            assert int.from_bytes(data[2:4], "big") == tick
            assert int.from_bytes(data[4:8], "big") == tick * 160
            index = (leg * count // LEGS + tick) % count
            assert data[12:] == script[index * PAYLOAD_BYTES : (index + 1) * PAYLOAD_BYTES]


def test_pacing() -> None:
    """Each leg's packets arrive 20 ms apart, the legs spread evenly over the period, and the generator's own
    report says it sent on time. On this shared machine the receiver can be preempted too, so the arrival
    figures allow a few milliseconds that a quiet machine would not need."""
    packets, report, _ = receive(LEGS, SECONDS, 1)
    spread, firsts = [], []
    for leg in range(LEGS):
        arrival = np.array([at for at, _ in packets[0x10000 + leg]], dtype=np.int64) / 1e6
        offset = arrival - 20.0 * np.arange(arrival.size)
        spread.append(offset - np.median(offset))
        firsts.append(np.median(offset))
    spread = np.abs(np.concatenate(spread))
    assert np.median(spread) < 1.0 and np.quantile(spread, 0.9) < 5.0
    phases = np.array(firsts) - firsts[0]
    assert np.abs(phases - 20.0 * np.arange(LEGS) / LEGS).max() < 5.0, "leg i starts i/legs of a period later"
    assert report.late_p50_us < 1000 and report.late_max_us >= report.late_p99_us >= report.late_p50_us >= 0
