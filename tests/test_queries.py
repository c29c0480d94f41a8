"""Run-time queries: the control protocol's answers (every bad request refused with a reason, nothing changed),
persistence across restarts, alert hysteresis, and a running daemon raising an alert for a query added live."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zmq
from fake_bundle import make_fake_bundle
from test_daemon_e2e import collect, conversation, free_port, start_daemon, stream_ended

from emoscribe.bundle import load_bundle
from emoscribe.clients.control import ControlClient, ControlError
from emoscribe.daemon.alerts import AlertTracker
from emoscribe.daemon.control import QueryControl
from emoscribe.daemon.engine.onnx_local import OnnxEngine
from emoscribe.daemon.queries import MAX_TEXT_CHARS, Query, QueryError, QueryStore, Scope
from emoscribe.messages import Alert, Utterance


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory) -> Path:
    return make_fake_bundle(tmp_path_factory.mktemp("bundle"), speaker=True, text=True)


@pytest.fixture
def control(text_bundle: Path, tmp_path: Path) -> QueryControl:
    engine = OnnxEngine(load_bundle(text_bundle), "cpu")
    store = QueryStore(engine.embed_texts, tmp_path / "queries.json", max_queries=3)
    return QueryControl(store, AlertTracker(), lambda: {"rtp-0000abcd"})


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"op": "add", "text": "", "threshold": 0.5}, "non-empty text"),
        ({"op": "add", "text": "   ", "threshold": 0.5}, "non-empty text"),
        ({"op": "add", "text": "x" * (MAX_TEXT_CHARS + 1), "threshold": 0.5}, "at most"),
        ({"op": "add", "text": 5, "threshold": 0.5}, "non-empty text"),
        ({"op": "add", "text": "calm voice", "threshold": 2.0}, "between -1 and 1"),
        ({"op": "add", "text": "calm voice", "threshold": "high"}, "between -1 and 1"),
        ({"op": "add", "text": "calm voice", "threshold": True}, "between -1 and 1"),
        ({"op": "add", "text": "calm voice", "threshold": 0.5, "stream": "rtp-gone"}, "unknown stream"),
        ({"op": "add", "text": "calm voice", "threshold": 0.5, "role": "boss"}, "unknown role"),
        ({"op": "add", "text": "calm", "threshold": 0.5, "role": "agent", "stream": "rtp-0000abcd"}, "not both"),
        ({"op": "add", "text": "calm voice", "threshold": 0.5, "colour": "red"}, "unknown field"),
        ({"op": "remove", "id": "nope"}, "no query with id"),
        ({"op": "drop"}, "unknown op"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(control: QueryControl, request_, reason: str) -> None:
    kept = control.handle({"op": "add", "text": "an agitated customer", "threshold": 0.6})["query"]
    reply = control.handle(request_)
    assert reply["ok"] is False and reason in reply["error"]
    assert control.handle({"op": "list"})["queries"] == [kept]
    assert [entry["id"] for entry in json.loads(control.store.path.read_text())["queries"]] == [kept["id"]]


def test_a_bundle_without_text_tower_refuses_queries() -> None:
    control = QueryControl(QueryStore(None), AlertTracker(), set)
    reply = control.handle({"op": "add", "text": "an agitated customer", "threshold": 0.6})
    assert reply == {"ok": False, "error": "the daemon's bundle has no text tower, so it cannot embed new queries"}


def test_the_store_caps_the_number_of_queries(control: QueryControl) -> None:
    for text in ("calm voice", "angry customer", "sad voice"):
        assert control.handle({"op": "add", "text": text, "threshold": 0.5})["ok"]
    reply = control.handle({"op": "add", "text": "happy voice", "threshold": 0.5})
    assert not reply["ok"] and "remove one first" in reply["error"]


def test_queries_survive_a_restart_and_scores_follow_scope(text_bundle: Path, tmp_path: Path) -> None:
    engine = OnnxEngine(load_bundle(text_bundle), "cpu")
    path = tmp_path / "state" / "queries.json"
    store = QueryStore(engine.embed_texts, path)
    everywhere = store.add("an agitated customer", 0.6, Scope())
    agents = store.add("a calm voice", -0.2, Scope(role="agent"))
    one = store.add("loud", 0.1, Scope(stream="rtp-1"))
    again = QueryStore(engine.embed_texts, path)
    assert again.list() == [everywhere, agents, one]
    embedding = engine.embed_texts(["an agitated customer"])[0]
    scores = dict((q.id, s) for q, s in again.scores(embedding, "rtp-1", "customer"))
    assert set(scores) == {everywhere.id, one.id}
    assert scores[everywhere.id] == pytest.approx(1.0, abs=1e-5), "same text, same direction"
    again.remove(agents.id)
    assert [q.id for q in QueryStore(engine.embed_texts, path).list()] == [everywhere.id, one.id]
    path.write_text("{ not json")
    with pytest.raises(QueryError, match="not a readable query file"):
        QueryStore(engine.embed_texts, path)


def test_alerts_enter_and_leave_with_hysteresis() -> None:
    query = Query("q1", "an agitated customer", 0.6)
    tracker = AlertTracker(hysteresis=0.1)
    states = []
    for score in (0.5, 0.62, 0.65, 0.55, 0.51, 0.49, 0.7, 0.3):
        states.append([t.state for t in tracker.update("s", [(query, score)])])
    assert states == [[], ["enter"], [], [], [], ["leave"], ["enter"], ["leave"]]
    tracker.update("s", [(query, 0.9)])
    assert tracker.active("s") == {"q1"}
    tracker.forget("s")
    assert tracker.active("s") == set()


def test_a_query_added_to_a_running_daemon_raises_alerts(
    text_bundle: Path, tmp_path: Path, demo_dir: Path
) -> None:
    wav = tmp_path / "call.wav"
    conversation(demo_dir, wav)
    control_endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {"EMOSCRIBE_CONTROL_ENDPOINT": control_endpoint, "EMOSCRIBE_QUERIES_FILE": str(tmp_path / "q.json")}
    process, subscriber = start_daemon(text_bundle, tmp_path, f"file:{wav}", realtime=True, env=env)
    client = ControlClient(control_endpoint, timeout_s=20)
    try:
        collect(subscriber, lambda ms: any(m.kind == "heartbeat" for m in ms), timeout=30)
        always = client.add("an agitated customer", threshold=-1.0)
        never = client.add("a calm voice", threshold=1.0)
        with pytest.raises(ControlError, match="unknown stream"):
            client.add("loud", threshold=0.5, stream="rtp-nobody")
        messages = collect(subscriber, stream_ended, timeout=60)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        process.kill()
        client.close()
    utterances = [m for m in messages if isinstance(m, Utterance)]
    alerts = [m for m in messages if isinstance(m, Alert)]
    assert utterances and all({q["id"] for q in u.queries} == {always["id"], never["id"]} for u in utterances)
    assert [a.query_id for a in alerts] == [always["id"]], "one enter for the always-matching query, none else"
    first = utterances[0]
    assert alerts[0].state == "enter" and alerts[0].utterance_seq == first.seq and alerts[0].start == first.start
    assert alerts[0].score == next(q["score"] for q in first.queries if q["id"] == always["id"])
    assert json.loads((tmp_path / "q.json").read_text())["queries"][0]["id"] == always["id"]
    subscriber.close()


def test_malformed_frames_get_an_error_reply(text_bundle: Path, tmp_path: Path, demo_dir: Path) -> None:
    wav = tmp_path / "call.wav"
    conversation(demo_dir, wav)
    control_endpoint = f"tcp://127.0.0.1:{free_port()}"
    process, subscriber = start_daemon(
        text_bundle, tmp_path, f"file:{wav}", realtime=True, env={"EMOSCRIBE_CONTROL_ENDPOINT": control_endpoint}
    )
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(control_endpoint)
    try:
        collect(subscriber, lambda ms: any(m.kind == "heartbeat" for m in ms), timeout=30)
        for frames in ([b"", b"\xff\x00 not json"], [b"", b"{}", b"{}"], [b"", b'{"op": "list"'], [b"", b"null"]):
            socket.send_multipart(frames)
            assert socket.poll(10_000), f"no answer to {frames!r}"
            reply = json.loads(socket.recv_multipart()[-1])
            assert reply["ok"] is False and reply["error"], frames
        socket.send_multipart([b"", b'{"op": "list"}'])
        assert socket.poll(10_000) and json.loads(socket.recv_multipart()[-1]) == {"ok": True, "queries": []}
    finally:
        process.kill()
        socket.close()
        subscriber.close()
