"""Interop with a real RTP sender nobody here wrote: ffmpeg's RTP muxer, PCMU and PCMA.

ffmpeg encodes the same speech twice: to a G.711 WAV file (played by a file source) and to RTP (sent to the
daemon's RTP source, paced at 4x real time), so both streams carry the same G.711 codes. PCMU goes in 20 ms
packets as a media server sends them, PCMA in ffmpeg's default of 1008-byte (126 ms) packets. Each RTP stream's
utterances must match its file twin's: the same count, starts and ends within 50 ms (about one VAD frame plus
the resamplers' difference), the same emotion label and posteriors within 0.01.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_bundle import make_fake_bundle
from test_daemon_e2e import collect, free_port, speech_only, start_daemon

from emoscribe.audio import load_audio
from emoscribe.messages import StreamEnded, StreamStarted

FFMPEG = shutil.which("ffmpeg")
RATE = 16_000
TOLERANCE_S = 0.05
POSTERIOR_TOLERANCE = 0.01
CODECS = {"PCMU": ("pcm_mulaw", "?pkt_size=172"), "PCMA": ("pcm_alaw", "")}

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (.ci/run installs Debian's)")


def speech_with_pauses(demo_dir: Path, path: Path) -> None:
    pieces = [np.zeros(RATE)]
    for name in ("03-01-05-02-01-01-10.flac", "03-01-01-01-01-01-03.flac", "03-01-04-01-01-01-03.flac"):
        pieces += [speech_only(load_audio(demo_dir / name)[0]), np.zeros(int(1.5 * RATE))]
    sf.write(path, np.concatenate(pieces), RATE)


def ffmpeg(*arguments: str) -> subprocess.Popen[str]:
    assert FFMPEG is not None
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_ffmpeg_rtp_gives_the_utterances_of_the_same_audio_played_from_a_file(
    tmp_path: Path, demo_dir: Path
) -> None:
    speech = tmp_path / "speech.wav"
    speech_with_pauses(demo_dir, speech)
    files = {}
    for codec, (encoder, _) in CODECS.items():
        files[codec] = tmp_path / f"{codec}.wav"
        encoding = ffmpeg("-i", str(speech), "-ar", "8000", "-ac", "1", "-acodec", encoder, str(files[codec]))
        assert encoding.wait(timeout=60) == 0, encoding.stderr.read() if encoding.stderr else ""
    port = free_port()
    bundle = make_fake_bundle(tmp_path / "bundle")
    process, subscriber = start_daemon(
        bundle,
        tmp_path,
        f"rtp://127.0.0.1:{port}",
        *(f"file:{path}" for path in files.values()),
        extra="[rtp]\ninactivity_timeout_s = 0.5\n",
    )
    try:
        messages = play(process, subscriber, speech, port)
    finally:
        process.kill()
        subscriber.close()
    check(messages, files)


def play(process, subscriber, speech: Path, port: int) -> list:
    """ffmpeg sends the speech in each codec to the daemon's RTP port; every message until all four end."""
    up = collect(subscriber, lambda ms: any(m.kind == "heartbeat" for m in ms), timeout=60)
    assert up, "the daemon came up"
    senders = [
        ffmpeg("-readrate", "4", "-i", str(speech), "-ar", "8000", "-ac", "1", "-acodec", encoder, "-f", "rtp",
               f"rtp://127.0.0.1:{port}{options}")
        for encoder, options in CODECS.values()
    ]  # fmt: skip
    for sender in senders:
        assert sender.wait(timeout=60) == 0, sender.stderr.read() if sender.stderr else ""

    def all_ended(messages: list) -> bool:
        return sum(isinstance(m, StreamEnded) for m in messages) == 4

    messages = up + collect(subscriber, all_ended, timeout=60)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return messages


def check(messages: list, files: dict[str, Path]) -> None:
    """Each codec's RTP stream gives the utterances of its file stream: times, labels and posteriors."""
    starts = {m.stream: m.details for m in messages if isinstance(m, StreamStarted)}
    utterances: dict[str, list[dict]] = {stream: [] for stream in starts}
    for message in messages:
        if message.kind == "utterance":
            utterances[message.stream].append(message.to_payload())
    for codec, path in files.items():
        (rtp,) = [stream for stream, details in starts.items() if details.get("encoding") == codec]
        (file,) = [stream for stream, details in starts.items() if details.get("files") == [str(path)]]
        heard, played = utterances[rtp], utterances[file]
        assert len(played) == 3, f"{codec}: the file gives the three sentences"
        assert len(heard) == len(played), f"{codec}: {len(heard)} utterances over RTP, {len(played)} from the file"
        for got, want in zip(heard, played, strict=True):
            assert abs(got["start"] - want["start"]) <= TOLERANCE_S, (codec, got["start"], want["start"])
            assert abs(got["end"] - want["end"]) <= TOLERANCE_S, (codec, got["end"], want["end"])
            assert got["emotion"]["label"] == want["emotion"]["label"], codec
            posteriors = got["emotion"]["posteriors"]
            assert posteriors.keys() == want["emotion"]["posteriors"].keys()
            gap = max(abs(p - want["emotion"]["posteriors"][label]) for label, p in posteriors.items())
            assert gap <= POSTERIOR_TOLERANCE, (codec, gap)
