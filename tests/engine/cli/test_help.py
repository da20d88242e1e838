"""The `orderbank` command's own surface: --version, shell completion, and help that describes every option."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version

import pytest
import typer
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

from orderbank.engine.cli.app import app

runner = CliRunner()


Command = TyperCommand | TyperGroup


def commands(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command of the tree, with the words that reach it."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            assert isinstance(sub, TyperCommand | TyperGroup)
            yield from commands(sub, (*path, name))


root = typer.main.get_command(app)
assert isinstance(root, TyperGroup)
TREE = dict(commands(root))


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"orderbank {version('orderbank')}\n"


@pytest.mark.parametrize("path", sorted(TREE), ids=lambda path: " ".join(path) or "orderbank")
def test_every_option_and_argument_is_described(path: tuple[str, ...]) -> None:
    command = TREE[path]
    context = typer.Context(command, info_name=path[-1] if path else "orderbank")
    params = command.get_params(context)
    undescribed = [param.name for param in params if not getattr(param, "help", None)]
    assert not undescribed, f"`orderbank {' '.join(path)}`: no help for {undescribed}"
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    # A flag takes no value: typer 0.29 labelled each one <bool> (pyproject.toml keeps it below 0.29).
    assert "<bool>" not in result.output
    for param in params:
        assert any(name in result.output for name in (*param.opts, (param.name or "").upper())), param.name


def test_shell_completion_is_offered() -> None:
    assert {"install_completion", "show_completion"} <= {param.name for param in TREE[()].params}
    result = runner.invoke(app, ["--show-completion", "bash"], prog_name="orderbank")
    assert result.exit_code == 0 and "_ORDERBANK_COMPLETE=complete_bash" in result.output
