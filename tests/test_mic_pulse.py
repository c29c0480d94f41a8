"""The ``mic:`` source against a real sound server: a PulseAudio of the test's own with a null sink, the demo
speech played into it with ``paplay``, and the daemon recording the sink's monitor through PortAudio's ALSA
``pulse`` device, beside a file source playing the same clips."""

from __future__ import annotations

import ctypes.util
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_bundle import make_fake_bundle
from test_daemon_e2e import collect, run_fails, speech_only, start_daemon

from emoscribe.audio import load_audio
from emoscribe.messages import StreamEnded, StreamStarted, Transcript

RATE = 16_000
CLIPS = ("03-01-05-02-01-01-10.flac", "03-01-01-01-01-01-03.flac", "03-01-04-01-01-01-03.flac")
TOLERANCE_S = 0.1
"""How far a recorded utterance's start or end may sit from the file's, once the playback offset is removed:
the VAD decides on 30 ms frames, whose phase differs between the two streams."""
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
C_LIBRARY_LINE = re.compile(r"^(Expression '.*' failed in '.*pa_linux_alsa\.c'|ALSA lib |Failure: )")
"""What PortAudio's ALSA host API and libpulse print on stderr themselves when a device fails (no API stops it)."""

if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
    pytest.skip(
        "PulseAudio not installed (apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins; "
        ".ci/run does)",
        allow_module_level=True,
    )
if importlib.util.find_spec("sounddevice") is None or ctypes.util.find_library("portaudio") is None:
    pytest.skip(
        "sounddevice or PortAudio missing (pip install '.[mic]'; apt-get install libportaudio2)",
        allow_module_level=True,
    )


class PulseServer:
    """A PulseAudio daemon in a folder of its own (socket, state, home), so it meets no other server; its null
    sink ``emo`` is fed silence so it runs at low latency before the speech comes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "native"
        for part in ("state", "home"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(folder / "home"),
            "PULSE_RUNTIME_PATH": str(folder),
            "PULSE_STATE_PATH": str(folder / "state"),
            "PULSE_SERVER": f"unix:{self.socket}",
        }
        self.log = folder / "pulseaudio.log"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        command = [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disable-shm=yes",
            "-L",
            f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            "-L",
            "module-null-sink sink_name=emo",
        ]
        with self.log.open("w") as log:
            self.server = self._spawn(command, log)
        deadline = time.monotonic() + 10
        while self.pactl("info").returncode != 0:
            if self.server.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"PulseAudio did not start here: {self.log.read_text()[-500:]}")
            time.sleep(0.1)
        silence = ["pacat", "-p", "-d", "emo", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1"]
        with Path("/dev/zero").open("rb") as zeros:
            self._spawn([*silence, "--latency-msec=20"], subprocess.DEVNULL, stdin=zeros)
        # A fresh null sink starts about 2 s behind and catches up at about 1 s per second.
        deadline = time.monotonic() + 10
        while self.latency_us() > 50_000:
            assert time.monotonic() < deadline, "the null sink's latency never came down"
            time.sleep(0.1)

    def _spawn(self, command: list[str], output, stdin=None) -> subprocess.Popen:
        process = subprocess.Popen(command, env=self.env, stdin=stdin, stdout=output, stderr=output)
        self.processes.append(process)
        return process

    def pactl(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *arguments], env=self.env, capture_output=True, text=True, timeout=10)

    def latency_us(self) -> int:
        found = re.search(r"Latency: (\d+) usec", self.pactl("list", "sinks").stdout)
        return int(found.group(1)) if found else 10**9

    def play(self, path: Path) -> subprocess.Popen:
        return self._spawn(["paplay", "-d", "emo", str(path)], subprocess.DEVNULL)

    def kill(self) -> None:
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=10)

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def point_at(server: PulseServer, monkeypatch: pytest.MonkeyPatch) -> PulseServer:
    """This process's environment, inherited by the daemons the test starts, names the server and its null
    sink's monitor."""
    monkeypatch.setenv("PULSE_SERVER", server.env["PULSE_SERVER"])
    monkeypatch.setenv("PULSE_SOURCE", "emo.monitor")
    return server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[PulseServer]:
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pulse(shared_server: PulseServer, monkeypatch: pytest.MonkeyPatch) -> PulseServer:
    """The module's server, for tests that leave it as they found it."""
    return point_at(shared_server, monkeypatch)


@pytest.fixture
def own_pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseServer]:
    """A server of the test's own, for tests that unload its sink or kill it."""
    server = PulseServer(tmp_path / "pulse")
    try:
        server.start()
        yield point_at(server, monkeypatch)
    finally:
        server.close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_fake_bundle(tmp_path_factory.mktemp("bundle"), speaker=True)


