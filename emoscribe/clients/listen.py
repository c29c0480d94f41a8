"""``emoscribe listen``: print the daemon's messages live, pretty for people or as JSON lines for pipes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from emoscribe.clients.cli_options import curve_options
from emoscribe.clients.subscriber import Subscriber
from emoscribe.messages import (
    CUES_ONLY,
    DEFAULT_ENDPOINT,
    Heartbeat,
    Message,
    PartialCues,
    StreamStarted,
    Summary,
    Transcript,
    Utterance,
    message_types,
)

KINDS = tuple(dict.fromkeys(cls.kind for cls in message_types()))


def render_cues(cues: dict) -> str:
    f0, level = cues.get("f0_median_hz"), cues.get("intensity_mean_db")
    return ", ".join([f"F0 {f0:.0f} Hz" if f0 else "F0 -", f"{level:.1f} dB" if level else "level -"])


def render(message: Message) -> str:
    """One line of rich markup per message."""
    where = (
        f"[cyan]{message.stream}[/cyan] {getattr(message, 'start', 0):7.2f}-{getattr(message, 'end', 0):7.2f} s"
    )
    if isinstance(message, Utterance) and message.policy == CUES_ONLY:
        return f"{where} [dim]cues only ({message.role}): {render_cues(message.cues)}[/dim]"
    if isinstance(message, Utterance):
        confidence = message.emotion.get("confidence", 0.0)
        label = f"[bold]{message.label or message.abstain_reason or 'uncertain'}[/bold] ({confidence:.2f})"
        prompts = "; ".join(f"{x['text']} {x['score']:.2f}" for x in message.prompts)
        latency = message.latency.get("end_to_publish_ms", 0.0)
        return f"{where} {label}  {message.caption}  [dim]{prompts}  {latency:.1f} ms[/dim]"
    if isinstance(message, Transcript):
        latency = message.latency.get("end_to_publish_ms", 0.0)
        return f"{where} [green]“{escape(message.text)}”[/green]  [dim]{message.language}, {latency:.0f} ms[/dim]"
    if isinstance(message, PartialCues):
        return f"{where} [dim]… {render_cues(message.cues)}[/dim]"
    if isinstance(message, Summary):
        emotions = ", ".join(f"{label} {n}" for label, n in message.emotions.items()) or "no labels"
        return (
            f"{where} [yellow]summary[/yellow] {message.utterances} utterances, "
            f"speech {100 * message.speech_ratio:.0f} %, {emotions}"
        )
    if isinstance(message, Heartbeat):
        return f"[dim]heartbeat: {message.active_streams} streams, queue {message.queue_depth}[/dim]"
    event = getattr(message, "event", message.kind)
    joined = " (open before you joined)" if isinstance(message, StreamStarted) and message.snapshot else ""
    return f"{where} [yellow]{message.kind} {event}[/yellow] {getattr(message, 'reason', None) or ''}{joined}"


def listen_command(
    endpoint: Annotated[str, typer.Option(help="The daemon's publisher endpoint.")] = DEFAULT_ENDPOINT,
    kind: Annotated[list[str] | None, typer.Option(help=f"Message kinds to show ({', '.join(KINDS)}).")] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: {topic, payload}.")] = False,
    count: Annotated[int, typer.Option(help="Exit after this many messages (0: never).")] = 0,
    timeout: Annotated[float, typer.Option(help="Exit after this many seconds without a message (0: never).")] = 0,
    server_key: Annotated[Path | None, typer.Option(help="The daemon's CURVE public key file (.key).")] = None,
    client_key: Annotated[
        Path | None,
        typer.Option(help="This client's CURVE secret key file (.key_secret), listed with the daemon."),
    ] = None,
) -> None:
    """Subscribe to a running daemon and print what it publishes."""
    kinds = kind or list(KINDS)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    topics = [k if k == "heartbeat" else f"{k}.{stream}" if stream else f"{k}." for k in kinds]
    subscriber = Subscriber(endpoint, topics, **curve_options(server_key, client_key))
    console = Console(highlight=False)
    seen = 0
    try:
        while count == 0 or seen < count:
            message = subscriber.receive(int(timeout * 1000) if timeout else None)
            if message is None:
                break
            seen += 1
            if as_json:
                print(json.dumps({"topic": message.topic, "payload": message.to_payload()}), flush=True)
            else:
                console.print(render(message))
    except KeyboardInterrupt:
        pass
    finally:
        subscriber.close()
    if subscriber.gaps and set(kinds) == set(KINDS):
        print(f"lost messages per stream: {dict(subscriber.gaps)}", file=sys.stderr)
