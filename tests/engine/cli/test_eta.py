"""`orderbank eta backtest`: the figures printed and written, the cutoffs checked."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.replay.synth import generate, preset

runner = CliRunner()


def test_the_backtest_command_prints_and_writes_the_figures(tmp_path: Path) -> None:
    log = tmp_path / "launch.jsonl"
    log.write_bytes(b"\n".join(orjson.dumps(doc) for doc in generate(preset("small", 1_500), 2)) + b"\n")
    out = tmp_path / "eta.json"
    result = runner.invoke(app, ["eta", "backtest", str(log), "--at", "7,30,400", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "ETA backtest (high-trim-first)" in result.output and "past the log's end" in result.output
    assert "for each trim" not in result.output
    figures = json.loads(out.read_bytes())
    assert [cut["day"] for cut in figures["cutoffs"]] == [7, 30] and figures["beyond_log"] == [400]
    trims = set(figures["cutoffs"][0]["by_trim"])
    assert trims and all(set(cut["by_trim"]) <= trims for cut in figures["cutoffs"])
    by_trim = runner.invoke(app, ["eta", "backtest", str(log), "--at", "7", "--by-trim"], terminal_width=200)
    assert by_trim.exit_code == 0, by_trim.output
    table = by_trim.output.split("The forecast for each trim's orders")[1]
    assert all(trim in table for trim in trims)
    bad = runner.invoke(app, ["eta", "backtest", str(log), "--at", "7,soon"])
    assert bad.exit_code == 2 and "--at takes days" in bad.output
