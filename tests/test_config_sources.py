"""Configuration that used to fail open or silently: empty allowlists, strings for lists, sources that all fail.

An operator who writes ``allow = []`` means "nobody", not "anybody"; ``sources = "rtp://..."`` is a typo for a
list; a daemon whose every source failed has nothing to do and must say so with a non-zero exit.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_bundle import make_fake_bundle

from emoscribe.daemon.config import ConfigError, load_config
from emoscribe.daemon.sources import open_sources


def configured(tmp_path: Path, text: str, environ: dict[str, str] | None = None):
    path = tmp_path / "daemon.toml"
    path.write_text(text)
    return load_config(path, environ=environ or {})


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[rtp]\nallow = []\n", {}, "allow is empty, which would accept no sender"),
        ("", {"EMOSCRIBE_RTP_ALLOW": ""}, "allow is empty"),
        ("", {"EMOSCRIBE_RTP_ALLOW": " , "}, "allow is empty"),
        ("[rtp]\nallow = ['10.0.0.300/8']\n", {}, "10.0.0.300/8"),
        ("[rtp]\nallow = '127.0.0.0/8'\n", {}, "rtp.allow: expected a list of strings"),
        ("sources = 'rtp://127.0.0.1:5004'\n", {}, "sources: expected a list of strings"),
        ("[rtp]\nmax_streams_per_address = 0\n", {}, "max_streams_per_address must be positive"),
        ("[rtp]\nspeech_level_dbfs = 3\n", {}, "speech_level_dbfs must be below 0"),
        ("[rtp]\nreceive_buffer_bytes = 0\n", {}, "receive_buffer_bytes must be positive"),
        ("[rtp]\nstream_key = 'addr'\n", {}, "stream_key must be one of"),
    ],
)
def test_settings_that_would_fail_open_are_refused_by_name(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        configured(tmp_path, text, environ)


def test_environment_lists_stay_comma_separated(tmp_path: Path) -> None:
    config = configured(
        tmp_path,
        "",
        {"EMOSCRIBE_SOURCES": "file:a.wav, rtp://127.0.0.1:5004", "EMOSCRIBE_RTP_ALLOW": "10.0.0.0/8"},
    )
    assert config.sources == ("file:a.wav", "rtp://127.0.0.1:5004")
    assert config.rtp.allow == ("10.0.0.0/8",)


def test_rtp_settings_reach_the_source(tmp_path: Path) -> None:
    config = configured(
        tmp_path,
        "sources = ['rtp://127.0.0.1:0']\n[rtp]\nallow = ['0.0.0.0/0', '::/0']\nmax_streams = 7\n"
        "max_streams_per_address = 3\nunvoiced_timeout_s = 4.5\nspeech_level_dbfs = -40\n"
        "receive_buffer_bytes = 65536\ninactivity_timeout_s = 1.5\n",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        (source,) = open_sources(config, [sock])
        policy = source.config.policy
        assert (policy.max_streams, policy.max_streams_per_address, policy.allow) == (7, 3, ("0.0.0.0/0", "::/0"))
        assert (policy.unvoiced_timeout, policy.speech_level_dbfs, policy.inactivity_timeout) == (4.5, -40.0, 1.5)
        assert source.config.receive_buffer_bytes == 65536


def run_daemon(bundle: Path, tmp_path: Path, *sources: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "daemon.toml"
    config.write_text("realtime = false\n[publish]\njoin_delay_s = 0.1\n[metrics]\nenabled = false\n")
    command = [sys.executable, "-m", "emoscribe", "run", "--config", str(config), "--bundle", str(bundle)]
    command += ["--endpoint", "tcp://127.0.0.1:0"]
    for source in sources:
        command += ["--source", source]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_a_daemon_whose_every_source_failed_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    bundle = make_fake_bundle(tmp_path / "bundle")
    garbage, empty, nan = tmp_path / "garbage.wav", tmp_path / "empty.wav", tmp_path / "nan.wav"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    empty.write_bytes(b"")
    sf.write(nan, np.full(16_000, np.nan, dtype=np.float32), 16_000, subtype="FLOAT")
    result = run_daemon(bundle, tmp_path, f"file:{garbage}", f"file:{empty}", f"file:{nan}")
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("emoscribe run:")]
    assert "every source failed" in line
    assert str(garbage) in line and str(empty) in line and "NaN" in line


def test_a_failed_source_beside_a_working_one_is_logged_and_the_daemon_goes_on(tmp_path: Path) -> None:
    bundle = make_fake_bundle(tmp_path / "bundle")
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, np.zeros(8_000, dtype=np.float32), 16_000)
    bad.write_bytes(b"RIFF not really")
    result = run_daemon(bundle, tmp_path, f"file:{good}", f"file:{bad}")
    assert result.returncode == 0, result.stderr
    assert "source FileSource failed" in result.stderr and str(bad) in result.stderr
