"""CURVE for real: a daemon with a key pair and an allowlist publishes only to the listed client with the right
server key; no key, a wrong server key and an unlisted client key receive nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import zmq
from test_daemon_e2e import bundle_dir, collect, conversation, free_port, start_daemon, stream_ended  # noqa: F401

from emoscribe.clients.control import ControlClient, ControlError
from emoscribe.clients.subscriber import Subscriber
from emoscribe.curve import CurveError, CurveServer, load_key_pair, load_public_key
from emoscribe.daemon.config import ConfigError, load_config
from emoscribe.messages import StreamEnded, StreamStarted


def make_keys(folder: Path, name: str) -> tuple[Path, Path]:
    result = subprocess.run(
        [sys.executable, "-m", "emoscribe", "keys", name, "--out", str(folder)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return folder / f"{name}.key", folder / f"{name}.key_secret"


def test_keys_command_writes_a_private_pair_and_never_overwrites(tmp_path: Path) -> None:
    public, secret = make_keys(tmp_path, "server")
    assert load_public_key(public) == load_key_pair(secret)[0]
    assert secret.stat().st_mode & 0o077 == 0, "the secret key is readable by its owner only"
    command = [sys.executable, "-m", "emoscribe", "keys", "server", "--out", str(tmp_path)]
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 1 and "not overwriting" in again.stderr
    assert load_public_key(public) == load_key_pair(secret)[0]


def test_curve_config_never_fails_open(tmp_path: Path) -> None:
    _, secret = make_keys(tmp_path / "server", "server")
    with pytest.raises(ConfigError, match="curve_clients"):
        load_config(environ={"EMOSCRIBE_PUBLISH_CURVE_SECRET_KEY": str(secret)})
    empty = tmp_path / "clients"
    empty.mkdir()
    with pytest.raises(CurveError, match="no client public keys"):
        CurveServer(secret, empty, zmq.Context.instance())
    public, _ = make_keys(tmp_path / "server", "lonely")
    with pytest.raises(CurveError, match="holds no secret key"):
        CurveServer(public, empty, zmq.Context.instance())


def test_only_the_listed_client_with_the_right_server_key_receives(
    bundle_dir: Path,  # noqa: F811
    tmp_path: Path,
    demo_dir: Path,
) -> None:
    server_public, server_secret = make_keys(tmp_path / "server", "server")
    clients = tmp_path / "clients"
    _, listed_secret = make_keys(clients, "alice")
    _, stranger_secret = make_keys(tmp_path / "strangers", "mallory")
    _, impostor_secret = make_keys(tmp_path / "strangers", "impostor")  # an unrelated "server" key
    wav = tmp_path / "call.wav"
    conversation(demo_dir, wav)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server_key = load_public_key(server_public)
    right = Subscriber(endpoint, server_key=server_key, client_keys=load_key_pair(listed_secret))
    unlisted = Subscriber(endpoint, server_key=server_key, client_keys=load_key_pair(stranger_secret))
    wrong_server = Subscriber(
        endpoint, server_key=load_public_key(impostor_secret), client_keys=load_key_pair(listed_secret)
    )
    control_endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {
        "EMOSCRIBE_PUBLISH_CURVE_SECRET_KEY": str(server_secret),
        "EMOSCRIBE_PUBLISH_CURVE_CLIENTS": str(clients),
        "EMOSCRIBE_CONTROL_ENDPOINT": control_endpoint,
    }
    process, no_key = start_daemon(bundle_dir, tmp_path, f"file:{wav}", env=env, endpoint=endpoint, realtime=True)
    try:
        admitted = ControlClient(control_endpoint, server_key, load_key_pair(listed_secret), timeout_s=20)
        assert admitted.list() == [], "the listed client reaches the control socket"
        admitted.close()
        for keys in ({}, {"server_key": server_key, "client_keys": load_key_pair(stranger_secret)}):
            with pytest.raises(ControlError, match="no answer"):
                ControlClient(control_endpoint, timeout_s=1.0, **keys).list()
        received = collect(right, stream_ended, timeout=60)
        process.wait(timeout=30)
        assert process.returncode == 0, process.stderr.read()
    finally:
        process.kill()
    stream = [m for m in received if m.kind != "heartbeat"]
    assert isinstance(stream[0], StreamStarted) and isinstance(stream[-1], StreamEnded)
    assert [m.seq for m in stream] == list(range(len(stream))), "the admitted client misses nothing"
    assert any(m.kind == "utterance" for m in stream)
    for refused in (no_key, unlisted, wrong_server):
        assert refused.receive(500) is None
    for subscriber in (right, unlisted, wrong_server, no_key):
        subscriber.close()
