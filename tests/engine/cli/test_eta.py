"""`orderbank eta backtest` and `orderbank eta launches`: the figures printed and written, the options checked."""

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


def test_the_launches_command_prints_and_writes_the_spread_over_launches(tmp_path: Path) -> None:
    out = tmp_path / "launches.json"
    result = runner.invoke(app, ["eta", "launches", "--preset", "small", "--orders", "1500", "--seeds", "1-2",
                                 "--at", "7,30", "--jobs", "1", "--json", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "The 80% band over 2 small launches of 1,500 orders" in result.output
    assert "every cutoff" in result.output.replace("\n", " ")
    figures = json.loads(out.read_bytes())
    assert figures["seeds"] == [1, 2] and [cut["day"] for cut in figures["cutoffs"]] == [7, 30]
    assert all(cut["launches"] == 2 for cut in figures["cutoffs"])
    assert [launch["seed"] for launch in figures["launches"]] == [1, 2]
    for args, says in ((["--seeds", "3-1"], "ends before it starts"), (["--tolerance", "0.9"], "below 0.8")):
        bad = runner.invoke(app, ["eta", "launches", *args])
        assert bad.exit_code == 2 and says in bad.output, bad.output
