"""The daemon's core: front ends' results → batcher → engine → describe → publisher, with metrics.

Front ends (the per-stream work, in this process or in worker processes) call the :class:`Downstream` methods
on the event loop; only the engine and speech recognition run in threads of their own, and their results come
back to the loop. A transcript follows its utterance, which is published first (see :mod:`emoscribe.daemon.asr`),
and a stream's end waits for both. The first
``heartbeat`` goes out once every producer has started, so a subscriber can tell when the daemon is up. Shutdown
ends every producer (which closes open utterances), lets the engine finish what is queued within the drain
deadline, publishes it, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from emoscribe.cues.baseline import SpeakerBaselines
from emoscribe.curve import CurveServer
from emoscribe.daemon.abstention import audio_reason
from emoscribe.daemon.alerts import AlertTracker, QueryAlerts, Transition, UtteranceRef
from emoscribe.daemon.asr import AsrWorker, Done, Job
from emoscribe.daemon.batcher import Batcher, Request, Result
from emoscribe.daemon.compliance import Compliance
from emoscribe.daemon.config import DaemonConfig
from emoscribe.daemon.control import ControlServer, QueryControl
from emoscribe.daemon.describe import Describer
from emoscribe.daemon.engine import Engine
from emoscribe.daemon.frames import StreamInfo
from emoscribe.daemon.frontend import COUNTED, Downstream, ReadyUtterance
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.population import PopulationNormaliser
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.queries import LEXICAL, QueryStore
from emoscribe.daemon.roles import Roles, RoleSettings
from emoscribe.daemon.shedding import Shedder
from emoscribe.daemon.speaker_reference import Normaliser
from emoscribe.daemon.summary import CallSummary
from emoscribe.daemon.transcriber import Transcriber
from emoscribe.messages import (
    Heartbeat,
    Message,
    PartialCues,
    StreamEnded,
    StreamStarted,
    Summary,
    Transcript,
    Utterance,
)

log = logging.getLogger(__name__)

SUBSCRIPTION_POLL_S = 0.05
"""How often new subscriptions are read: a late joiner learns the open streams within this."""


class Producer(Protocol):
    """Runs front ends that report to ``downstream``."""

    async def start(self, downstream: Downstream) -> None:
        """Get ready to take audio; an exception here is a start-up failure."""
        ...

    async def run(self, downstream: Downstream, stop: asyncio.Event) -> None:
        """Produce until the sources end or ``stop`` is set."""
        ...


@dataclass(slots=True)
class StreamState:
    info: StreamInfo
    position: float = 0.0
    pending: int = 0
    ended: str | None = None


class Service:
    """Implements :class:`Downstream` and publishes everything the pipeline produces."""

    def __init__(
        self,
        config: DaemonConfig,
        engine: Engine,
        describer: Describer,
        publisher: Publisher,
        metrics: Metrics,
        normaliser: Normaliser | None = None,
        curve: CurveServer | None = None,
        queries: QueryStore | None = None,
        control: ControlServer | None = None,
        transcriber: Transcriber | None = None,
    ) -> None:
        """``curve``, where CURVE is on, is the key pair and allowlist the daemon's sockets share; ``queries``
        are scored against every utterance, and ``control`` (when given) lets subscribers change them;
        ``transcriber`` (when ``[asr]`` covers a source) transcribes the streams it covers."""
        self.config = config
        self.curve = curve
        store = queries if queries is not None else QueryStore(None)
        self.query_alerts = QueryAlerts(store, AlertTracker(config.queries.hysteresis))
        self.control = control
        self.normaliser = normaliser
        self.describer = describer
        self.publisher = publisher
        self.metrics = metrics
        self.streams: dict[str, StreamState] = {}
        self.baselines = SpeakerBaselines(half_life=config.cues.baseline_half_life)
        self.batcher = Batcher(engine, config.batch, self._on_result, normaliser)
        self.started = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counters = {family: getattr(metrics, family) for family in COUNTED}
        self.failures: list[str] = []
        self.roles = Roles(config.roles)
        self.compliance = Compliance(config.compliance, self.roles)
        publisher.guard = self.compliance  # every message this service publishes passes its stream's policy
        self.shedder = Shedder(config.shedding, config.budget)
        self.summaries: dict[str, CallSummary] = {}
        self.asr = None
        if transcriber is not None:
            self.asr = AsrWorker(transcriber, config.asr.max_queue, self._on_transcript, store.embed)

    # --- Downstream --------------------------------------------------------------------------------------------
    def stream_opened(self, info: StreamInfo) -> None:
        if info.stream in self.streams:
            log.warning("stream %s opened twice; keeping the open one", info.stream)
            return
        self.streams[info.stream] = StreamState(info)
        self.metrics.active_streams.set(len(self.streams))
        role = self.roles.opened(info)
        log.info("stream %s opened as %s (%s)", info.stream, role, self.compliance.policy(info.stream))
        if self.config.summary.enabled:
            self.summaries[info.stream] = CallSummary(self.config.summary)
        self._send(StreamStarted(stream=info.stream, details=info.details))

    def partial_cues(self, message: PartialCues, seconds: float) -> None:
        self.metrics.stage_seconds.labels("partial_cues").observe(seconds)
        self._send(message)

    def utterance_ready(self, ready: ReadyUtterance) -> None:
        self.metrics.stage_seconds.labels("cues").observe(ready.cues_s)
        state = self.streams.get(ready.stream)
        if state is not None:
            state.pending += 1
            state.position = max(state.position, ready.event.end)
        request = Request(ready.event.samples, ready, speaker=ready.stream)
        if not self._wants_emotion(ready):
            self._complete(Result(request, None, None, 0.0, 0.0, 0, None))
        elif not self.batcher.submit(request):
            self.metrics.drops.labels("engine_queue_full").inc()
            self._complete(Result(request, None, None, 0.0, 0.0, 0, "engine queue full"))
        self.metrics.queue_depth.set(self.batcher.depth)

    def stream_closed(self, stream: str, reason: str, position: float | None) -> None:
        state = self.streams.get(stream)
        if state is None or state.ended:
            return
        state.ended = reason
        if position is not None:
            state.position = position
        self._maybe_close(state)

    def count(self, family: str, label: str, n: int = 1) -> None:
        self._counters[family].labels(label).inc(n)

    def reload_roles(self, settings: RoleSettings) -> None:
        """New ``[roles]`` rules, for the open streams too; their next messages follow their new policy."""
        for stream, role in self.roles.reload(settings).items():
            log.info("stream %s is now %s (%s)", stream, role, self.compliance.policy(stream))

    def _wants_emotion(self, ready: ReadyUtterance) -> bool:
        """Whether the utterance goes to the engine: its stream's policy allows emotion and its audio is fit."""
        fit = audio_reason(ready.quality, ready.cues, self.config.abstain) is None
        return fit and self.compliance.infers_emotion(ready.stream)

    def watch_source(self, name: str, tallies: Mapping[str, Counter[str]]) -> None:
        self.metrics.watch_source(name, tallies)

    # --- engine results ----------------------------------------------------------------------------------------
    def _on_result(self, result: Result) -> None:
        """Called in the batcher's thread: hand the result back to the event loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._complete, result)

    def _complete(self, result: Result) -> None:
        pending: ReadyUtterance = result.request.context
        state = self.streams.get(pending.stream)
        if result.error is None:
            self.metrics.batch_size.observe(result.batch_size)
            self.metrics.stage_seconds.labels("queue").observe(result.queue_s)
            self.metrics.stage_seconds.labels("inference").observe(result.inference_s)
        elif result.batch_size:  # the engine ran and failed (a refused utterance never reached it)
            self.metrics.errors.labels("engine").inc()
        began = time.perf_counter()
        unfit = audio_reason(pending.quality, pending.cues, self.config.abstain)
        failed = None if result.error is None else "engine_error" if result.batch_size else "overload"
        shed = self.shedder.active
        baseline = self.baselines.baseline(pending.stream)
        description = self.describer.describe(
            pending.cues,
            result.embedding,
            result.logits,
            baseline,
            result.reference,
            unfit or failed,
            shed,
            result.affect,
        )
        if unfit is None:  # audio unfit to label moves neither the caller's baseline nor the speaker reference
            baseline.update(pending.cues)
        describe_s = time.perf_counter() - began
        self.metrics.stage_seconds.labels("describe").observe(describe_s)
        event = pending.event
        latency = {
            "cues_ms": pending.cues_s * 1000,
            "queue_ms": result.queue_s * 1000,
            "inference_ms": result.inference_s * 1000,
            "describe_ms": describe_s * 1000,
        }
        scored = None if "prompts" in shed else result.embedding  # query scoring is shed with the prompts
        queries, alerts = self.query_alerts.evaluate(pending.stream, self.roles.role(pending.stream), scored)
        message = Utterance(
            stream=pending.stream,
            start=event.start,
            end=event.end,
            reason=event.reason,
            cues=pending.cues.to_dict(),
            **description,
            queries=queries,
            latency=latency,
            quality=None if pending.quality is None else pending.quality.to_dict(),
            shed=shed,
        )
        latency["end_to_publish_ms"] = (time.perf_counter() - pending.decided) * 1000
        sent = self._send(message)
        self._send_alerts(alerts, UtteranceRef(sent.stream, event.start, event.end, sent.seq))
        self._account(message, result, describe_s)
        self.metrics.end_to_publish_seconds.observe(latency["end_to_publish_ms"] / 1000)
        self.metrics.utterances.labels(event.reason).inc()
        self.metrics.queue_depth.set(self.batcher.depth)
        if state is not None:
            self._transcribe(pending, sent.seq, state)
            state.pending -= 1
            self._maybe_close(state)

    def _send_alerts(self, alerts: list[Transition], utterance: UtteranceRef) -> None:
        summary = self.summaries.get(utterance.stream)
        for alert in self.query_alerts.messages(alerts, utterance):
            self._send(alert)
            if summary is not None:
                summary.add_alert(alert)

    # --- transcripts -------------------------------------------------------------------------------------------
    def _transcribe(self, pending: ReadyUtterance, seq: int, state: StreamState) -> None:
        """Hand a published utterance to speech recognition where ``[asr]`` covers its stream; what is shed
        or refused is counted. Tones and music the gate refused are not speech to transcribe."""
        if self.asr is None or not self.config.asr.covers(state.info.kind):
            return
        if pending.quality is not None and not pending.quality.speech:
            return
        if self.shedder.sheds("asr"):
            self.metrics.shed.labels("asr").inc()
            return
        stream, event = pending.stream, pending.event
        embed = self.compliance.scores_queries(stream) and self.query_alerts.store.covers(
            stream, self.roles.role(stream), LEXICAL
        )
        job = Job(stream, seq, event.start, event.end, event.samples, pending.decided, embed)
        if not self.asr.submit(job):
            self.metrics.drops.labels("asr_queue_full").inc()
            return
        state.pending += 1
        self.metrics.asr_queue_depth.set(self.asr.depth)

    def _on_transcript(self, done: Done) -> None:
        """Called in the ASR thread: hand the transcript back to the event loop (gone once the daemon has
        stopped; the drain deadline had passed, and the transcript is given up)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._transcribed, done)

    def _transcribed(self, done: Done) -> None:
        """Publish a transcript after its utterance, score the lexical queries on it, and let its stream end."""
        assert self.asr is not None
        job = done.job
        self.metrics.asr_seconds.labels("queue").observe(done.queue_s)
        self.metrics.asr_seconds.labels("decode").observe(done.asr_s)
        self.metrics.asr_queue_depth.set(self.asr.depth)
        if done.heard is None:
            self.metrics.errors.labels("asr").inc()
        else:
            self.metrics.asr_audio_seconds.inc(job.end - job.start)
            scored = done.embedding if self.compliance.scores_queries(job.stream) else None
            queries, alerts = self.query_alerts.evaluate(job.stream, self.roles.role(job.stream), scored, LEXICAL)
            heard = done.heard
            latency = {"queue_ms": done.queue_s * 1000, "asr_ms": done.asr_s * 1000}
            message = Transcript(
                stream=job.stream,
                start=job.start,
                end=job.end,
                utterance_seq=job.utterance_seq,
                text=heard.text,
                language=heard.language,
                language_probability=heard.language_probability,
                words=heard.shifted(job.start),
                no_speech_prob=heard.no_speech_prob,
                model=self.asr.transcriber.name,
                latency=latency,
                queries=queries,
            )
            waited = time.perf_counter() - job.decided
            latency["end_to_publish_ms"] = waited * 1000
            self._send(message)
            self._send_alerts(alerts, UtteranceRef(job.stream, job.start, job.end, job.utterance_seq))
            self.metrics.asr_seconds.labels("end_to_publish").observe(waited)
            self.shedder.observe("asr", waited)
            self.metrics.shed_level.set(self.shedder.level)
        state = self.streams.get(job.stream)
        if state is not None:
            state.pending -= 1
            self._maybe_close(state)

    def _maybe_close(self, state: StreamState) -> None:
        """Publish a stream's end once the source ended it and its last utterance is out."""
        if state.ended is None or state.pending:
            return
        stream = state.info.stream
        summary = self.summaries.pop(stream, None)
        if summary is not None:
            self._send(Summary(stream=stream, **summary.body(state.position)))
        self._send(StreamEnded(stream=stream, end=state.position, reason=state.ended))
        self.roles.closed(stream)
        self.baselines.forget(stream)
        self.query_alerts.tracker.forget(stream)
        if self.normaliser is not None:
            self.normaliser.forget(stream)
        del self.streams[stream]
        self.metrics.active_streams.set(len(self.streams))

    def _account(self, message: Utterance, result: Result, describe_s: float) -> None:
        """Abstentions and shed work in the metrics, stage latencies to the shedder, the utterance to its
        stream's summary."""
        if message.abstain_reason is not None:
            self.metrics.abstentions.labels(message.abstain_reason).inc()
        for step in ("caption", "prompts"):
            if step in message.shed:
                self.metrics.shed.labels(step).inc()
        if result.batch_size:
            self.shedder.observe("queue", result.queue_s)
            self.shedder.observe("inference", result.inference_s)
        self.shedder.observe("describe", describe_s)
        self.shedder.observe("end_to_publish", message.latency["end_to_publish_ms"] / 1000)
        self.metrics.shed_level.set(self.shedder.level)
        summary = self.summaries.get(message.stream)
        if summary is not None:
            summary.add_utterance(message.to_payload())

    def _send(self, message: Message) -> Message:
        self.metrics.messages.labels(message.kind).inc()
        return self.publisher.publish(message)

    # --- lifecycle ---------------------------------------------------------------------------------------------
    async def run(self, producers: Sequence[Producer], stop: asyncio.Event) -> bool:
        """Run until every producer ends or ``stop`` is set; then drain. ``True`` if everything was published.

        A producer that fails (e.g. a worker that cannot start) stops the others, and its error is kept in
        :attr:`failures` for the caller to report."""
        self._loop = asyncio.get_running_loop()
        self.batcher.start()
        if self.asr is not None:
            self.asr.start()
        started = []
        for producer in producers:
            try:
                await producer.start(self)
            except Exception as error:
                log.error("%s failed to start: %s", type(producer).__name__, error)
                self.failures.append(f"{type(producer).__name__}: {error}")
                stop.set()
                break
            started.append(producer)
        beat = asyncio.create_task(self._heartbeat(stop))
        joins = asyncio.create_task(self._serve_subscriptions(stop))
        if self.control is not None:
            control = self._query_control()
            counted = self.metrics.control_requests.labels
            chores = [
                asyncio.create_task(self.control.serve(control, stop, lambda outcome: counted(outcome).inc()))
            ]
        else:
            chores = []
        tasks = [asyncio.create_task(p.run(self, stop)) for p in started]
        for task in tasks:
            task.add_done_callback(lambda done: done.cancelled() or done.exception() is None or stop.set())
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for producer, outcome in zip(started, results, strict=True):
            if isinstance(outcome, Exception):
                log.error("%s failed: %s", type(producer).__name__, outcome)
                self.failures.append(f"{type(producer).__name__}: {outcome}")
        deadline = self.config.drain_deadline_s
        drained = await asyncio.to_thread(self.batcher.stop, deadline)
        waited = time.monotonic()
        while any(s.pending for s in self.streams.values()) and time.monotonic() - waited < deadline:
            await asyncio.sleep(0.01)
        if self.asr is not None:  # what is still queued for it after the deadline is given up
            left = max(0.1, deadline - (time.monotonic() - waited))
            if not await asyncio.to_thread(self.asr.stop, left):
                log.warning("drain deadline passed: %d utterances left untranscribed", self.asr.depth + 1)
                drained = False
        for state in list(self.streams.values()):
            state.ended = state.ended or "shutdown"
            state.pending = 0
            self._maybe_close(state)
        stop.set()
        await asyncio.gather(beat, joins, *chores)
        if isinstance(self.normaliser, PopulationNormaliser):
            self.normaliser.save()
        return drained

    def _query_control(self) -> QueryControl:
        """What control requests act on: the queries, and the population moments where they are kept."""
        alerts = self.query_alerts
        population = self.normaliser if isinstance(self.normaliser, PopulationNormaliser) else None
        reset = None if population is None else population.reset
        return QueryControl(alerts.store, alerts.tracker, lambda: self.streams.keys(), reset)

    async def _serve_control(self, server: ControlServer, stop: asyncio.Event) -> None:
        """Run-time queries: the control socket changes the store the utterances are scored against."""
        control = self._query_control()
        await server.serve(control, stop, lambda outcome: self.metrics.control_requests.labels(outcome).inc())

    async def _serve_subscriptions(self, stop: asyncio.Event) -> None:
        """Answer new subscribers with the open streams' start messages (see :class:`Publisher`)."""
        while not stop.is_set():
            sent = self.publisher.serve_subscriptions()
            if sent:
                self.metrics.messages.labels("snapshot").inc(sent)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SUBSCRIPTION_POLL_S)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        previous = 0.0
        while True:
            uptime = time.monotonic() - self.started
            self._send(
                Heartbeat(
                    start=previous,
                    end=uptime,
                    active_streams=len(self.streams),
                    uptime_s=uptime,
                    queue_depth=self.batcher.depth,
                    dropped={
                        "engine_queue_full": self.batcher.refused,
                        **({"asr_queue_full": self.asr.refused} if self.asr is not None else {}),
                    },
                )
            )
            previous = uptime
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.publish.heartbeat_s)
