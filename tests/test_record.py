"""``emoscribe record``: hourly, size-bounded JSON-lines files holding every message exactly as received."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fake_bundle import make_fake_bundle
from live_daemon import free_port, live_daemon

from emoscribe.clients.record import MIN_FILE_BYTES, RotatingJsonLines
from emoscribe.clients.subscriber import Subscriber
from emoscribe.messages import StreamEnded

HOUR = 3600.0
T0 = datetime(2026, 11, 30, 23, tzinfo=UTC).timestamp()  # an hour boundary


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(seq: int, filler: int = 200) -> tuple[str, dict]:
    return f"utterance.s{seq % 3}", {
        "stream": f"s{seq % 3}",
        "seq": seq,
        "caption": "é" * filler,
        "x": [seq, None],
    }


def read_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_files_rotate_every_hour_and_keep_every_line(tmp_path: Path) -> None:
    clock = Clock(T0 - 1)
    writer = RotatingJsonLines(tmp_path, 1 << 20, clock=clock)
    sent = []
    for seq in range(6):
        clock.now = T0 - 1 + seq * HOUR / 2  # two messages per hour
        sent.append(message(seq))
        writer.write(*sent[-1])
    writer.close()
    names = [path.name for path in writer.files]
    assert names == [
        "emoscribe-20261130T22-0000.jsonl",
        "emoscribe-20261130T23-0000.jsonl",
        "emoscribe-20261201T00-0000.jsonl",
        "emoscribe-20261201T01-0000.jsonl",
    ]
    assert [len(path.read_text().splitlines()) for path in writer.files] == [1, 2, 2, 1]
    assert read_lines(tmp_path) == [{"topic": topic, "payload": payload} for topic, payload in sent]


def test_no_file_passes_the_size_bound_and_an_oversized_line_stands_alone(tmp_path: Path) -> None:
    writer = RotatingJsonLines(tmp_path, MIN_FILE_BYTES, clock=Clock(T0))
    sent = [message(seq) for seq in range(40)] + [message(99, filler=3 * MIN_FILE_BYTES)] + [message(100)]
    for topic, payload in sent:
        writer.write(topic, payload)
    writer.close()
    sizes = [path.stat().st_size for path in writer.files]
    lines = [len(path.read_bytes().splitlines()) for path in writer.files]
    assert len(writer.files) > 5
    assert [name.name[-10:-6] for name in writer.files] == [f"{i:04d}" for i in range(len(writer.files))]
    oversized = [i for i, size in enumerate(sizes) if size > MIN_FILE_BYTES]
    assert len(oversized) == 1 and lines[oversized[0]] == 1, "the long message gets a file of its own"
    assert all(size > MIN_FILE_BYTES // 2 for size in sizes[:-3]), "files are filled before rotating"
    assert read_lines(tmp_path) == [{"topic": t, "payload": p} for t, p in sent]


def test_the_total_bound_deletes_the_oldest_files_only(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a recording")
    writer = RotatingJsonLines(tmp_path, MIN_FILE_BYTES, max_total_bytes=3 * MIN_FILE_BYTES, clock=Clock(T0))
    for seq in range(200):
        writer.write(*message(seq))
        assert sum(path.stat().st_size for path in writer.files) <= 3 * MIN_FILE_BYTES
    writer.close()
    assert writer.deleted and all(not path.exists() for path in writer.deleted)
    assert max(writer.deleted) < min(writer.files), "the deleted files are the oldest"
    assert (tmp_path / "notes.txt").exists()
    assert read_lines(tmp_path)[-1]["payload"]["seq"] == 199, "the newest message survives"


def test_a_new_run_never_appends_to_old_files_and_counts_them_in_the_total(tmp_path: Path) -> None:
    first = RotatingJsonLines(tmp_path, MIN_FILE_BYTES, clock=Clock(T0))
    first.write(*message(0))
    first.close()
    before = first.files[0].read_bytes()
    second = RotatingJsonLines(tmp_path, MIN_FILE_BYTES, max_total_bytes=MIN_FILE_BYTES, clock=Clock(T0))
    assert second.files == first.files
    for seq in range(1, 30):
        second.write(*message(seq))
    second.close()
    assert first.files[0] in second.deleted, "the old run's file counts toward the total and goes first"
    assert second.written[0].name == "emoscribe-20261130T23-0001.jsonl"
    assert not first.files[0].exists() or first.files[0].read_bytes() == before


@pytest.mark.parametrize(
    ("file_bytes", "total_bytes", "words"),
    [(100, 0, "at least"), (MIN_FILE_BYTES * 2, MIN_FILE_BYTES, "below the file bound")],
)
def test_bad_bounds_are_refused(tmp_path: Path, file_bytes: int, total_bytes: int, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RotatingJsonLines(tmp_path, file_bytes, total_bytes)


def test_record_command_writes_what_the_daemon_published(tmp_path: Path) -> None:
    """The command against a real daemon playing the demo: its lines are, in order, exactly the messages a
    second subscriber received, in files that keep under --max-file-mb; SIGTERM then ends it cleanly."""
    bundle = make_fake_bundle(tmp_path / "bundle", speaker=True)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "recording"
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emoscribe",
            "record",
            "--out",
            str(out),
            "--endpoint",
            endpoint,
            "--max-file-mb",
            "0.02",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "recording" in recorder.stderr.readline()  # subscribed; the daemon waits join_delay_s to publish
    witness = Subscriber(endpoint)
    received: list = []
    rtp = f"rtp://127.0.0.1:{free_port()}"  # keeps the daemon running, and beating, after the demo
    with live_daemon(bundle, tmp_path, "--demo", "--source", rtp, endpoint=endpoint) as daemon:
        deadline = time.monotonic() + 60
        ended = 0
        while time.monotonic() < deadline and not (ended == 2 and received[-1].kind == "heartbeat"):
            if (m := witness.receive(200)) is not None:
                received.append(m)
                ended += isinstance(m, StreamEnded)
        assert ended == 2, daemon.log.read_text()
        last = {"topic": received[-1].topic, "payload": received[-1].to_payload()}
        while time.monotonic() < deadline and last not in read_lines(out):
            time.sleep(0.1)
        recorder.send_signal(signal.SIGTERM)
        _, stderr = recorder.communicate(timeout=30)
    witness.close()
    assert recorder.returncode == 0, stderr
    lines = read_lines(out)
    assert len(received) > 20
    assert lines[: len(received)] == [{"topic": m.topic, "payload": m.to_payload()} for m in received]
    assert {line["topic"] for line in lines} >= {"utterance.demo-actor03", "cues.demo-actor10", "heartbeat"}
    files = sorted(out.glob("*.jsonl"))
    assert len(files) >= 3 and all(path.stat().st_size <= 0.02 * 2**20 for path in files)
    assert f"{len(lines)} messages in {len(files)} files" in stderr


def test_record_command_refuses_a_bad_bound_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emoscribe", "record", "--out", str(tmp_path), "--max-file-mb", "0.001"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "at least 4096 bytes" in result.stderr
