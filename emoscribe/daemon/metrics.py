"""Prometheus metrics of every stage, in a registry of the daemon's own (tests can run several daemons)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
ASR_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0)
"""Speech recognition takes seconds, not milliseconds."""


class Metrics:
    """The names of the ARCHITECTURE contract: everything under ``emoscribe_``, seconds for durations."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._sources: dict[str, Mapping[str, Tally[str]]] = {}
        self.registry.register(_SourceTallies(self._sources))
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
        self.asr_seconds = Histogram(
            "emoscribe_asr_seconds",
            "Speech recognition of one utterance: queue wait, decoding, end of utterance to transcript published",
            ["stage"],
            registry=r,
            buckets=ASR_BUCKETS,
        )
        self.asr_audio_seconds = Counter(
            "emoscribe_asr_audio_seconds_total", "Seconds of utterance audio transcribed", registry=r
        )
        self.asr_queue_depth = Gauge(
            "emoscribe_asr_queue_depth", "Utterances waiting for speech recognition", registry=r
        )
        self.batch_size = Histogram(
            "emoscribe_batch_size",
            "Utterances per engine batch",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )

    def watch_source(self, name: str, tallies: Mapping[str, Tally[str]]) -> None:
        """Export a source's own counters by family (e.g. malformed RTP by reason) at every scrape."""
        self._sources[name] = tallies

    def serve(self, host: str = "127.0.0.1", port: int = 9108) -> None:
        """Expose ``/metrics`` over HTTP; a busy port is an ``OSError`` naming it."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise OSError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from error


SOURCE_FAMILIES = {
    "accepted": ("emoscribe_source_accepted", "Input a source accepted (e.g. RTP packets)", "kind"),
    "rejected": ("emoscribe_source_rejected", "Input a source rejected, by reason", "reason"),
    "jitter": (
        "emoscribe_rtp_jitter_events",
        "RTP jitter buffer events: packets lost, late, duplicate, sequence jumps, timeline resyncs, silence fills",
        "event",
    ),
    "streams": (
        "emoscribe_rtp_streams",
        "RTP streams admitted (admitted, readmitted) and ended, by reason (timeout, unvoiced, evicted_*, ...)",
        "event",
    ),
    "kernel_drops": (
        "emoscribe_rtp_kernel_drops",
        "Datagrams the kernel dropped before the RTP source could read them, by cause",
        "cause",
    ),
}
"""The counter families a source may keep (its ``tallies``): metric name, help and the label of the key."""


class _SourceTallies(Collector):
    """Sources count in plain Counters on the hot path; this reads them when scraped."""

    def __init__(self, sources: dict[str, Mapping[str, Tally[str]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[CounterMetricFamily]:
        for family, (name, documentation, label) in SOURCE_FAMILIES.items():
            metric = CounterMetricFamily(name, documentation, labels=["source", label])
            for source, tallies in list(self.sources.items()):
                for key, count in list(tallies.get(family, {}).items()):
                    metric.add_metric([source, key], count)
            yield metric
