"""The jitter buffer: ordering, duplicates, lateness, loss concealment, wrap-around and timestamp gaps."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoscribe.daemon.jitter import JitterBuffer, JitterConfig

RATE = 8000
N = 160  # 20 ms packets


def level(k: int) -> float:
    """Packet ``k`` holds a constant level of its own, so the output shows which packet went where."""
    return (k + 1) / 1000


def packet(k: int, seq0: int = 0, ts0: int = 0) -> tuple[int, int, np.ndarray]:
    return (seq0 + k) % 2**16, (ts0 + k * N) % 2**32, np.full(N, level(k), dtype=np.float32)


def play(buffer: JitterBuffer, packets: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    """Push everything, drain, and check that the chunks are contiguous in stream time."""
    chunks = [buffer.push(*p) for p in packets] + [buffer.drain()]
    position = 0
    for chunk in chunks:
        assert chunk.start == position
        position += chunk.samples.size
    assert buffer.position == position
    return np.concatenate([chunk.samples for chunk in chunks])


def blocks(audio: np.ndarray) -> list[float]:
    """The level of each packet-long block (its first sample)."""
    return [float(x) for x in audio[::N]]


def expected(ks: range | list[int]) -> list[float]:
    return [pytest.approx(level(k)) for k in ks]


def test_in_order_packets_come_out_whole_and_without_waiting_after_the_start() -> None:
    buffer = JitterBuffer(RATE)
    released = [buffer.push(*packet(k)).samples.size for k in range(10)]
    assert sum(released[:2]) == 0  # the first packets wait for the 60 ms window
    assert released[2] == 3 * N
    assert released[3:] == [N] * 7  # then each packet leaves as it comes
    assert buffer.drain().samples.size == 0
    assert not +buffer.counts


def test_reordering_within_the_window_is_repaired() -> None:
    order = [1, 0, 2, 4, 3, 5, 8, 6, 7, 9]
    buffer = JitterBuffer(RATE)
    audio = play(buffer, [packet(k) for k in order])
    assert blocks(audio) == expected(range(10))
    assert not +buffer.counts


def test_duplicates_are_dropped_whether_queued_or_played() -> None:
    buffer = JitterBuffer(RATE)
    order = [0, 1, 2, 3, 5, 5, 4, 3, 6]
    audio = play(buffer, [packet(k) for k in order])
    assert blocks(audio) == expected(range(7))
    assert buffer.counts == Counter(duplicate=2)


def test_lost_packets_are_concealed_by_fading_the_last_one_to_silence() -> None:
    buffer = JitterBuffer(RATE, JitterConfig(depth_packets=2, conceal_packets=3))
    kept = [k for k in range(12) if not 3 <= k <= 7]
    audio = play(buffer, [packet(k) for k in kept])
    assert audio.size == 12 * N
    assert buffer.counts == Counter(lost=5)
    concealed = audio[3 * N : 8 * N]
    fade = np.clip(1 - np.arange(5 * N) / (3 * N), 0, None)
    np.testing.assert_allclose(concealed, level(2) * fade, atol=1e-7)
    assert not concealed[3 * N :].any()
    assert blocks(audio[8 * N :]) == expected(range(8, 12))


def test_a_packet_after_its_concealment_is_late() -> None:
    buffer = JitterBuffer(RATE, JitterConfig(depth_packets=2))
    order = [0, 1, 2, 4, 5, 6, 7, 3, 8]
    audio = play(buffer, [packet(k) for k in order])
    assert audio.size == 9 * N
    assert buffer.counts == Counter(lost=1, late=1)
    assert audio[3 * N] == pytest.approx(level(2))  # the concealment, not packet 3


def test_the_window_in_milliseconds_releases_a_hole_before_the_packet_count_does() -> None:
    buffer = JitterBuffer(RATE, JitterConfig(depth_packets=100, depth_ms=40))
    for k in (0, 1, 2):
        buffer.push(*packet(k))
    buffer.push(*packet(4))
    assert buffer.buffered == 1
    assert buffer.push(*packet(5)).samples.size == 3 * N  # 40 ms wait behind the hole: conceal, release 4 and 5
    assert buffer.counts == Counter(lost=1)


def test_a_packet_before_the_first_one_released_is_late() -> None:
    buffer = JitterBuffer(RATE)
    audio = play(buffer, [packet(k) for k in (1, 2, 3, 0, 4)])
    assert blocks(audio) == expected(range(1, 5))
    assert buffer.counts == Counter(late=1)


def test_sequence_and_timestamp_wrap_around_with_reordering_across_it() -> None:
    seq0, ts0 = 65530, 2**32 - 3 * N
    order = [0, 1, 2, 3, 4, 6, 5, 7, 9, 8, 10, 11]  # sequence 65535 -> 0 between k=5 and k=6
    buffer = JitterBuffer(RATE)
    audio = play(buffer, [packet(k, seq0, ts0) for k in order])
    assert blocks(audio) == expected(range(12))
    assert not +buffer.counts


def test_a_timestamp_gap_without_loss_is_silence_of_that_length() -> None:
    buffer = JitterBuffer(RATE)
    gap = 3 * RATE // 10  # 300 ms of silence suppression
    talk = [packet(k) for k in range(5)]
    after = [(seq, ts + gap, samples) for seq, ts, samples in (packet(k) for k in range(5, 10))]
    audio = play(buffer, talk + after)
    assert audio.size == 10 * N + gap  # stream time = elapsed RTP time
    assert not audio[5 * N : 5 * N + gap].any()
    assert buffer.counts == Counter(silence=1)


def test_a_gap_beyond_the_cap_is_capped_and_the_timeline_resyncs() -> None:
    buffer = JitterBuffer(RATE, JitterConfig(max_gap_ms=500))
    talk = [packet(k) for k in range(5)]
    after = [(seq, ts + 60 * RATE, samples) for seq, ts, samples in (packet(k) for k in range(5, 10))]
    audio = play(buffer, talk + after)
    assert audio.size == 10 * N + RATE // 2
    assert blocks(audio[5 * N + RATE // 2 :]) == expected(range(5, 10))
    assert buffer.counts == Counter(resync=1)


def test_a_timestamp_going_back_resyncs_without_dropping_audio() -> None:
    buffer = JitterBuffer(RATE)
    talk = [packet(k) for k in range(5)]
    reset = [(seq, ts - 100 * N, samples) for seq, ts, samples in (packet(k) for k in range(5, 10))]
    audio = play(buffer, talk + reset)
    assert blocks(audio) == expected(range(10))
    assert buffer.counts == Counter(resync=1)


def test_a_small_timestamp_overlap_keeps_only_the_new_samples() -> None:
    buffer = JitterBuffer(RATE)
    seq, ts, samples = packet(5)
    audio = play(buffer, [*(packet(k) for k in range(5)), (seq, ts - 40, samples)])
    assert audio.size == 6 * N - 40


def test_a_sequence_restart_is_believed_on_its_second_packet() -> None:
    buffer = JitterBuffer(RATE)
    restarted = [(seq + 20_000, ts, samples) for seq, ts, samples in (packet(k) for k in range(5, 10))]
    audio = play(buffer, [packet(k) for k in range(5)] + restarted)
    assert buffer.counts == Counter(jump=1, resync=1, silence=1)  # packet 5 was the probe: its time is silent
    assert audio.size == 10 * N
    assert blocks(audio[6 * N :]) == expected(range(6, 10))


def test_shared_counter_gathers_events_of_several_buffers() -> None:
    shared: Counter[str] = Counter()
    for _ in range(2):
        play(JitterBuffer(RATE, counts=shared), [packet(k) for k in (0, 1, 1, 2)])
    assert shared == Counter(duplicate=2)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(3, 60),
    dropped=st.sets(st.integers(1, 58)),
    swaps=st.sets(st.integers(0, 58)),
)
def test_output_length_equals_elapsed_rtp_time(count: int, dropped: set[int], swaps: set[int]) -> None:
    """Whatever is lost or swapped in between, the stream advances by exactly the RTP time covered."""
    ks = [k for k in range(count) if k not in dropped or k == count - 1]
    swapped = -1
    for i in sorted(swaps):
        if swapped + 1 < i < len(ks) - 1:
            ks[i], ks[i + 1] = ks[i + 1], ks[i]
            swapped = i
    buffer = JitterBuffer(RATE)
    audio = play(buffer, [packet(k) for k in ks])
    assert audio.size == count * N
    assert buffer.counts["lost"] >= count - len(ks)  # a swap right behind a hole may come after its time
    assert buffer.counts["lost"] - buffer.counts["late"] == count - len(ks)
    assert buffer.counts["duplicate"] == 0


@pytest.mark.parametrize("settings_", [{"depth_packets": 0}, {"depth_ms": 0}, {"conceal_packets": 0}])
def test_bad_settings_are_refused(settings_: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        JitterConfig(**settings_)