@pytest.fixture(scope="module")
def speech(tmp_path_factory, demo_dir: Path) -> Path:
    """Three demo sentences with 1.2 s of silence around each, as 16-bit PCM (what paplay plays)."""
    pieces = [np.zeros(RATE)]
    for name in CLIPS:
        pieces += [speech_only(load_audio(demo_dir / name)[0]), np.zeros(int(1.2 * RATE))]
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(path, np.concatenate(pieces), RATE, subtype="PCM_16")
    return path


def started(stream: str):
    return lambda ms: any(isinstance(m, StreamStarted) and m.stream == stream for m in ms)


def ended(messages, stream_prefix: str) -> dict | None:
    return next(
        (m.to_payload() for m in messages if isinstance(m, StreamEnded) and m.stream.startswith(stream_prefix)),
        None,
    )


def utterances(messages, stream_prefix: str) -> list[dict]:
    return [m.to_payload() for m in messages if m.kind == "utterance" and m.stream.startswith(stream_prefix)]


def stderr_lines(process: subprocess.Popen) -> list[str]:
    return [line for line in process.stderr.read().splitlines() if line.strip()]


def test_list_devices_shows_the_sound_servers_devices(pulse: PulseServer) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "emoscribe", "run", "--list-devices"], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    names = [line.lstrip("* ").split()[1] for line in listing.stdout.splitlines()[1:]]
    assert "pulse" in names and "default" in names, listing.stdout
    assert sum(line.startswith("*") for line in listing.stdout.splitlines()) == 1, "one default input"


def test_no_sound_server_lists_no_devices_in_one_line(tmp_path: Path) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "emoscribe", "run", "--list-devices"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PULSE_SERVER": f"unix:{tmp_path / 'nobody-listens'}"},
    )
    assert listing.returncode == 1
    assert listing.stderr.strip().splitlines() == [
        "emoscribe run: no input audio devices (no sound card or sound server seen)"
    ]


def test_a_missing_device_is_one_start_up_line_naming_those_there_are(pulse: PulseServer, bundle: Path) -> None:
    line = run_fails("--bundle", str(bundle), "--source", "mic:no-such-mic", "--no-metrics")
    assert "no input audio device matches 'no-such-mic'" in line and "0: 'pulse' (ALSA, 44100 Hz)" in line


STALLED_LOOP = """
import asyncio, json, time
from emoscribe.daemon.sources.mic_source import MicSource

class Sink:
    frames = []
    def stream_started(self, info): pass
    def frame(self, frame): self.frames.append((frame.start, frame.samples.size))
    def stream_ended(self, stream, reason): self.reason = reason

async def main():
    source, sink, stop = MicSource("pulse", max_pending_blocks=5), Sink(), asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    began = time.monotonic()
    await asyncio.sleep(0.5)
    time.sleep(1.0)  # the event loop stalls; PortAudio's thread must not
    await asyncio.sleep(0.5)
    stop.set()
    await task
    print(json.dumps({"rejected": source.rejected, "frames": sink.frames, "reason": sink.reason,
                      "seconds": time.monotonic() - began}))

asyncio.run(main())
"""


