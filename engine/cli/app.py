"""The `orderbank` command: thin adapters from the terminal to the core, the replay lab and the engine.

One Typer app; each command group registers itself from its module: core.py (synth, fold, policies, schema),
replay.py (demo, replay), stream.py (broker, produce, worker, watch), up.py (up) and serve.py (serve,
lookup-secret).
"""

from __future__ import annotations

import typer

from orderbank.engine.cli import core, replay, serve, stream

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
for group in (core, replay, stream, serve):
    group.register(app)


def main() -> None:
    app()
