"""``emoscribe run``: start the daemon; every start-up failure is one clear line on stderr and exit status 1."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from emoscribe.bundle import BundleError, default_bundle_path
from emoscribe.daemon.config import ConfigError, load_config
from emoscribe.logs import configure_logging
from emoscribe.messages import Message

log = logging.getLogger("emoscribe")


def _ensure_default_bundle(spec: str) -> None:
    """Build a default bundle on first use, in a child process (the daemon itself never imports torch)."""
    if Path(spec).is_dir() or (default_bundle_path(spec) / "manifest.json").exists():
        return
    if importlib.util.find_spec("torch") is None:
        return
    print(f"building default bundle {spec!r} once (emoscribe export --bundle {spec}) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "emoscribe", "export", "--bundle", spec], check=True)


def run_command(
    config: Annotated[Path | None, typer.Option(help="TOML configuration file.")] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="file:PATH, mic:[DEVICE], stdin:[RATE] or rtp://HOST:PORT (repeat).")
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Play the bundled demo clips (a stream per speaker) and print what is published.")
    ] = False,
    realtime: Annotated[bool | None, typer.Option(help="Pace file sources in real time (demo: no).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes sharing the RTP call legs (default 1).")] = None,
    bundle: Annotated[str | None, typer.Option(help="Bundle directory or default bundle name.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, tensorrt, cuda or cpu.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="ZeroMQ endpoint to publish on.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port.")] = None,
    no_metrics: Annotated[bool, typer.Option("--no-metrics", help="Do not serve Prometheus metrics.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "warning",
    json_logs: Annotated[bool, typer.Option("--json-logs", help="JSON-lines logs on stderr.")] = False,
    list_devices: Annotated[
        bool, typer.Option("--list-devices", help="List the input audio devices mic: can name, and exit.")
    ] = False,
) -> None:
    """Run the streaming daemon: segment speech, describe each utterance, publish over ZeroMQ."""
    if list_devices:
        _list_devices()
        return
    from emoscribe.daemon.app import build_service, make_producers, serve
    from emoscribe.daemon.sources.file_source import FileSource
    from emoscribe.demo import demo_streams

    configure_logging(log_level, json_logs)
    try:
        settings = load_config(
            config,
            sources=list(source) if source else None,
            realtime=realtime if realtime is not None else (False if demo else None),
            workers=workers,
            engine__bundle=bundle,
            engine__device=device,
            publish__endpoint=endpoint,
            metrics__port=metrics_port,
            metrics__enabled=False if no_metrics else None,
        )
        if not settings.sources and not demo:
            raise ConfigError("no sources: give --source (file:, mic:, stdin:, rtp://), a config file, or --demo")
        _ensure_default_bundle(settings.engine.bundle)
        service = build_service(settings, echo=_printer() if demo else None)
        streams = demo_streams() if demo else {}
        extra = [FileSource(paths, name, realtime=settings.realtime) for name, paths in streams.items()]
        producers = make_producers(settings, service.describer.binner, extra, json_logs)
    except (ConfigError, BundleError, OSError, RuntimeError, ValueError, subprocess.CalledProcessError) as error:
        print(f"emoscribe run: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    drained = asyncio.run(serve(service, producers, lambda: load_config(config).roles))
    if service.failures:
        print(f"emoscribe run: {'; '.join(service.failures)}", file=sys.stderr)
        raise typer.Exit(1)
    if not drained:
        print("emoscribe run: the drain deadline passed with utterances still queued", file=sys.stderr)


def keys_command(
    name: Annotated[str, typer.Argument(help="Name of the key pair, e.g. server or the client's name.")],
    out: Annotated[Path, typer.Option(help="Folder for NAME.key (public) and NAME.key_secret.")] = Path(),
) -> None:
    """Create a CURVE key pair for the daemon (server) or for a subscriber (client).

    Give the daemon the server's .key_secret (publish.curve_secret_key) and a folder holding each admitted
    client's .key (publish.curve_clients); give each client the server's .key and its own .key_secret."""
    import zmq.auth

    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise typer.BadParameter(f"{name!r}: use letters, digits, '-' and '_' only")
    out.mkdir(parents=True, exist_ok=True)
    for suffix in (".key", ".key_secret"):
        if (out / f"{name}{suffix}").exists():
            print(f"emoscribe keys: {out / (name + suffix)} exists; not overwriting a key", file=sys.stderr)
            raise typer.Exit(1)
    public, secret = zmq.auth.create_certificates(out, name)
    Path(secret).chmod(0o600)
    print(f"public key: {public}\nsecret key: {secret} (keep it private)")


def _list_devices() -> None:
    """The input devices PortAudio sees, one per line (``*`` the default); none, or no PortAudio, is one line
    on stderr and exit status 1."""
    from emoscribe.daemon.sources.audio_devices import device_table, input_devices

    try:
        devices = input_devices()
    except RuntimeError as error:
        print(f"emoscribe run: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    if not devices:
        print("emoscribe run: no input audio devices (no sound card or sound server seen)", file=sys.stderr)
        raise typer.Exit(1)
    print("\n".join(device_table(devices)))


def _printer() -> Callable[[Message], None]:
    """Print each published message as the listener would."""
    from emoscribe.clients.listen import render

    console = Console(highlight=False)
    return lambda message: console.print(render(message))
