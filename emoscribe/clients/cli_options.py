"""Options every client command shares: the daemon's CURVE keys, read once into the Subscriber's arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from emoscribe.curve import CurveError, load_key_pair, load_public_key

ServerKey = Annotated[Path | None, typer.Option(help="The daemon's CURVE public key file (.key).")]
ClientKey = Annotated[
    Path | None, typer.Option(help="This client's CURVE secret key file (.key_secret), listed with the daemon.")
]


def curve_options(server_key: Path | None, client_key: Path | None) -> dict[str, Any]:
    """``server_key`` and ``client_keys`` for a Subscriber or ControlClient; one clear error for a half-given
    or unreadable pair, nothing for neither."""
    if server_key is None and client_key is None:
        return {}
    if server_key is None or client_key is None:
        raise typer.BadParameter(
            "CURVE needs both --server-key (the daemon's .key) and --client-key (your .key_secret)"
        )
    try:
        return {"server_key": load_public_key(server_key), "client_keys": load_key_pair(client_key)}
    except CurveError as error:
        raise typer.BadParameter(str(error)) from error
