"""The README's examples cannot drift: its shell blocks run as written, and none is left out silently.

Every shell block is preceded by a mark: `<!-- readme-test: run -->` (run here, in a scratch directory, in the
order they come), `<!-- readme-test: run with the broker -->` (run after those, with the test broker as the local
broker that `orderbank broker start` finds) or `<!-- readme-test: not run: why -->`. Every `orderbank` line of every
block, run or not, must name commands and options that exist, and every order id the README names must be one the
launches it makes have.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
import typer.main
from typer.core import TyperGroup

from orderbank.engine.cli.app import app
from orderbank.engine.cli.up import up
from orderbank.engine.dev.broker import Broker
from orderbank.engine.dev.ports import free_port
from orderbank.replay.synth import order_id
from tests import REPO_ROOT

README = REPO_ROOT / "README.md"
SHELLS = {"sh", "bash", "shell", "console"}
RUN, WITH_BROKER, NOT_RUN = "run", "run with the broker", "not run: "
MARK = re.compile(r"<!-- readme-test: (run|run with the broker|not run: .+) -->")
ORDER_ID = re.compile(r"\bYU7-(\d+)\b")
QUICK_START_LAUNCH = 3_000
"""Orders in the launch the README's quick start synthesises (`--preset yu7 --orders 3000 --seed 1`)."""


@dataclass(frozen=True)
class Block:
    line: int  # of its opening fence in README.md, 1-based
    text: str
    mark: str | None

    def command_lines(self) -> list[list[str]]:
        """Each command of each line, as words: a line split at pipes and `&`, comments left out."""
        commands: list[list[str]] = []
        for line in self.text.splitlines():
            words: list[str] = []
            for word in shlex.split(line, comments=True):
                if word in ("|", "&", "&&", ";"):
                    commands.append(words)
                    words = []
                else:
                    words.append(word)
            commands.append(words)
        return [words for words in commands if words]


def blocks(text: str) -> list[Block]:
    """The shell blocks of a Markdown text, each with the mark on the line before it, if any."""
    found, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```") and lines[i][3:].strip() in SHELLS:
            end = lines.index("```", i + 1)
            before = next((line for line in reversed(lines[:i]) if line.strip()), "")
            mark = MARK.fullmatch(before.strip())
            found.append(Block(i + 1, "\n".join(lines[i + 1:end]) + "\n", mark.group(1) if mark else None))
            i = end
        i += 1
    return found


BLOCKS = blocks(README.read_text())
ROOT = typer.main.get_command(app)


def test_every_shell_block_says_whether_it_runs() -> None:
    unmarked = [block.line for block in BLOCKS if block.mark is None]
    assert not unmarked, f"README.md: shell blocks at lines {unmarked} have no `<!-- readme-test: ... -->` mark"
    marks = [block.mark for block in BLOCKS]
    assert RUN in marks and WITH_BROKER in marks
    assert all(mark in (RUN, WITH_BROKER) or (mark or "").startswith(NOT_RUN) for mark in marks)


def test_the_check_finds_a_block_without_a_mark() -> None:
    text = "<!-- readme-test: run -->\n```sh\necho a\n```\n\n```bash\necho b\n```\n\n```\nnot shell\n```\n"
    assert [(block.line, block.mark) for block in blocks(text)] == [(2, RUN), (6, None)]


def parse(words: list[str]) -> None:
    """Parse an `orderbank` command line as the command would, without running it: a command or option that does
    not exist fails; a file it names that is not here does not."""
    args, command = words[1:], ROOT
    context = ROOT.make_context("orderbank", [], resilient_parsing=True)
    while isinstance(command, TyperGroup):  # a group's own options are flags: they end at its command's name
        split = next((k for k, arg in enumerate(args) if not arg.startswith("-")), len(args))
        options, args = args[:split], args[split:]
        known = {name for param in command.get_params(context) for name in param.opts}
        assert set(options) <= known, f"{words}: {sorted(set(options) - known)} are no options of {command.name}"
        sub = command.get_command(context, args[0]) if args else None
        assert sub is not None, f"{words}: no command {args[:1]} in {command.name}"
        command, args = sub, args[1:]
        if isinstance(command, TyperGroup):
            context = command.make_context(command.name, [], parent=context, resilient_parsing=True)
    try:
        command.make_context(command.name, list(args), parent=context)
    except typer.BadParameter as exc:
        if not getattr(getattr(exc.param, "type", None), "exists", False):  # a file to read that is not here
            raise


