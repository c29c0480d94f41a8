"""The ``emoscribe`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import typer

from emoscribe.clients.dashboard.command import dashboard_command
from emoscribe.clients.listen import listen_command
from emoscribe.clients.query_command import population_app, query_app
from emoscribe.clients.record import record_command
from emoscribe.cues.commands import cues_command, fit_bins_command, fit_grounding_command
from emoscribe.daemon.commands import keys_command, run_command
from emoscribe.training.commands import eval_command, export_command, train_command

app = typer.Typer(
    name="emoscribe",
    help="Streaming speech-emotion description: acoustic cues, emotion, acoustic prompts, captions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run_command)
app.command("listen")(listen_command)
app.command("keys")(keys_command)
app.add_typer(query_app, name="query")
app.add_typer(population_app, name="population")
app.command("record")(record_command)
app.command("dashboard")(dashboard_command)
app.command("cues")(cues_command)
app.command("fit-bins")(fit_bins_command)
app.command("fit-grounding")(fit_grounding_command)
app.command("train")(train_command)
app.command("export")(export_command)
app.command("eval")(eval_command)
