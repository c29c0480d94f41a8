"""The daemon as users run it: a subprocess, real sockets, a subscriber validating every message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import soundfile as sf
from fake_bundle import make_fake_bundle
from rtp_packets import build_rtp

from emoscribe.audio import load_audio
from emoscribe.clients.subscriber import Subscriber
from emoscribe.g711 import ulaw_encode
from emoscribe.messages import StreamEnded, StreamStarted, json_schema

SCHEMA = json_schema()
RATE = 16_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_fake_bundle(tmp_path_factory.mktemp("bundle"), speaker=True)


def speech_only(clip: np.ndarray) -> np.ndarray:
    """The clip from the first to the last sample within 40 dB of its peak (the noise floor is lower)."""
    level = 20 * np.log10(np.abs(clip) + 1e-9)
    loud = np.flatnonzero(level > level.max() - 40)
    return clip[loud[0] : loud[-1] + 1]


def conversation(demo_dir: Path, path: Path) -> list[tuple[float, float]]:
    """Two demo sentences with known silence around them, written to ``path``; returns the true spans."""
    pieces, spans, at = [np.zeros(RATE)], [], 1.0
    for name in ("03-01-05-02-01-01-10.flac", "03-01-01-01-01-01-03.flac"):
        speech = speech_only(load_audio(demo_dir / name)[0])
        spans.append((at, at + speech.size / RATE))
        pieces += [speech, np.zeros(int(1.2 * RATE))]
        at += speech.size / RATE + 1.2
    sf.write(path, np.concatenate(pieces), RATE)
    return spans


def start_daemon(
    bundle_dir: Path,
    tmp_path: Path,
    *sources: str,
    realtime: bool = False,
    extra: str = "",
    workers: int = 1,
    env: dict[str, str] | None = None,
    endpoint: str | None = None,
):
    """The daemon as a subprocess, and a plain subscriber of its endpoint (connected before it starts)."""
    endpoint = endpoint or f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "daemon.toml"
    config.write_text(
        f"realtime = {'true' if realtime else 'false'}\nworkers = {workers}\n"
        "[segmenter]\npre_roll_ms = 100\nhangover_ms = 400\ntail_ms = 50\n"
        "[publish]\nheartbeat_s = 0.5\njoin_delay_s = 1.0\n"
        f"[engine]\nbundle = '{bundle_dir}'\n[metrics]\nenabled = false\n" + extra
    )
    subscriber = Subscriber(endpoint)
    command = [sys.executable, "-m", "emoscribe", "run", "--config", str(config), "--endpoint", endpoint]
    for source in sources:
        command += ["--source", source]
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    return process, subscriber


def collect(subscriber: Subscriber, until, timeout: float = 30.0) -> list:
    messages, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = subscriber.receive(200)
        if message is not None:
            messages.append(message)
            if until(messages):
                break
    return messages


def stream_ended(messages) -> bool:
    return any(isinstance(m, StreamEnded) for m in messages)


def test_file_source_end_to_end(bundle_dir: Path, tmp_path: Path, demo_dir: Path) -> None:
    wav = tmp_path / "conversation.wav"
    truth = conversation(demo_dir, wav)
    process, subscriber = start_daemon(bundle_dir, tmp_path, f"file:{wav}")
    messages = collect(subscriber, stream_ended)
    process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()
    for message in messages:
        jsonschema.validate(message.to_payload(), SCHEMA)
    stream = [m for m in messages if m.kind != "heartbeat"]
    assert [m.seq for m in stream] == list(range(len(stream))), "seq is gapless per stream"
    assert isinstance(stream[0], StreamStarted) and isinstance(stream[-1], StreamEnded)
    assert stream[-1].reason == "eof"
    utterances = [m.to_payload() for m in stream if m.kind == "utterance"]
    assert len(utterances) == len(truth)
    assert [u["emotion"]["speaker_reference"] for u in utterances] == [0, 1], "judged against earlier ones"
    for utterance, (start, end) in zip(utterances, truth, strict=True):
        assert abs(utterance["start"] - start) <= 0.15 and abs(utterance["end"] - end) <= 0.15, (utterance, start)
        assert utterance["emotion"]["label"] in (None, *utterance["emotion"]["posteriors"])
        assert utterance["cues"]["f0_median_hz"] > 80
        assert utterance["latency"]["end_to_publish_ms"] > 0
        assert len(utterance["prompts"]) == 3
    partials = [m.to_payload() for m in stream if m.kind == "cues"]
    assert partials and all(p["partial"] for p in partials)
    assert any(m.kind == "heartbeat" for m in messages) or len(messages) > 0
    subscriber.close()


def test_sigterm_during_speech_publishes_the_utterance_and_exits_zero(
    bundle_dir: Path, tmp_path: Path, demo_dir: Path
) -> None:
    wav = tmp_path / "long.wav"
    speech = np.concatenate([load_audio(p)[0] for p in sorted(demo_dir.glob("*.flac"))])
    sf.write(wav, np.concatenate([np.zeros(RATE // 2), speech]), RATE)
    process, subscriber = start_daemon(bundle_dir, tmp_path, f"file:{wav}", realtime=True)
    collect(subscriber, lambda ms: any(m.kind == "cues" for m in ms), timeout=20)
    process.send_signal(signal.SIGTERM)
    messages = collect(subscriber, stream_ended, timeout=20)
    process.wait(timeout=20)
    assert process.returncode == 0, process.stderr.read()
    kinds = [(m.kind, getattr(m, "reason", None)) for m in messages if m.kind != "heartbeat"]
    assert ("utterance", "stream_end") in kinds or any(k == "utterance" for k, _ in kinds)
    assert kinds[-1] == ("stream", "shutdown")
    subscriber.close()


def run_fails(*arguments: str, env: dict | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "emoscribe", "run", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_start_up_errors_are_one_clear_line(bundle_dir: Path, tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(RATE), RATE)
    assert "not found" in run_fails("--bundle", str(tmp_path), "--source", f"file:{wav}", "--no-metrics")
    tampered = tmp_path / "tampered"
    make_fake_bundle(tampered)
    (tampered / "prompts.npz").write_bytes(b"edited")
    assert "prompts.npz: checksum mismatch" in run_fails(
        "--bundle", str(tampered), "--source", f"file:{wav}", "--no-metrics"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = run_fails("--bundle", str(bundle_dir), "--source", f"file:{wav}", "--metrics-port", str(port))
        assert str(port) in line
    assert "no such file" in run_fails("--bundle", str(bundle_dir), "--source", "file:/nonexistent.wav")
    assert "mic" in run_fails("--bundle", str(bundle_dir), "--source", "mic:no-such-device-xyz", "--no-metrics")
    assert "no sources" in run_fails("--bundle", str(bundle_dir), "--no-metrics")


@pytest.mark.parametrize("workers", [1, 2])
def test_rtp_pcmu_end_to_end(bundle_dir: Path, tmp_path: Path, demo_dir: Path, workers: int) -> None:
    """Two call legs of PCMU over loopback UDP, as a media server would send them; with two workers, the SSRCs
    (odd and even) put one leg on each."""
    port = free_port()
    process, subscriber = start_daemon(
        bundle_dir,
        tmp_path,
        f"rtp://127.0.0.1:{port}",
        extra="[rtp]\ninactivity_timeout_s = 0.5\n",
        workers=workers,
    )
    legs = {}
    for ssrc, name in ((0x1111, "03-01-05-02-01-01-10.flac"), (0x2222, "03-01-04-01-01-01-03.flac")):
        speech = speech_only(load_audio(demo_dir / name)[0])
        audio = np.concatenate([np.zeros(RATE), speech, np.zeros(RATE)])
        narrow = audio[::2]  # 8 kHz; the clip is band-limited speech, the test needs boundaries, not fidelity
        legs[ssrc] = (
            ulaw_encode(np.round(narrow * 32767).astype(np.int16)).tobytes(),
            1.0,
            1.0 + speech.size / RATE,
        )
    up = collect(subscriber, lambda ms: any(m.kind == "heartbeat" for m in ms), timeout=60)
    assert up and up[-1].kind == "heartbeat", "the daemon reports itself up (all workers ready)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        packets = max(len(payload) for payload, _, _ in legs.values()) // 160
        for index in range(packets):
            for ssrc, (payload, _, _) in legs.items():
                chunk = payload[index * 160 : (index + 1) * 160]
                if len(chunk) == 160:
                    sender.sendto(
                        build_rtp(chunk, sequence=index, timestamp=index * 160, ssrc=ssrc), ("127.0.0.1", port)
                    )
            sender.sendto(b"garbage that is no RTP", ("127.0.0.1", port))
            time.sleep(0.004)

    def all_ended(messages: list) -> bool:
        return sum(isinstance(m, StreamEnded) for m in messages) == len(legs)

    messages = collect(subscriber, all_ended, timeout=30)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    assert process.returncode == 0, process.stderr.read()
    for message in messages:
        jsonschema.validate(message.to_payload(), SCHEMA)
    for ssrc, (_, start, end) in legs.items():
        stream = [m.to_payload() for m in messages if m.stream == f"rtp-{ssrc:08x}"]
        assert [p["seq"] for p in stream] == list(range(len(stream)))
        assert stream[0]["event"] == "start" and stream[-1]["event"] == "end" and stream[-1]["reason"] == "timeout"
        utterances = [p for p in stream if p["schema"] == "emoscribe.utterance/1"]
        assert len(utterances) == 1
        assert abs(utterances[0]["start"] - start) <= 0.15 and abs(utterances[0]["end"] - end) <= 0.15
        assert any(p["schema"] == "emoscribe.cues/1" for p in stream)
    subscriber.close()