def orderbank_lines(block: Block) -> list[list[str]]:
    return [words for words in block.command_lines() if Path(words[0]).name == "orderbank"]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: f"line {block.line}")
def test_every_orderbank_line_names_commands_and_options_that_exist(block: Block) -> None:
    for words in orderbank_lines(block):
        parse(words)


def test_the_check_finds_an_option_or_command_that_does_not_exist() -> None:
    parse(["orderbank", "--debug", "watch", "queue", "--json", "--from", "latest", "--for", "5"])
    parse(["orderbank", "serve", "not-here.jsonl", "--until", "2025-10-26"])
    for wrong in (["orderbank", "watch", "queue", "--follow"], ["orderbank", "wach", "queue"],
                  ["orderbank", "--verbose", "policies"], ["orderbank", "eta", "backtrack", "x.jsonl"],
                  ["orderbank", "watch", "queue", "--from", "middle"]):
        with pytest.raises((AssertionError, typer.TyperException)):
            parse(wrong)


def test_the_order_ids_the_readme_names_are_in_the_launches_it_makes() -> None:
    text = README.read_text()
    up_orders = inspect.signature(up).parameters["orders"].default
    named = set(ORDER_ID.findall(text))
    assert named, "the README names no order"
    for number in named:
        for orders in (QUICK_START_LAUNCH, up_orders):
            assert order_id("YU7", int(number), orders) == f"YU7-{number}" and int(number) <= orders
    assert f"--orders {QUICK_START_LAUNCH:d} --seed 1" in text


def run(marks: tuple[str, ...], folder: Path, env: dict[str, str]) -> list[tuple[Block, str]]:
    """Run the blocks with these marks in order, in `folder` (where `.venv` is this interpreter's); each block's
    output, after checking it ended well and shows every order it names."""
    (folder / ".venv").symlink_to(sys.prefix)
    done = []
    for block in (block for block in BLOCKS if block.mark in marks):
        # The background jobs a block starts (a worker) end with it, as they would with its terminal.
        script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n" + block.text
        result = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"README.md line {block.line}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        for number in ORDER_ID.findall(block.text):
            assert f"YU7-{number}" in result.stdout, f"README.md line {block.line}: YU7-{number} not shown"
        done.append((block, result.stdout + result.stderr))
    return done


def environment(cache: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBANK_")}
    return {**env, "ORDERBANK_CACHE": str(cache), **more}


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (output,) = [out for _, out in run((RUN,), tmp_path / "work", environment(tmp_path / "cache"))]
    assert f"wrote 11,140 events for {QUICK_START_LAUNCH:,} orders to launch.jsonl.gz" in output
    assert (tmp_path / "work" / "report" / "index.html").is_file()


def test_the_streaming_quick_start_runs_as_written_on_the_local_broker(broker: Broker, broker_cache: Path,
                                                                      tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:10]}"  # topics, consumer group and web port of this test's own
    env = environment(broker_cache, ORDERBANK_TOPIC_PREFIX=name, ORDERBANK_APP_ID=name,
                      ORDERBANK_WEB_PORT=str(free_port()), ORDERBANK_DATA_DIR=str(tmp_path / "worker"))
    outputs = run((RUN, WITH_BROKER), tmp_path, env)
    streaming = "".join(out for block, out in outputs if block.mark == WITH_BROKER)
    assert f"broker already running at {broker.bootstrap}" in streaming
    assert f"sent 11,140 events to {name}.events" in streaming
