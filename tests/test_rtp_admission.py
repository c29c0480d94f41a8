"""Admission of RTP streams: a flood of idle streams no longer locks out real calls.

Defect: one silence packet a second from each of 2,000 SSRCs held every slot of ``max_streams``, and a call that
started afterwards got no message at all. The table's rules are tested alone first, then through a real socket:
a silent-SSRC flood plus a late call, whose utterance must come out.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from rtp_packets import build_rtp
from test_rtp_churn import Tally

from emoscribe.audio import load_audio, resample
from emoscribe.cues.binning import QuantileBinner
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.frontend import Frontend, segmenter_factory
from emoscribe.daemon.rtp import RtpError
from emoscribe.daemon.rtp_streams import DORMANT_PER_STREAM, EVICTABLE_AFTER_S, StreamPolicy, StreamTable
from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource
from emoscribe.g711 import ulaw_encode


@dataclass
class Leg:
    host: str
    opened: float
    last_seen: float = 0.0
    last_voice: float | None = None


def table(**policy: object) -> StreamTable[Leg]:
    return StreamTable(StreamPolicy(**policy), Counter())  # type: ignore[arg-type]


def open_leg(
    streams: StreamTable[Leg], key: int, now: float, speech: bool = False, host: str = "10.0.0.1"
) -> None:
    victim = streams.admission(key, host, now, speech)
    if victim is not None:
        streams.remove(*victim)
    streams.add(key, Leg(host, now, now), speech)


def refusal(streams: StreamTable[Leg], key: int, now: float, speech: bool = False, host: str = "10.0.0.1") -> str:
    with pytest.raises(RtpError) as caught:
        streams.admission(key, host, now, speech)
    return caught.value.reason


def test_one_address_cannot_take_more_than_its_share() -> None:
    streams = table(max_streams=10, max_streams_per_address=2)
    open_leg(streams, 1, 0.0)
    open_leg(streams, 2, 0.5, speech=True)
    assert refusal(streams, 3, 0.9) == "address_limit"
    open_leg(streams, 3, 0.9, host="10.0.0.2")
    assert streams.admission(4, "10.0.0.1", 1.2, False) == (1, "evicted_unvoiced"), "its own, not another's"
    streams.remove(1, "evicted_unvoiced")
    open_leg(streams, 4, 1.2)
    assert len(streams) == 3


def test_a_full_table_evicts_the_oldest_unvoiced_stream_then_the_longest_silent() -> None:
    streams = table(max_streams=3)
    open_leg(streams, 1, 0.0)
    open_leg(streams, 2, 0.1, speech=True)
    open_leg(streams, 3, 0.2)
    assert refusal(streams, 4, 0.9) == "too_many_streams", "nobody silent long enough yet"
    assert streams.admission(4, "10.0.0.1", EVICTABLE_AFTER_S, False) == (1, "evicted_unvoiced")
    streams.remove(1, "evicted_unvoiced")
    open_leg(streams, 4, EVICTABLE_AFTER_S)
    streams.heard(2, 1.5, speech=True)
    for key in (3, 4):
        streams.heard(key, 1.5, speech=True)  # everyone has spoken now; 2 spoke first at 1.5
    assert streams.admission(5, "10.0.0.1", 2.6, False) == (2, "evicted_silent")
    assert streams.events == {"admitted": 4, "evicted_unvoiced": 1}


def test_a_stream_ended_without_speech_stays_closed_until_it_speaks() -> None:
    streams = table(unvoiced_timeout=5.0, inactivity_timeout=2.0)
    open_leg(streams, 1, 0.0)
    open_leg(streams, 2, 0.0)
    for now in np.arange(0.5, 5.01, 0.5):
        streams.heard(1, float(now), speech=False)
        streams.heard(2, float(now), speech=now == 4.0)
    assert streams.due(5.0, 0.06) == ([(1, "unvoiced")], [])
    streams.remove(1, "unvoiced")
    assert refusal(streams, 1, 5.5) == "dormant"
    assert streams.admission(1, "10.0.0.1", 6.0, True) is None
    open_leg(streams, 1, 6.0, speech=True)
    assert streams.events == {"admitted": 2, "unvoiced": 1, "readmitted": 1}
    assert streams.due(6.0 + 2.0, 0.06) == ([(2, "timeout"), (1, "timeout")], [])


def test_dormant_streams_are_remembered_within_a_bound() -> None:
    streams = table(max_streams=2)
    for key in range(DORMANT_PER_STREAM * 2 + 5):
        open_leg(streams, key, 10.0 * key)
        streams.remove(key, "unvoiced")
    assert len(streams._dormant) == DORMANT_PER_STREAM * 2
    assert streams.admission(0, "10.0.0.1", 1e6, False) is None, "the oldest were forgotten"


def call_packets(demo_dir: Path, ssrc: int) -> list[bytes]:
    """A demo sentence as PCMU packets."""
    audio = resample(load_audio(demo_dir / "03-01-05-02-01-01-10.flac")[0], 16_000, 8_000)
    codes = ulaw_encode(np.round(audio * 32767).astype(np.int16)).tobytes()
    return [
        build_rtp(codes[k * 160 : (k + 1) * 160], sequence=k, timestamp=160 * k, ssrc=ssrc)
        for k in range(len(codes) // 160)
    ]


class Utterances(Tally):
    def __init__(self) -> None:
        super().__init__()
        self.streams: list[str] = []

    def utterance_ready(self, ready) -> None:
        self.streams.append(ready.stream)


def flood_then_call(demo_dir: Path, policy: StreamPolicy, flood: int, call_host: str) -> tuple[RtpSource, list]:
    """``flood`` SSRCs send silence every 100 ms from 127.0.0.1; after 1.3 s a call starts from ``call_host``
    (at twice real time) while the flood goes on."""
    downstream = Utterances()
    frontend = Frontend(segmenter_factory(DaemonConfig()), QuantileBinner.default(), 0.0, downstream)
    source = RtpSource(RtpConfig(port=0, policy=policy))
    call = call_packets(demo_dir, 0xCA11)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(frontend, stop))
        await source.listening.wait()
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller,
        ):
            caller.bind((call_host, 0))
            tick = 0
            while tick < 13 + len(call) // 10 + 5:
                for ssrc in range(flood):
                    flooder.sendto(build_rtp(sequence=tick, timestamp=800 * tick, ssrc=ssrc), source.address)
                if tick >= 13:
                    for packet in call[(tick - 13) * 10 : (tick - 12) * 10]:
                        caller.sendto(packet, source.address)
                tick += 1
                await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(scenario())
    return source, downstream.streams


def test_a_late_call_gets_through_a_flood_of_silent_streams(demo_dir: Path) -> None:
    policy = StreamPolicy(max_streams=30, max_streams_per_address=30)
    source, utterances = flood_then_call(demo_dir, policy, flood=30, call_host="127.0.0.1")
    assert "rtp-0000ca11" in utterances
    assert source.stream_events["evicted_unvoiced"] == 1
    assert source.rejected["dormant"] > 0, "the evicted flood stream stays out"
    assert "too_many_streams" not in source.rejected


def test_a_flooding_address_is_held_to_its_share(demo_dir: Path) -> None:
    policy = StreamPolicy(max_streams=40, max_streams_per_address=20)
    source, utterances = flood_then_call(demo_dir, policy, flood=30, call_host="127.0.0.2")
    assert "rtp-0000ca11" in utterances
    assert source.rejected["address_limit"] >= 10, "the flood's 10 extra SSRCs wait, then evict its own"
    assert source.stream_events["evicted_unvoiced"] >= 10
    assert source.rejected["dormant"] > 0
