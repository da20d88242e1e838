"""The `orderbank` command: thin adapters from the terminal to the core, the replay lab and the engine.

One Typer app; each command group registers itself from its module: core.py (synth, fold, policies, schema),
replay.py (demo, replay), eta.py (eta backtest), stream.py (broker, produce, worker, watch), up.py (up) and
serve.py (serve, lookup-secret).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from orderbank.engine.cli import core, eta, replay, serve, stream
from orderbank.engine.cli.output import console

app = typer.Typer(no_args_is_help=True, help=__doc__.split("\n\n")[0])


def _print_version(wanted: bool) -> None:
    if wanted:
        console.print(f"orderbank {version('orderbank')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit.")] = False,
) -> None:
    """Options of the `orderbank` command itself, before any subcommand."""


for group in (core, replay, eta, stream, serve):
    group.register(app)


def main() -> None:
    app()
