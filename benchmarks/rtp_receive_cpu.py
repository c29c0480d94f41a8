"""CPU cost of the RTP receive path: socket reads, parsing, G.711 decode, jitter buffer, resampling to 16 kHz.

Usage: python benchmarks/rtp_receive_cpu.py [--legs 200] [--seconds 10] [--direct BATCH]

A sender process plays ``legs`` real-time PCMU legs (20 ms packets, the legs spread evenly over each 20 ms as
a media server sends them) to an ``RtpSource`` on loopback whose sink only counts the frames, so everything
measured is the source's own work. The figure is the receiving process's CPU time (user + system, from
``time.process_time``) while the packets flow, per packet accepted and per second of audio of one leg (50
packets); the sender's CPU is not counted. ``--direct`` times the source's handling alone (parsing, decoding,
jitter buffer, resampling; no socket reads), which a loaded machine disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from typing import Any

import numpy as np
from machine import describe_machine

from emoscribe.daemon.frames import Frame, StreamInfo
from emoscribe.daemon.rtp_streams import StreamPolicy
from emoscribe.daemon.sources.rtp_source import RtpConfig, RtpSource
from emoscribe.g711 import ulaw_encode

PTIME_S = 0.02
SAMPLES = 160


def packets_of_leg(leg: int, count: int) -> list[bytes]:
    """``count`` PCMU packets of noise shaped like speech: 1 s talkspurts at -20 dBFS, 1 s pauses at -60."""
    rng = np.random.default_rng(leg)
    level = np.where((np.arange(count) // 50) % 2 == 0, 0.1, 0.001).repeat(SAMPLES)
    codes = ulaw_encode(np.round(rng.standard_normal(count * SAMPLES) * level * 32767).astype(np.int16))
    header = bytes([0x80, 0])
    return [
        header
        + (k % 65536).to_bytes(2, "big")
        + (k * SAMPLES).to_bytes(4, "big")
        + (0x10000 + leg).to_bytes(4, "big")
        + codes[k * SAMPLES : (k + 1) * SAMPLES].tobytes()
        for k in range(count)
    ]


def send(address: tuple[str, int], legs: int, count: int, start: float, late: Any) -> None:
    """Send packet k of leg i at ``start + k * 20 ms + i * 20 ms / legs``; ``late`` counts packets sent more
    than 5 ms after their time (the sender could not keep up)."""
    legs_packets = [packets_of_leg(leg, count) for leg in range(legs)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for k in range(count):
            for leg in range(legs):
                due = start + k * PTIME_S + leg * PTIME_S / legs
                wait = due - time.time()
                if wait > 0.0005:
                    time.sleep(wait)
                elif wait < -0.005:
                    late.value += 1
                sock.sendto(legs_packets[leg][k], address)


class CountingSink:
    def __init__(self) -> None:
        self.samples = 0
        self.streams = 0

    def stream_started(self, info: StreamInfo) -> None:
        self.streams += 1

    def frame(self, frame: Frame) -> None:
        self.samples += frame.samples.size

    def stream_ended(self, stream: str, reason: str) -> None:
        pass


async def receive(legs: int, seconds: float) -> tuple[float, float, int, CountingSink, RtpSource]:
    policy = StreamPolicy(max_streams=legs, max_streams_per_address=legs)
    source = RtpSource(RtpConfig(port=0, policy=policy))
    sink = CountingSink()
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    await source.listening.wait()
    count = round(seconds / PTIME_S)
    start = time.time() + 1.0
    context = multiprocessing.get_context("spawn")
    late = context.Value("q", 0)
    sender = context.Process(target=send, args=(source.address, legs, count, start, late))
    sender.start()
    await asyncio.sleep(start - time.time())
    cpu0, wall0 = time.process_time(), time.monotonic()
    while sender.is_alive():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    stop.set()
    await task
    return cpu, wall, late.value, sink, source


def handle_directly(legs: int, seconds: float, batch: int, repeats: int = 3) -> float:
    """The source's handling alone (no socket, no event loop): the same packets handed to ``receive`` in
    batches of ``batch``, as a wake-up under that load reads them; the best CPU microseconds per packet of
    ``repeats`` runs (the least disturbed by other work on the machine)."""
    count = round(seconds / PTIME_S)
    legs_packets = [packets_of_leg(leg, count) for leg in range(legs)]
    arrivals = [(legs_packets[leg][k], ("127.0.0.1", 4000)) for k in range(count) for leg in range(legs)]
    best = float("inf")
    for _ in range(repeats):
        policy = StreamPolicy(max_streams=legs, max_streams_per_address=legs)
        source = RtpSource(RtpConfig(port=0, policy=policy))
        source._sink = CountingSink()  # the sink run() would set
        started, now = time.process_time(), 0.0
        for first in range(0, len(arrivals), batch):
            source.receive(arrivals[first : first + batch], now)
            now += PTIME_S * batch / legs
        best = min(best, (time.process_time() - started) * 1e6 / len(arrivals))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--direct", type=int, metavar="BATCH", help="time the handling alone, in such batches")
    args = parser.parse_args()
    if args.direct:
        per_packet = handle_directly(args.legs, args.seconds, args.direct)
        print(f"machine: {describe_machine()}")
        print(f"handling alone, {args.legs} legs x {args.seconds:.0f} s PCMU in batches of {args.direct}:")
        print(f"  {per_packet:.1f} us per packet = {per_packet * 50 / 1000:.3f} ms per leg-second")
        return
    cpu, wall, late, sink, source = asyncio.run(receive(args.legs, args.seconds))
    leg_seconds = args.legs * args.seconds
    packets = source.packets
    print(f"machine: {describe_machine()}")
    sent = args.legs * round(args.seconds / PTIME_S)
    print(f"legs: {args.legs} x {args.seconds:.0f} s PCMU; packets sent {sent} ({late} over 5 ms late)")
    kernel = dict(getattr(source, "kernel_drops", {}))
    print(f"received: accepted {packets}, rejected {dict(source.rejected)}, kernel drops {kernel}")
    print(f"audio delivered: {sink.samples / 16000 / leg_seconds:.3f} of the leg-seconds sent; wall {wall:.1f} s")
    per_packet = cpu * 1e6 / max(packets, 1)
    per_leg_second = per_packet * 50 / 1000
    print(f"receive path CPU: {per_packet:.1f} us per packet accepted = {per_leg_second:.3f} ms per leg-second")
    if packets < sent:
        print(f"  (not all packets were read: the figure per packet holds, {cpu * 1000 / leg_seconds:.3f} ms per")
        print("  leg-second sent does not; a loaded machine delays the receiver past its buffer)")


if __name__ == "__main__":
    main()
