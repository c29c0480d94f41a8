"""The dashboard's parts without a browser: health figures from real Prometheus expositions, the fan-out."""

from __future__ import annotations

import asyncio
import json
import urllib.error

import pytest
from prometheus_client import generate_latest

from emoscribe.clients.dashboard.command import topics_for
from emoscribe.clients.dashboard.feed import Relay
from emoscribe.clients.dashboard.health import HealthWatch, Scrape, histogram_quantile, summarise
from emoscribe.daemon.metrics import Metrics

INF = float("inf")


def test_histogram_quantile_matches_prometheus() -> None:
    # promtool evaluated these buckets to 242.5 ms in deploy/prometheus/alerts_test.yml
    assert histogram_quantile(0.95, {0.1: 0, 0.25: 60, INF: 60}) == pytest.approx(0.2425)
    assert histogram_quantile(0.5, {0.1: 50, 0.25: 100, INF: 100}) == pytest.approx(0.1)
    assert histogram_quantile(0.5, {0.1: 50, INF: 50}) == pytest.approx(0.05), "the first bucket starts at 0"
    assert histogram_quantile(0.99, {0.1: 10, 0.25: 10, INF: 20}) == 0.25, "+Inf: the highest finite bound"
    assert histogram_quantile(0.5, {0.1: 0, INF: 0}) is None
    assert histogram_quantile(0.5, {}) is None


def exposition(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_summary_of_a_daemon_registry_uses_the_window() -> None:
    metrics = Metrics()
    for _ in range(100):
        metrics.end_to_publish_seconds.observe(0.004)  # before the window: fast
    metrics.utterances.labels("silence").inc(100)
    metrics.drops.labels("engine_queue_full").inc(3)
    metrics.active_streams.set(7)
    metrics.queue_depth.set(2)
    metrics.batch_size.observe(4)
    metrics.batch_size.observe(8)
    before = Scrape.parse(exposition(metrics), at=100.0)
    for _ in range(20):
        metrics.end_to_publish_seconds.observe(0.12)  # in the window: slow
    metrics.utterances.labels("max_length").inc(20)
    after = Scrape.parse(exposition(metrics), at=110.0)

    summary = summarise(after, before)
    assert summary["latency_scope"] == "window"
    assert 100 < summary["latency_ms"]["p50"] <= 150 and 100 < summary["latency_ms"]["p95"] <= 150
    assert summary["utterances"] == 120 and summary["utterance_rate"] == pytest.approx(2.0)
    assert summary["drops"] == {"engine_queue_full": 3}
    assert summary["active_streams"] == 7 and summary["queue_depth"] == 2
    assert summary["batch_mean"] == pytest.approx(6.0)
    json.dumps(summary, allow_nan=False)

    quiet = summarise(after, after)
    assert quiet["latency_scope"] == "lifetime", "nothing new in the window: the whole life, said so"
    assert quiet["latency_ms"]["p50"] < 5 and quiet["utterance_rate"] is None


def test_health_watch_reports_an_unreachable_daemon_and_a_restart() -> None:
    texts: list[str] = []

    def fetch(url: str, timeout: float) -> str:
        if not texts:
            raise urllib.error.URLError("Connection refused")
        return texts.pop(0)

    clock = iter(range(0, 1000, 2))
    watch = HealthWatch("http://127.0.0.1:1/metrics", fetch=fetch, clock=lambda: next(clock))
    down = watch.poll()
    assert down["up"] is False and "http://127.0.0.1:1/metrics" in down["error"] and "refused" in down["error"]

    old, new = Metrics(), Metrics()
    for _ in range(50):
        old.end_to_publish_seconds.observe(0.2)
    new.end_to_publish_seconds.observe(0.003)
    texts += [exposition(old), exposition(new)]
    assert watch.poll()["latency_scope"] == "lifetime"
    restarted = watch.poll()  # fewer observations than before: counters began again
    assert restarted["latency_scope"] == "lifetime" and restarted["latency_ms"]["p99"] < 5


def test_relay_replays_history_and_bounds_a_slow_page() -> None:
    async def scenario() -> None:
        relay = Relay(history=3, page_queue=5)
        for seq in range(4):
            relay.message("cues.a", {"stream": "a", "seq": seq})
        relay.health({"up": True})
        late = relay.attach()
        replayed = [late.get_nowait() for _ in range(late.qsize())]
        assert [json.loads(data)["payload"]["seq"] for name, data in replayed if name == "message"] == [1, 2, 3]
        assert replayed[-1][0] == "health"
        for seq in range(4, 14):
            relay.message("cues.a", {"stream": "a", "seq": seq})
        assert late.qsize() == 7 and relay.dropped == 3, "the slow page lost what did not fit, counted"
        relay.detach(late)
        relay.message("cues.a", {"stream": "a", "seq": 14})
        assert late.qsize() == 7

        page = relay.attach()
        relay.close()  # shutting down: every open stream ends, even a full one, and nothing more goes out
        relay.message("cues.a", {"stream": "a", "seq": 15})
        events = [page.get_nowait() for _ in range(page.qsize())]
        assert events[-1] is None and all(e is not None for e in events[:-1])
        after = relay.attach()
        assert [after.get_nowait() for _ in range(after.qsize())][-1] is None

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="history"):
        Relay(history=10, page_queue=5)


def test_stream_filter_subscribes_to_every_kind_of_those_streams() -> None:
    assert topics_for(None) == [""]
    assert topics_for(["leg-1"]) == ["heartbeat", "utterance.leg-1", "cues.leg-1", "stream.leg-1", "alert.leg-1"]
