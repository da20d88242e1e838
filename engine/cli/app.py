"""The `orderbank` command: thin adapters from the terminal to the core, the replay lab and the engine.

One Typer app; each command group registers itself from its module: core.py (synth, fold, policies, schema),
replay.py (demo, replay), eta.py (eta backtest), stream.py (broker, produce, worker), watch.py (watch), up.py (up)
and serve.py (serve, lookup-secret). A command that fails says so in a line or two (failure.py); every command that
talks to Kafka finds it the same way (connect.py).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from orderbank.engine.cli import core, eta, replay, serve, stream, up, watch
from orderbank.engine.cli.failure import DEBUG, Commands
from orderbank.engine.cli.output import console, quiet_kafka_clients

# A traceback's locals could hold a setting's secret: `--debug` shows where a failure came from, not the values.
app = typer.Typer(cls=Commands, no_args_is_help=True, help=__doc__.split("\n\n")[0],
                  pretty_exceptions_show_locals=False)


def _print_version(wanted: bool) -> None:
    if wanted:
        console.print(f"orderbank {version('orderbank')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="When a command fails, show the traceback instead of a line saying what went wrong.")]
    = False,
) -> None:
    """Options of the `orderbank` command itself, before any subcommand."""
    ctx.meta[DEBUG] = debug
    if not debug and ctx.invoked_subcommand != "worker":
        ctx.call_on_close(quiet_kafka_clients())


for group in (core, replay, eta, stream, watch, up, serve):
    group.register(app)


def main() -> None:
    app()
