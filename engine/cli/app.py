"""The `orderbank` command: thin adapters from the terminal to the core, the replay lab and the engine.

One Typer app; each command group registers itself from its module: core.py (synth, fold, policies, schema),
replay.py (demo, replay), eta.py (eta backtest), stream.py (broker, produce, worker, watch) and up.py (up).
"""

from __future__ import annotations

import typer

from orderbank.engine.cli import core, eta, replay, stream

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
for group in (core, replay, eta, stream):
    group.register(app)


def main() -> None:
    app()
