"""``emoscribe dashboard``: serve the live page (loopback unless ``--host`` says otherwise) until interrupted.

The web stack is imported only here, when the command runs, so ``emoscribe`` works without the extra."""

from __future__ import annotations

import contextlib
import socket
import sys
from types import FrameType
from typing import Annotated

import typer
import zmq

from emoscribe.clients.cli_options import ClientKey, ServerKey, curve_options
from emoscribe.messages import DEFAULT_ENDPOINT

DEFAULT_METRICS_URL = "http://127.0.0.1:9108/metrics"
KINDS = ("utterance", "cues", "stream", "alert")


def topics_for(streams: list[str] | None) -> list[str]:
    """Everything, or every kind of message of the given streams plus the daemon's heartbeat."""
    if not streams:
        return [""]
    return ["heartbeat", *(f"{kind}.{stream}" for stream in streams for kind in KINDS)]


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound and listening before the server starts, so that ``--port 0`` can print the
    port it got and a browser that connects at once is queued by the kernel instead of refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise OSError(f"cannot serve the dashboard on {host}:{port}: {error.strerror or error}") from error
    return sock


def dashboard_command(
    endpoint: Annotated[str, typer.Option(help="The daemon's publisher endpoint.")] = DEFAULT_ENDPOINT,
    metrics_url: Annotated[
        str, typer.Option(help="The daemon's Prometheus /metrics URL ('' to not watch its health).")
    ] = DEFAULT_METRICS_URL,
    host: Annotated[str, typer.Option(help="Address to serve the page on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve the page on (0: any free one).")] = 8765,
    stream: Annotated[list[str] | None, typer.Option(help="Only this stream (repeat); default: all.")] = None,
    max_streams: Annotated[int, typer.Option(help="Streams drawn at once (the most recently active).")] = 12,
    max_points: Annotated[int, typer.Option(help="Points kept per line of a plot.")] = 600,
    history: Annotated[int, typer.Option(help="Recent messages replayed to a page opened late.")] = 2000,
    scrape_interval: Annotated[float, typer.Option(help="Seconds between scrapes of the metrics.")] = 2.0,
    server_key: ServerKey = None,
    client_key: ClientKey = None,
) -> None:
    """Serve a live page of a running daemon: per-stream emotion, pitch and intensity, alerts, health."""
    if min(max_streams, max_points) < 1 or history < 0 or scrape_interval <= 0:
        raise typer.BadParameter(
            "--max-streams and --max-points must be ≥ 1, --history ≥ 0, --scrape-interval > 0"
        )
    try:
        import uvicorn

        from emoscribe.clients.dashboard.app import DashboardSettings, create_app
    except ImportError as error:
        print(
            f"emoscribe dashboard: needs the dashboard extra (pip install 'emoscribe[dashboard]'): {error}",
            file=sys.stderr,
        )
        raise typer.Exit(1) from error
    try:
        settings = DashboardSettings(
            endpoint,
            topics_for(stream),
            curve_options(server_key, client_key),
            metrics_url or None,
            scrape_interval,
            history,
            max_streams,
            max_points,
        )
        app = create_app(settings)
        sock = bind(host, port)
    except (OSError, ValueError, zmq.ZMQError) as error:
        print(f"emoscribe dashboard: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    address = sock.getsockname()
    where = f"[{address[0]}]" if sock.family == socket.AF_INET6 else address[0]
    print(f"emoscribe dashboard: http://{where}:{address[1]}/ (daemon {endpoint})", flush=True)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            """On SIGINT/SIGTERM also end the pages' event streams, which would hold up the shutdown."""
            super().handle_exit(sig, frame)
            app.state.close_pages()

    server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the signal it shut down for, once done
        server.run(sockets=[sock])
