"""The daemon's health as the dashboard shows it, read from the daemon's Prometheus exposition.

Latency quantiles are computed the way Prometheus' ``histogram_quantile`` does, over the bucket counts added
since the oldest scrape of the window, so the page shows how the daemon does now rather than since it started;
with nothing new in the window they fall back to the daemon's whole life, and say so.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

LATENCY = "emoscribe_end_of_speech_to_publish_seconds"
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Scrape:
    """Every sample of one scrape, by sample name and sorted labels."""

    time: float
    values: dict[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str, at: float) -> Scrape:
        values = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return cls(at, values)

    def total(self, name: str) -> float:
        return sum(value for (sample, _), value in self.values.items() if sample == name)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (sample, labels), value in self.values.items():
            if sample == name:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out

    def buckets(self, name: str) -> dict[float, float]:
        """Cumulative counts by upper bound, summed over every other label."""
        return {float(le): count for le, count in self.by_label(f"{name}_bucket", "le").items()}


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' estimate: linear interpolation inside the bucket holding rank ``q * count``; ``None`` when
    the histogram is empty; the highest finite bound when the rank falls in the ``+Inf`` bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _delta(new: dict[float, float], old: dict[float, float]) -> dict[float, float]:
    return {bound: count - old.get(bound, 0.0) for bound, count in new.items()}


def summarise(latest: Scrape, oldest: Scrape | None) -> dict[str, Any]:
    """The figures of the health panel; rates and window quantiles need an older scrape (``oldest``)."""
    lifetime = latest.buckets(LATENCY)
    window = _delta(lifetime, oldest.buckets(LATENCY)) if oldest is not None else {}
    recent = bool(window) and max(window.values()) > 0
    latency = window if recent else lifetime
    quantiles = {name: histogram_quantile(q, latency) for name, q in QUANTILES.items()}
    span = latest.time - oldest.time if oldest is not None else 0.0
    utterances = latest.total("emoscribe_utterances_total")
    batches = latest.total("emoscribe_batch_size_count")
    return {
        "up": True,
        "active_streams": latest.total("emoscribe_active_streams"),
        "queue_depth": latest.total("emoscribe_queue_depth"),
        "utterances": utterances,
        "utterance_rate": (utterances - oldest.total("emoscribe_utterances_total")) / span
        if oldest is not None and span > 0
        else None,
        "drops": latest.by_label("emoscribe_drops_total", "reason"),
        "errors": latest.by_label("emoscribe_errors_total", "reason"),
        "source_rejected": latest.total("emoscribe_source_rejected_total"),
        "latency_ms": {k: None if v is None else v * 1000 for k, v in quantiles.items()},
        "latency_scope": "window" if recent else "lifetime",
        "batch_mean": latest.total("emoscribe_batch_size_sum") / batches if batches else None,
    }


def fetch_text(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read().decode("utf-8")


class HealthWatch:
    """Scrapes one ``/metrics`` URL on demand and keeps the scrapes of the last ``window_s`` seconds."""

    def __init__(
        self,
        url: str,
        window_s: float = 60.0,
        timeout_s: float = 2.0,
        fetch: Callable[[str, float], str] = fetch_text,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.window_s = window_s
        self.timeout_s = timeout_s
        self._fetch = fetch
        self._clock = clock
        self._scrapes: deque[Scrape] = deque()

    def poll(self) -> dict[str, Any]:
        """One scrape, summarised; an unreachable or unreadable target is ``up: False`` with the reason."""
        now = self._clock()
        try:
            scrape = Scrape.parse(self._fetch(self.url, self.timeout_s), now)
        except (OSError, urllib.error.URLError, ValueError, UnicodeDecodeError) as error:
            self._scrapes.clear()
            return {"up": False, "error": f"cannot scrape {self.url}: {getattr(error, 'reason', error)}"}
        if self._scrapes and scrape.total(f"{LATENCY}_count") < self._scrapes[-1].total(f"{LATENCY}_count"):
            self._scrapes.clear()  # the daemon restarted: its counters began again
        while self._scrapes and now - self._scrapes[0].time > self.window_s:
            self._scrapes.popleft()
        oldest = self._scrapes[0] if self._scrapes else None
        self._scrapes.append(scrape)
        return summarise(scrape, oldest)
