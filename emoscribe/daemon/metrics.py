"""Prometheus metrics of every stage, in a registry of the daemon's own (tests can run several daemons)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The names of the ARCHITECTURE contract: everything under ``emoscribe_``, seconds for durations."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._sources: dict[str, Tally[str]] = {}
        self.registry.register(_SourceRejections(self._sources))
        r = self.registry
        self.stage_seconds = Histogram(
            "emoscribe_stage_seconds",
            "Time spent in a pipeline stage",
            ["stage"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.end_to_publish_seconds = Histogram(
            "emoscribe_end_of_speech_to_publish_seconds",
            "From the segmenter's end-of-utterance decision to the message leaving the socket",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.frames = Counter("emoscribe_frames_total", "Audio frames received", ["source"], registry=r)
        self.utterances = Counter("emoscribe_utterances_total", "Utterances published", ["reason"], registry=r)
        self.messages = Counter("emoscribe_messages_total", "Messages published", ["kind"], registry=r)
        self.drops = Counter("emoscribe_drops_total", "Work dropped on purpose", ["reason"], registry=r)
        self.errors = Counter("emoscribe_errors_total", "Rejected input and failures", ["reason"], registry=r)
        self.shed = Counter("emoscribe_shed_total", "Optional work shed under overload", ["step"], registry=r)
        self.shed_level = Gauge("emoscribe_shed_level", "Shedding steps in force (0: none)", registry=r)
        self.abstentions = Counter(
            "emoscribe_abstentions_total", "Utterances without a label, by reason", ["reason"], registry=r
        )
        self.control_requests = Counter(
            "emoscribe_control_requests_total", "Requests on the control socket", ["outcome"], registry=r
        )
        self.active_streams = Gauge("emoscribe_active_streams", "Streams currently open", registry=r)
        self.queue_depth = Gauge("emoscribe_queue_depth", "Utterances waiting for the engine", registry=r)
        self.batch_size = Histogram(
            "emoscribe_batch_size",
            "Utterances per engine batch",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )

    def watch_source(self, name: str, rejected: Tally[str]) -> None:
        """Export a source's own rejection tally (e.g. malformed RTP by reason) at every scrape."""
        self._sources[name] = rejected

    def serve(self, host: str = "127.0.0.1", port: int = 9108) -> None:
        """Expose ``/metrics`` over HTTP; a busy port is an ``OSError`` naming it."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise OSError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from error


class _SourceRejections(Collector):
    """Sources count their rejections in plain Counters on the hot path; this reads them when scraped."""

    def __init__(self, sources: dict[str, Tally[str]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "emoscribe_source_rejected", "Input a source rejected, by reason", labels=["source", "reason"]
        )
        for source, tally in self.sources.items():
            for reason, count in tally.items():
                family.add_metric([source, reason], count)
        yield family
