"""``emoscribe listen``: print the daemon's messages live, pretty for people or as JSON lines for pipes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import zmq
from rich.console import Console

from emoscribe.clients.subscriber import Message, Subscriber
from emoscribe.daemon.publisher import DEFAULT_ENDPOINT

KINDS = ("utterance", "cues", "stream", "heartbeat")


def render(message: Message) -> str:
    """One line of rich markup per message."""
    p = message.payload
    where = f"[cyan]{message.stream}[/cyan] {p.get('start', 0):7.2f}-{p.get('end', 0):7.2f} s"
    if message.kind == "utterance":
        emotion = p["emotion"]
        label = f"[bold]{emotion['label'] or 'uncertain'}[/bold] ({emotion['confidence']:.2f})"
        prompts = "; ".join(f"{x['text']} {x['score']:.2f}" for x in p["prompts"])
        latency = p["latency"].get("end_to_publish_ms", 0.0)
        return f"{where} {label}  {p['caption']}  [dim]{prompts}  {latency:.1f} ms[/dim]"
    if message.kind == "cues":
        cues = p["cues"]
        f0 = cues.get("f0_median_hz")
        level = cues.get("intensity_mean_db")
        parts = [f"F0 {f0:.0f} Hz" if f0 else "F0 -", f"{level:.1f} dB" if level else "level -"]
        return f"{where} [dim]… {', '.join(parts)}[/dim]"
    if message.kind == "stream":
        return f"{where} [yellow]stream {p['event']}[/yellow] {p.get('reason') or ''}"
    return f"[dim]heartbeat: {p['active_streams']} streams, queue {p.get('queue_depth', 0)}[/dim]"


def listen_command(
    endpoint: Annotated[str, typer.Option(help="The daemon's publisher endpoint.")] = DEFAULT_ENDPOINT,
    kind: Annotated[list[str] | None, typer.Option(help=f"Message kinds to show ({', '.join(KINDS)}).")] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: {topic, payload}.")] = False,
    count: Annotated[int, typer.Option(help="Exit after this many messages (0: never).")] = 0,
    timeout: Annotated[float, typer.Option(help="Exit after this many seconds without a message (0: never).")] = 0,
    server_key: Annotated[Path | None, typer.Option(help="The daemon's CURVE public key file.")] = None,
) -> None:
    """Subscribe to a running daemon and print what it publishes."""
    kinds = kind or list(KINDS)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    topics = [k if k == "heartbeat" else f"{k}.{stream}" if stream else f"{k}." for k in kinds]
    key = zmq.auth.load_certificate(str(server_key))[0] if server_key else None
    subscriber = Subscriber(endpoint, topics, server_key=key)
    console = Console(highlight=False)
    seen = 0
    try:
        while count == 0 or seen < count:
            message = subscriber.receive(int(timeout * 1000) if timeout else None)
            if message is None:
                break
            seen += 1
            if as_json:
                print(json.dumps({"topic": message.topic, "payload": message.payload}), flush=True)
            else:
                console.print(render(message))
    except KeyboardInterrupt:
        pass
    finally:
        subscriber.close()
    if subscriber.gaps and set(kinds) == set(KINDS):
        print(f"lost messages per stream: {dict(subscriber.gaps)}", file=sys.stderr)
