"""What a supervisor reads after a call: ``summary.<stream>``, published when a stream ends.

It is built from the stream's messages as they were published, so it never says more than the stream's
policy let out (a ``cues_only`` stream's summary has no emotion course). The course is kept in bins of
``bin_s`` stream seconds (a minute by default); a stream longer than ``max_bins`` bins has its bins merged
pairwise (their width doubles), so a microphone left open for months still holds a bounded summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from emoscribe.messages import Alert

MAX_ALERTS_LISTED = 50
PEAK_SCALES = ("arousal", "valence")


@dataclass(frozen=True, slots=True)
class SummarySettings:
    """The ``[summary]`` section."""

    enabled: bool = True
    bin_s: float = 60.0
    max_bins: int = 240

    def __post_init__(self) -> None:
        if self.bin_s <= 0 or self.max_bins < 1:
            raise ValueError("bin_s must be positive and max_bins at least 1")


@dataclass(slots=True)
class _Bin:
    utterances: int = 0
    judged: int = 0
    posteriors: Counter[str] = field(default_factory=Counter)
    scales: Counter[str] = field(default_factory=Counter)
    scale_counts: Counter[str] = field(default_factory=Counter)

    def merge(self, other: _Bin) -> None:
        self.utterances += other.utterances
        self.judged += other.judged
        self.posteriors.update(other.posteriors)
        self.scales.update(other.scales)
        self.scale_counts.update(other.scale_counts)

    def to_dict(self, start: float, width: float) -> dict[str, Any]:
        out: dict[str, Any] = {"start": start, "end": start + width, "utterances": self.utterances}
        if self.judged:
            means = {label: total / self.judged for label, total in self.posteriors.items()}
            out["posteriors"] = {label: round(p, 4) for label, p in means.items()}
            out["dominant"] = max(means, key=means.__getitem__)
        for scale in PEAK_SCALES:
            if self.scale_counts[scale]:
                out[scale] = round(self.scales[scale] / self.scale_counts[scale], 4)
        return out


class CallSummary:
    """Accumulates one stream's published utterances and alerts."""

    def __init__(self, settings: SummarySettings) -> None:
        self.settings = settings
        self.bin_s = settings.bin_s
        self._bins: dict[int, _Bin] = {}
        self.utterances = 0
        self.speech_s = 0.0
        self.labels: Counter[str] = Counter()
        self.abstentions: Counter[str] = Counter()
        self.peaks: dict[str, dict[str, Any]] = {}
        self.alerts: Counter[str] = Counter()
        self.alert_list: list[dict[str, Any]] = []
        self.snr_sum = 0.0
        self.snr_n = 0
        self.narrowband = 0

    def add_utterance(self, payload: dict[str, Any]) -> None:
        """Fold in an ``utterance`` payload as published."""
        self.utterances += 1
        start, end = float(payload["start"]), float(payload["end"])
        span = (payload.get("cues") or {}).get("speech_span_s")
        self.speech_s += float(span) if span is not None else 0.0
        if payload.get("abstain_reason"):
            self.abstentions[payload["abstain_reason"]] += 1
        quality = payload.get("quality") or {}
        if quality.get("snr_db") is not None:
            self.snr_sum += quality["snr_db"]
            self.snr_n += 1
        self.narrowband += quality.get("band") == "narrowband"
        current = self._bin(start)
        current.utterances += 1
        emotion = payload.get("emotion") or {}
        if emotion.get("label"):
            self.labels[emotion["label"]] += 1
        posteriors = emotion.get("posteriors") or {}
        if posteriors:
            current.judged += 1
            current.posteriors.update(posteriors)
            for label, p in posteriors.items():
                self._peak(label, p, start, end, higher=True)
        for scale in PEAK_SCALES:
            value = emotion.get(scale)
            if isinstance(value, int | float):
                current.scales[scale] += value
                current.scale_counts[scale] += 1
                self._peak(f"{scale}_max", value, start, end, higher=True)
                self._peak(f"{scale}_min", value, start, end, higher=False)

    def add_alert(self, alert: Alert) -> None:
        """Fold in an alert the stream raised (its ``enter``; a ``leave`` only ends it), by query text."""
        if alert.state != "enter":
            return
        self.alerts[alert.text] += 1
        if len(self.alert_list) < MAX_ALERTS_LISTED:
            self.alert_list.append({"alert": alert.text, "start": alert.start, "end": alert.end})

    def body(self, duration_s: float) -> dict[str, Any]:
        """The summary's fields (without the envelope) for a stream that lasted ``duration_s``."""
        bins = [self._bins[i].to_dict(i * self.bin_s, self.bin_s) for i in sorted(self._bins)]
        return {
            "start": 0.0,
            "end": duration_s,
            "duration_s": duration_s,
            "speech_s": round(self.speech_s, 3),
            "speech_ratio": round(min(self.speech_s / duration_s, 1.0), 4) if duration_s > 0 else 0.0,
            "utterances": self.utterances,
            "quality": {
                "snr_db_mean": round(self.snr_sum / self.snr_n, 2) if self.snr_n else None,
                "narrowband_utterances": self.narrowband,
            },
            "emotions": dict(self.labels),
            "course": {"bin_s": self.bin_s, "bins": bins},
            "peaks": self.peaks,
            "abstentions": dict(self.abstentions),
            "alerts": {"count": sum(self.alerts.values()), "by_name": dict(self.alerts), "first": self.alert_list},
        }

    def _bin(self, start: float) -> _Bin:
        index = int(start // self.bin_s)
        while index >= self.settings.max_bins:
            self._coarsen()
            index = int(start // self.bin_s)
        return self._bins.setdefault(index, _Bin())

    def _coarsen(self) -> None:
        """Double the bin width, merging bins pairwise."""
        merged: dict[int, _Bin] = {}
        for index, item in self._bins.items():
            merged.setdefault(index // 2, _Bin()).merge(item)
        self._bins = merged
        self.bin_s *= 2

    def _peak(self, name: str, value: float, start: float, end: float, higher: bool) -> None:
        best = self.peaks.get(name)
        if best is None or (value > best["value"] if higher else value < best["value"]):
            self.peaks[name] = {"value": round(float(value), 4), "start": start, "end": end}
