"""``emoscribe query add|list|remove`` and ``emoscribe population reset``: a running daemon's run-time queries
and population moments, over its control socket."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from emoscribe.clients.cli_options import ClientKey, ServerKey, curve_options
from emoscribe.clients.control import ControlClient, ControlError
from emoscribe.messages import DEFAULT_CONTROL_ENDPOINT

query_app = typer.Typer(help="Run-time queries of a running daemon (alerts when an utterance matches one).")
population_app = typer.Typer(help="The population moments a running daemon judges utterances against.")

Endpoint = Annotated[str, typer.Option(help="The daemon's control endpoint.")]


def _call(endpoint: str, server_key: Path | None, client_key: Path | None, action, command: str = "query") -> None:
    client = ControlClient(endpoint, **curve_options(server_key, client_key))
    try:
        print(json.dumps(action(client), indent=1))
    except ControlError as error:
        print(f"emoscribe {command}: {error}", file=sys.stderr)
        raise typer.Exit(1) from error
    finally:
        client.close()


@query_app.command("add")
def add_command(
    text: Annotated[str, typer.Argument(help='What to listen for, e.g. "an agitated customer".')],
    threshold: Annotated[float, typer.Option(help="Alert when an utterance's score reaches this (cosine).")] = 0.5,
    stream: Annotated[str | None, typer.Option(help="Only this (open) stream.")] = None,
    role: Annotated[str | None, typer.Option(help="Only streams of this role.")] = None,
    match: Annotated[
        str, typer.Option(help="Score the sound (acoustic), the transcript's words (lexical) or both.")
    ] = "acoustic",
    endpoint: Endpoint = DEFAULT_CONTROL_ENDPOINT,
    server_key: ServerKey = None,
    client_key: ClientKey = None,
) -> None:
    """Register a query; prints it with its id."""
    _call(endpoint, server_key, client_key, lambda c: c.add(text, threshold, stream, role, match))


@query_app.command("list")
def list_command(
    endpoint: Endpoint = DEFAULT_CONTROL_ENDPOINT, server_key: ServerKey = None, client_key: ClientKey = None
) -> None:
    """Print the registered queries."""
    _call(endpoint, server_key, client_key, lambda c: c.list())


@query_app.command("remove")
def remove_command(
    query_id: Annotated[str, typer.Argument(help="The id `add` or `list` printed.")],
    endpoint: Endpoint = DEFAULT_CONTROL_ENDPOINT,
    server_key: ServerKey = None,
    client_key: ClientKey = None,
) -> None:
    """Remove a query; its open alerts end without a `leave` message."""
    _call(endpoint, server_key, client_key, lambda c: c.remove(query_id))


@population_app.command("reset")
def reset_population_command(
    endpoint: Endpoint = DEFAULT_CONTROL_ENDPOINT, server_key: ServerKey = None, client_key: ClientKey = None
) -> None:
    """Forget the population moments (back to the bundle's priors), e.g. after moving a node to other lines."""
    _call(endpoint, server_key, client_key, lambda c: c.reset_population(), "population")
