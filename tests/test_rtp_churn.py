"""Stream churn through the RTP source and the front end: thousands of streams opened and ended leave nothing.

Defect: every RTP stream ever opened kept memory (a 1 MB audio buffer per segmenter, written once by each leg and
kept resident by the C allocator after the streams had ended). Here 3 rounds of 700 concurrent SSRCs, half of
them loud, go through a real loopback socket in bursts and end on the inactivity timeout; after each round no
per-stream object may be left, and neither Python memory nor resident memory may grow beyond a small bound
between the first round (the warm-up) and the last. (What the C heap keeps converges to a bound set by the
number of streams open at once; ``benchmarks/rtp_churn.py`` measures the long-run slope.)
"""

from __future__ import annotations

import asyncio
import gc
import socket
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import soxr
from rtp_packets import build_rtp

from emoscribe.cues.binning import QuantileBinner
from emoscribe.cues.tracker import CueTracker
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.frontend import Frontend, segmenter_factory
from emoscribe.daemon.jitter import JitterBuffer
from emoscribe.daemon.rtp_streams import StreamPolicy
from emoscribe.daemon.segmenter import Segmenter
from emoscribe.daemon.sources import rtp_source
from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource
from emoscribe.daemon.vad import WebRtcVad
from emoscribe.g711 import ulaw_encode

STREAMS = 700
ROUNDS = 3
PACKETS = 3
TIMEOUT_S = 0.3
PER_STREAM = (rtp_source._Stream, JitterBuffer, Segmenter, WebRtcVad, CueTracker)


class Tally:
    """A Downstream that only counts."""

    shedder = None

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()

    def stream_opened(self, info) -> None:
        self.events["opened"] += 1

    def stream_closed(self, stream, reason, position) -> None:
        self.events["closed"] += 1

    def partial_cues(self, stream, body, seconds) -> None:
        self.events["partial"] += 1

    def utterance_ready(self, ready) -> None:
        self.events["utterance"] += 1

    def count(self, family, label, n=1) -> None:
        pass

    def watch_source(self, name, tallies) -> None:
        pass


def live(kind: type) -> int:
    return sum(1 for thing in gc.get_objects() if type(thing) is kind)


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def burst(ssrc_base: int) -> list[bytes]:
    tone = ulaw_encode(np.round(8000 * np.sin(np.arange(160) * 0.3)).astype(np.int16)).tobytes()
    silence = b"\xff" * 160
    return [
        build_rtp(tone if n % 2 else silence, sequence=k, timestamp=160 * k, ssrc=ssrc_base + n)
        for k in range(PACKETS)
        for n in range(STREAMS)
    ]


def test_thousands_of_ended_streams_leave_no_state_and_no_growth() -> None:
    config = DaemonConfig()
    downstream = Tally()
    frontend = Frontend(segmenter_factory(config), QuantileBinner.default(), 0.5, downstream)
    policy = StreamPolicy(max_streams=STREAMS, max_streams_per_address=STREAMS, inactivity_timeout=TIMEOUT_S)
    source = RtpSource(RtpConfig(port=0, policy=policy))
    after: list[dict[str, int]] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(frontend, stop))
        async with asyncio.timeout(10):
            await source.listening.wait()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for round_ in range(ROUNDS):
                for datagram in burst(0x10000 * (round_ + 1)):
                    sender.sendto(datagram, source.address)
                async with asyncio.timeout(30):
                    while downstream.events["closed"] < STREAMS * (round_ + 1):
                        await asyncio.sleep(0.02)
                gc.collect()
                counts = {kind.__name__: live(kind) for kind in PER_STREAM}
                after.append(
                    {
                        **counts,
                        "open": source.streams + len(frontend.streams),
                        "resamplers": live(soxr.ResampleStream),
                        "traced": tracemalloc.get_traced_memory()[0],
                        "rss_kb": rss_kb(),
                    }
                )
        stop.set()
        await task

    tracemalloc.start()
    try:
        asyncio.run(scenario())
    finally:
        tracemalloc.stop()
    assert downstream.events["opened"] == downstream.events["closed"] == STREAMS * ROUNDS
    assert source.stream_events == {"admitted": STREAMS * ROUNDS, "timeout": STREAMS * ROUNDS}
    assert source.packets == STREAMS * ROUNDS * PACKETS
    for state in after:
        assert state["open"] == 0
        assert all(state[kind.__name__] == 0 for kind in PER_STREAM), state
    first, last = after[0], after[-1]
    assert last["resamplers"] == first["resamplers"] <= STREAMS, "ended streams' resamplers are reused"
    assert last["traced"] - first["traced"] < 200 * 1024, "Python memory kept by ended streams"
    growth = (last["rss_kb"] - first["rss_kb"]) / (STREAMS * (ROUNDS - 1))
    assert growth < 20, f"{growth:.1f} kB of resident memory kept per ended stream (the defect kept ~450 kB)"
