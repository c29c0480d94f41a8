"""The dashboard in a real browser (Debian's chromium driven by Playwright): the page loads, takes the live
messages of a daemon playing the demo clips, and its plots and health panel follow them; alerts and
arousal/valence, which need a bundle with a text tower or an arousal head, come from a publisher of the test's
own. DASHBOARD_SCREENSHOT=PATH keeps the screenshot of the daemon test and DASHBOARD_BUNDLE=NAME_OR_DIR plays
the demo through a real bundle instead of the fake one (the README's screenshot is made so; not EMOSCRIBE_
variables, which the daemon would take for settings)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from fake_bundle import make_fake_bundle
from live_daemon import free_port, live_daemon, stop

from emoscribe.clients.subscriber import Subscriber
from emoscribe.messages import Heartbeat, StreamEnded

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000

# The traces of a stream's plots, as plotly holds them on the plot's element.
PLOT_DATA = """([stream, plot]) => {
  const card = document.querySelector(`[data-stream="${stream}"]`);
  const element = card && card.querySelector(plot);
  return element && element.data ? element.data.map((t) => ({name: t.name, x: t.x, y: t.y, text: t.text})) : null;
}"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (the dev extra has it)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def dashboard(endpoint: str, metrics_url: str = "") -> Iterator[str]:
    """``emoscribe dashboard`` on a free port; yields its URL."""
    command = [sys.executable, "-m", "emoscribe", "dashboard", "--endpoint", endpoint, "--port", "0"]
    command += ["--metrics-url", metrics_url, "--scrape-interval", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "http://" in line, process.stderr.read() if process.poll() is not None else line
        yield line.split()[2]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0, "SIGINT stops the dashboard, its pages' event streams open"
    finally:
        stop(process, signal.SIGINT, 10)


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 720})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector('#connection[data-state="live"]', timeout=WAIT_MS)
    return page, errors


def plot(page, stream: str, which: str) -> dict[str, dict]:
    return {trace["name"]: trace for trace in page.evaluate(PLOT_DATA, [stream, which]) or []}


def test_the_page_draws_a_live_daemon_and_its_health(browser, tmp_path: Path) -> None:
    bundle = os.environ.get("DASHBOARD_BUNDLE") or make_fake_bundle(tmp_path / "bundle", speaker=True)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    rtp = f"rtp://127.0.0.1:{free_port()}"  # keeps the daemon running after the demo, so its health is watched
    witness = Subscriber(endpoint)
    with contextlib.ExitStack() as stack:
        daemon = stack.enter_context(live_daemon(bundle, tmp_path, "--demo", "--source", rtp, endpoint=endpoint))
        url = stack.enter_context(dashboard(endpoint, daemon.metrics_url))
        page, errors = open_page(browser, url)
        received, deadline = [], time.monotonic() + 60
        while sum(isinstance(m, StreamEnded) for m in received) < 2:
            assert time.monotonic() < deadline and daemon.process.poll() is None, daemon.log.read_text()
            if (message := witness.receive(200)) is not None:
                received.append(message)
        utterances = [m.to_payload() for m in received if m.kind == "utterance"]
        streams = sorted({u["stream"] for u in utterances})
        assert streams == ["demo-actor03", "demo-actor10"] and len(utterances) == 6
        for stream in streams:
            mine = [u for u in utterances if u["stream"] == stream]
            page.wait_for_selector(f'[data-stream="{stream}"][data-utterances="{len(mine)}"]', timeout=WAIT_MS)
            page.wait_for_function(
                "([s, n]) => { const c = document.querySelector(`[data-stream='${s}']`);"
                " return c.dataset.state === 'ended' && c.querySelector('.emotion-plot').data"
                " && c.querySelector('.emotion-plot').data[0].x.length === n; }",
                arg=[stream, len(mine)],
                timeout=WAIT_MS,
            )
            emotion = plot(page, stream, ".emotion-plot")
            assert set(emotion) == set(mine[0]["emotion"]["posteriors"])
            for label, trace in emotion.items():
                assert trace["y"] == pytest.approx([u["emotion"]["posteriors"][label] for u in mine])
                assert trace["x"] == pytest.approx([(u["start"] + u["end"]) / 2 for u in mine])
            acoustic = plot(page, stream, ".acoustic-plot")
            assert acoustic["pitch"]["y"] == pytest.approx([u["cues"]["f0_median_hz"] for u in mine])
            partials = [m.to_payload() for m in received if m.kind == "cues" and m.stream == stream]
            rolling = [y for y in acoustic["pitch (rolling)"]["y"] if y is not None]
            assert len(partials) > 0
            assert rolling == pytest.approx(
                [p["cues"]["f0_median_hz"] for p in partials if p["cues"]["f0_median_hz"]]
            )
        page.wait_for_selector('#health-state[data-state="up"]', timeout=WAIT_MS)
        page.wait_for_function(
            "(n) => document.getElementById('health-utterances').textContent.startsWith(String(n) + ' ')",
            arg=len(utterances),
            timeout=WAIT_MS,
        )
        assert page.text_content("#health-latency").endswith(")") and "ms" in page.text_content("#health-latency")
        page.wait_for_selector('#health-heartbeat[data-stale="false"]', timeout=WAIT_MS)
        screenshot = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(timeout=20)
        page.wait_for_selector('#health-state[data-state="down"]', timeout=WAIT_MS)
        assert not errors, errors
    witness.close()


