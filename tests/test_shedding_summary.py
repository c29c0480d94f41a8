"""Shedding under overload in its fixed order and back; call summaries from the messages a stream published."""

from __future__ import annotations

import itertools

import pytest

from emoscribe.daemon.shedding import SHED_ORDER, BudgetSettings, Shedder, ShedSettings
from emoscribe.daemon.summary import CallSummary, SummarySettings
from emoscribe.messages import Alert


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(shedder: Shedder, clock: Clock, stage: str, seconds: float, n: int, every_s: float = 0.1) -> list:
    """Observe ``n`` latencies, one every ``every_s``; the (time, steps shed) at each change."""
    changes = []
    for _ in range(n):
        clock.now += every_s
        before = shedder.active
        shedder.observe(stage, seconds)
        if shedder.active != before:
            changes.append((clock.now, tuple(shedder.active)))
    return changes


def test_overload_sheds_in_the_fixed_order_and_recovers() -> None:
    clock = Clock()
    shedder = Shedder(ShedSettings(), BudgetSettings(), clock)
    assert feed(shedder, clock, "end_to_publish", 0.05, n=50) == [], "under budget: nothing shed"
    overload = feed(shedder, clock, "end_to_publish", 0.4, n=100)
    assert [steps for _, steps in overload] == [SHED_ORDER[:n] for n in range(1, len(SHED_ORDER) + 1)]
    times = [t for t, _ in overload]
    assert all(b - a >= shedder.settings.step_s - 1e-9 for a, b in itertools.pairwise(times))
    assert not set(shedder.active) & {"vad", "cues", "emotion"}, "VAD, final cues and emotion are never shed"
    assert feed(shedder, clock, "end_to_publish", 0.1, n=50) == [], "between recover_ratio and budget: no change"
    recovery = feed(shedder, clock, "end_to_publish", 0.02, n=100)
    assert [steps for _, steps in recovery] == [SHED_ORDER[:n] for n in range(len(SHED_ORDER) - 1, -1, -1)]


def test_any_stage_over_its_budget_counts_and_changes_wait_for_step_s() -> None:
    clock = Clock()
    shedder = Shedder(ShedSettings(step_s=5.0), BudgetSettings(cues_ms=20.0), clock)
    changes = feed(shedder, clock, "cues", 0.03, n=120)
    assert [steps for _, steps in changes] == [SHED_ORDER[:1], SHED_ORDER[:2]], "12 s of overload: two steps"
    assert changes[0][0] >= 5.0


def test_disabled_shedding_never_sheds() -> None:
    clock = Clock()
    shedder = Shedder(ShedSettings(enabled=False), BudgetSettings(), clock)
    feed(shedder, clock, "end_to_publish", 5.0, n=50)
    assert shedder.active == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        BudgetSettings(queue_ms=0)
    with pytest.raises(ValueError, match="recover_ratio"):
        ShedSettings(recover_ratio=1.5)


def utterance(start: float, label: str | None, posteriors: dict, **extra) -> dict:
    emotion = {"label": label, "confidence": max(posteriors.values(), default=0.0), "posteriors": posteriors}
    emotion |= extra.pop("emotion", {})
    body = {"start": start, "end": start + 2.0, "cues": {"speech_span_s": 1.5}, "emotion": emotion}
    return body | {"quality": {"snr_db": 30.0, "band": "narrowband"}} | extra


def test_summary_course_peaks_abstentions_and_alerts() -> None:
    summary = CallSummary(SummarySettings())
    summary.add_utterance(utterance(5.0, "neutral", {"neutral": 0.8, "angry": 0.2}, emotion={"arousal": 0.2}))
    summary.add_utterance(utterance(50.0, "angry", {"neutral": 0.3, "angry": 0.7}, emotion={"arousal": 0.9}))
    summary.add_utterance(utterance(70.0, "angry", {"neutral": 0.1, "angry": 0.9}, emotion={"arousal": 0.7}))
    summary.add_utterance(utterance(80.0, None, {}, abstain_reason="low_snr"))
    summary.add_alert(Alert(stream="call", start=70.0, end=72.0, text="an agitated customer", state="enter"))
    summary.add_alert(Alert(stream="call", start=80.0, end=82.0, text="an agitated customer", state="leave"))
    body = summary.body(120.0)
    assert body["utterances"] == 4 and body["emotions"] == {"neutral": 1, "angry": 2}
    assert body["speech_s"] == 6.0 and body["speech_ratio"] == 0.05
    first, second = body["course"]["bins"]
    assert (first["start"], first["end"], first["utterances"]) == (0.0, 60.0, 2)
    assert first["posteriors"] == {"neutral": 0.55, "angry": 0.45} and first["dominant"] == "neutral"
    assert second["posteriors"]["angry"] == 0.9 and second["utterances"] == 2
    assert first["arousal"] == pytest.approx(0.55)
    assert body["peaks"]["angry"] == {"value": 0.9, "start": 70.0, "end": 72.0}
    assert body["peaks"]["arousal_max"]["start"] == 50.0 and body["peaks"]["arousal_min"]["start"] == 5.0
    assert body["abstentions"] == {"low_snr": 1}
    assert body["alerts"]["count"] == 1 and body["alerts"]["first"][0]["start"] == 70.0
    assert body["quality"] == {"snr_db_mean": 30.0, "narrowband_utterances": 4}


def test_summary_of_a_cues_only_stream_has_no_course_and_stays_bounded() -> None:
    summary = CallSummary(SummarySettings(bin_s=60.0, max_bins=4))
    for minute in range(10):
        summary.add_utterance({"start": 60.0 * minute, "end": 60.0 * minute + 2, "cues": {"speech_span_s": 1.0}})
    body = summary.body(600.0)
    assert body["emotions"] == {} and body["peaks"] == {}
    assert body["course"]["bin_s"] == 240.0 and len(body["course"]["bins"]) <= 4
    assert sum(b["utterances"] for b in body["course"]["bins"]) == 10
    assert all("posteriors" not in b for b in body["course"]["bins"])
