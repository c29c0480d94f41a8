"""A subscriber that connects mid-call learns the streams already open (their start messages, re-sent as
snapshots), without gaps in what follows and without duplicates for the subscribers that were there before."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf
from test_daemon_e2e import bundle_dir, collect, free_port, start_daemon, stream_ended  # noqa: F401

from emoscribe.clients.subscriber import Subscriber
from emoscribe.daemon import publisher as publisher_module
from emoscribe.daemon.publisher import Publisher
from emoscribe.messages import PartialCues, StreamEnded, StreamStarted


def pump(publisher: Publisher, subscriber: Subscriber, seconds: float = 2.0) -> list:
    """Serve subscriptions and collect what ``subscriber`` receives for ``seconds``."""
    received, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        publisher.serve_subscriptions()
        message = subscriber.receive(20)
        if message is not None:
            received.append(message)
    return received


def test_a_late_subscriber_gets_the_open_streams_and_no_gap() -> None:
    publisher = Publisher("tcp://127.0.0.1:*")
    early = Subscriber(publisher.endpoint)
    pump(publisher, early, 0.5)
    publisher.publish(StreamStarted(stream="call-1", details={"peer": "10.0.0.1:4000", "encoding": "PCMU"}))
    publisher.publish(StreamStarted(stream="call-2", details={"peer": "10.0.0.2:4000"}))
    for _ in range(3):
        publisher.publish(PartialCues(stream="call-1"))
    publisher.publish(StreamEnded(stream="call-2", reason="timeout"))
    late = Subscriber(publisher.endpoint)
    joined = pump(publisher, late, 1.0)
    assert [(m.stream, m.snapshot) for m in joined] == [("call-1", True)], "only the stream still open"
    assert joined[0].details == {"peer": "10.0.0.1:4000", "encoding": "PCMU"}
    assert joined[0].seq == 4, "the stream's next seq"
    publisher.publish(PartialCues(stream="call-1"))
    live = pump(publisher, late, 0.5)
    assert [m.seq for m in live] == [4] and late.gaps == {}
    seen_early = pump(publisher, early, 0.5)
    assert not any(isinstance(m, StreamStarted) for m in seen_early[6:]), "no second start for early subscribers"
    assert [m.seq for m in seen_early if m.stream == "call-1"] == [0, 1, 2, 3, 4] and early.gaps == {}
    for subscriber in (early, late):
        subscriber.close()
    publisher.close()


def test_a_subscription_storm_sends_at_most_one_round_per_interval(monkeypatch) -> None:
    monkeypatch.setattr(publisher_module, "SNAPSHOT_INTERVAL_S", 10.0)
    publisher = Publisher("tcp://127.0.0.1:*")
    for index in range(50):
        publisher.publish(StreamStarted(stream=f"call-{index}"))
    storm = [Subscriber(publisher.endpoint) for _ in range(20)]
    time.sleep(0.5)
    sent = sum(publisher.serve_subscriptions() for _ in range(20))
    assert sent == 50, "one round for all twenty subscriptions"
    for subscriber in storm:
        subscriber.close()
    publisher.close()


def test_a_subscriber_joining_a_running_daemon_learns_its_stream(
    bundle_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    wav = tmp_path / "long.wav"
    sf.write(wav, np.zeros(16_000 * 6, dtype=np.float32), 16_000)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    process, first = start_daemon(bundle_dir, tmp_path, f"file:{wav}", realtime=True, endpoint=endpoint)
    try:
        assert collect(first, lambda ms: any(isinstance(m, StreamStarted) for m in ms), timeout=30)
        late = Subscriber(endpoint)
        joined = collect(late, lambda ms: any(isinstance(m, StreamStarted) for m in ms), timeout=10)
        start = next(m for m in joined if isinstance(m, StreamStarted))
        assert start.snapshot and start.details["files"] == [str(wav)]
        rest = collect(late, stream_ended, timeout=30)
        assert isinstance(rest[-1], StreamEnded) and late.gaps == {}
        late.close()
    finally:
        process.kill()
        first.close()