def test_a_stalled_event_loop_costs_counted_blocks_not_stream_time(pulse: PulseServer) -> None:
    """The real PortAudio callback thread against an event loop that stops for a second, with room for five
    blocks: the rest are counted as dropped and stand as silence, so stream time still follows the clock."""
    result = subprocess.run([sys.executable, "-c", STALLED_LOOP], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reason"] == "shutdown"
    assert 30 <= report["rejected"]["queue_full"] <= 55, report["rejected"]  # about 1.0 s of 20 ms blocks - 5
    frames = report["frames"]
    assert all(abs(b[0] - (a[0] + a[1] / RATE)) < 1e-9 for a, b in pairwise(frames))
    recorded = frames[-1][0] + frames[-1][1] / RATE
    assert abs(recorded - report["seconds"]) < 0.25, (recorded, report["seconds"])


def test_the_microphone_hears_what_the_file_source_reads(
    pulse: PulseServer, bundle: Path, speech: Path, tmp_path: Path
) -> None:
    """The same clips through the sound server and from the file: same utterances, same boundaries up to the
    playback offset, same labels."""
    process, subscriber = start_daemon(bundle, tmp_path, "mic:pulse", f"file:{speech}", realtime=True)
    messages = collect(subscriber, started("mic"), timeout=60)
    assert started("mic")(messages), process.stderr.read() if process.poll() is not None else "no mic stream"
    pulse.play(speech)
    messages += collect(
        subscriber,
        lambda ms: (
            ended(messages + ms, "file-") is not None
            and len(utterances(messages + ms, "mic")) >= len(utterances(messages + ms, "file-"))
        ),
        timeout=40,
    )
    messages += collect(subscriber, lambda ms: False, timeout=1.0)  # an extra utterance would come by now
    process.send_signal(signal.SIGTERM)
    messages += collect(subscriber, lambda ms: ended(ms, "mic") is not None, timeout=20)
    process.wait(timeout=20)
    subscriber.close()
    assert process.returncode == 0
    errors = [line for line in stderr_lines(process) if LOG_LINE.match(line)]
    assert not errors, errors

    heard, read = utterances(messages, "mic"), utterances(messages, "file-")
    assert len(read) == len(CLIPS), read
    assert len(heard) == len(read), [(u["start"], u["end"]) for u in heard]
    offset = float(np.median([h["start"] - r["start"] for h, r in zip(heard, read, strict=True)]))
    assert 0.0 <= offset < 5.0, f"playback began {offset:.3f} s into the mic stream"
    for h, r in zip(heard, read, strict=True):
        assert abs(h["start"] - offset - r["start"]) <= TOLERANCE_S, (h["start"], r["start"], offset)
        assert abs(h["end"] - offset - r["end"]) <= TOLERANCE_S, (h["end"], r["end"], offset)
        assert h["emotion"]["label"] == r["emotion"]["label"]
        assert h["emotion"]["speaker_reference"] == r["emotion"]["speaker_reference"]
    assert ended(messages, "mic")["reason"] == "shutdown"
    mic_start = next(m.to_payload() for m in messages if isinstance(m, StreamStarted) and m.stream == "mic")
    assert mic_start["details"]["device"] == "pulse" and mic_start["details"]["rate"] == 44_100
    if importlib.util.find_spec("faster_whisper") is not None:  # [asr] enabled = "auto": the microphone only
        transcripts = [m for m in messages if isinstance(m, Transcript)]
        assert {t.utterance_seq for t in transcripts if t.stream == "mic"} == {h["seq"] for h in heard}
        assert all(t.stream == "mic" for t in transcripts), "file streams are not transcribed by default"


@pytest.mark.parametrize("how", ["kill the server", "unload the sink"])
def test_a_device_lost_mid_run_ends_its_stream_and_the_file_source_goes_on(
    own_pulse: PulseServer, bundle: Path, speech: Path, tmp_path: Path, how: str
) -> None:
    process, subscriber = start_daemon(bundle, tmp_path, "mic:pulse", f"file:{speech}", realtime=True)
    messages = collect(subscriber, started("mic"), timeout=60)
    own_pulse.play(speech)
    messages += collect(subscriber, lambda ms: len(utterances(ms, "mic")) >= 1, timeout=20)
    assert utterances(messages, "mic"), "the mic is heard before it is lost"
    if how == "kill the server":
        own_pulse.kill()
    else:
        assert own_pulse.pactl("unload-module", "module-null-sink").returncode == 0
    messages += collect(subscriber, lambda ms: ended(ms, "mic") is not None, timeout=10)
    lost = ended(messages, "mic")
    assert lost is not None and lost["reason"] == "device_lost"
    read_before = len(utterances(messages, "file-"))
    messages += collect(subscriber, lambda ms: len(utterances(ms, "file-")) >= 1, timeout=20)
    assert len(utterances(messages, "file-")) > read_before, "the file source goes on publishing without the mic"
    process.send_signal(signal.SIGTERM)
    messages += collect(subscriber, lambda ms: ended(ms, "file-") is not None, timeout=20)
    process.wait(timeout=20)
    subscriber.close()
    assert process.returncode == 0
    assert len(utterances(messages, "mic")) == 1 and ended(messages, "file-")["reason"] == "shutdown"
    lines = stderr_lines(process)
    logged = [line for line in lines if LOG_LINE.match(line)]
    assert len(logged) == 1 and "mic: input device 0: 'pulse'" in logged[0] and "lost after" in logged[0], lines
    assert all(LOG_LINE.match(line) or C_LIBRARY_LINE.match(line) for line in lines), lines


def test_a_device_that_refuses_to_open_is_one_line_and_the_file_source_goes_on(
    pulse: PulseServer, bundle: Path, speech: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device is listed but the server refuses the recording (its source is not there): the open fails."""
    monkeypatch.setenv("PULSE_SOURCE", "no-such-source")
    process, subscriber = start_daemon(bundle, tmp_path, "mic:pulse", f"file:{speech}")
    messages = collect(subscriber, lambda ms: ended(ms, "file-") is not None, timeout=60)
    process.wait(timeout=20)
    subscriber.close()
    assert process.returncode == 0
    assert not [m for m in messages if m.stream == "mic"], "no mic stream starts"
    assert len(utterances(messages, "file-")) == len(CLIPS)
    lines = stderr_lines(process)
    logged = [line for line in lines if LOG_LINE.match(line)]
    assert len(logged) == 1 and "mic: cannot open input device 0: 'pulse'" in logged[0], lines
    assert all(LOG_LINE.match(line) or C_LIBRARY_LINE.match(line) for line in lines), lines