def publish_until(socket: zmq.Socket, page, condition: str, payload: dict) -> None:
    """Heartbeats until the page shows ``condition`` (a PUB socket drops what goes out before subscribers join)."""
    deadline = time.monotonic() + 30
    seq = 0
    while not page.evaluate(condition):
        assert time.monotonic() < deadline, "the dashboard never received the test's heartbeats"
        socket.send_multipart(Heartbeat(**payload).stamped(seq, time.time()).encode())
        seq += 1
        page.wait_for_timeout(100)


def test_alerts_and_arousal_valence_are_drawn_and_replayed_to_a_late_page(browser) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    context = zmq.Context.instance()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(endpoint)
    stream = "call-7"
    labels = {"neutral": 0.1, "angry": 0.7, "sad": 0.2}
    arousal, valence = [0.2, 0.5, 0.9], [0.1, -0.3, -0.8]
    messages = [("stream", {"event": "start", "start": 0.0, "end": 0.0})]
    for i, (a, v) in enumerate(zip(arousal, valence, strict=True)):
        cues = {"duration_s": 1.0, "f0_median_hz": 150.0 + 10 * i, "intensity_mean_db": 60.0 + i}
        messages.append(("cues", {"start": 2.0 * i, "end": 2.0 * i + 0.5, "partial": True, "cues": cues}))
        emotion = {"label": "angry", "confidence": 0.7, "posteriors": labels, "arousal": a, "valence": v}
        utterance = {"start": 2.0 * i, "end": 2.0 * i + 1.0, "cues": cues, "emotion": emotion, "caption": f"u{i}"}
        messages.append(("utterance", {**utterance, "prompts": [], "latency": {}, "speech": True}))
    alert = {"query_id": "q1", "text": "an agitated customer", "score": 0.81, "threshold": 0.6}
    alert |= {"start": 4.0, "end": 5.0, "utterance_seq": 6}  # the fields of the daemon's alert messages
    messages += [("alert", {**alert, "state": "enter"}), ("alert", {**alert, "state": "leave", "score": 0.2})]
    with dashboard(endpoint) as url:
        page, errors = open_page(browser, url)
        heartbeat = {"active_streams": 1, "uptime_s": 1.0}
        publish_until(socket, page, "document.getElementById('health-active').textContent === '1'", heartbeat)
        for seq, (kind, body) in enumerate(messages):
            payload = {"schema": f"emoscribe.{kind}/1", "stream": stream, "seq": seq, "wall_time": 0.0, **body}
            socket.send_multipart([f"{kind}.{stream}".encode(), zmq.utils.jsonapi.dumps(payload)])
        late, late_errors = open_page(browser, url)
        for view in (page, late):
            view.wait_for_selector(f'[data-stream="{stream}"][data-utterances="3"] .alerts li[data-state="leave"]')
            view.wait_for_function(
                "(s) => { const p = document.querySelector(`[data-stream='${s}'] .emotion-plot`);"
                " return p.data && p.data.some((t) => t.name === 'alert end'); }",
                arg=stream,
                timeout=WAIT_MS,
            )
            emotion = plot(view, stream, ".emotion-plot")
            assert emotion["arousal"]["y"] == pytest.approx(arousal)
            assert emotion["valence"]["y"] == pytest.approx(valence)
            assert emotion["angry"]["y"] == pytest.approx([0.7] * 3)
            assert (
                emotion["alert"]["x"] == pytest.approx([4.5])
                and "an agitated customer" in emotion["alert"]["text"][0]
            )
            assert emotion["alert end"]["x"] == pytest.approx([4.5])
            assert plot(view, stream, ".acoustic-plot")["pitch"]["y"] == pytest.approx([150.0, 160.0, 170.0])
            states = view.eval_on_selector_all(
                f'[data-stream="{stream}"] .alerts li', "l => l.map(i => i.dataset.state)"
            )
            assert states == ["leave", "enter"]
            assert view.text_content("#health-state") == "metrics not watched"
        assert not errors and not late_errors, errors + late_errors
    socket.close()


def test_a_busy_port_is_one_clear_line() -> None:
    with contextlib.closing(__import__("socket").socket()) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "emoscribe", "dashboard", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.stderr
