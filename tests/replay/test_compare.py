"""The counterfactual end to end: determinism, fidelity to history, the policies' own guarantees, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.projections.bank import canonical
from orderbank.replay.compare import ReplaySettings, compare
from orderbank.replay.logfile import write_docs
from orderbank.replay.report import write_report
from orderbank.replay.source import MemorySource
from orderbank.replay.synth import generate, preset

POLICIES = ("fifo", "high-trim-first", "paid-first", "bounded-overtake:k=50")


@pytest.fixture(scope="module")
def launch() -> MemorySource:
    return MemorySource(tuple(orjson.dumps(doc) for doc in generate(preset("yu7", orders=4_000), seed=2)))


@pytest.fixture(scope="module")
def summary(launch: MemorySource) -> dict[str, Any]:
    return compare(launch, ReplaySettings(POLICIES, replications=2, seed=7))


def figure(summary: dict[str, Any], policy: str, name: str) -> float:
    value = summary["policies"][policy]["figures"][name]["mean"]
    assert isinstance(value, float)
    return value


def test_same_log_and_seed_give_the_same_bytes(launch: MemorySource, summary: dict[str, Any],
                                               tmp_path: Path) -> None:
    again = compare(launch, ReplaySettings(POLICIES, replications=2, seed=7))
    assert canonical(again) == canonical(summary)
    write_report(summary, tmp_path / "a")
    write_report(again, tmp_path / "b")
    for name in ("summary.json", "summary.csv", "daily.csv", "index.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = compare(launch, ReplaySettings(("fifo",), replications=1, seed=8, fold_history=False))
    assert other["policies"]["fifo"]["figures"] != summary["policies"]["fifo"]["figures"]


def test_replaying_the_historical_policy_reproduces_history(summary: dict[str, Any]) -> None:
    happened = summary["as_happened"]["figures"]
    for name, tolerance in (("delivered", 0.02), ("cancelled", 0.05), ("pool_mean", 0.05), ("wait_mean", 0.05)):
        assert figure(summary, "high-trim-first", name) == pytest.approx(happened[name], rel=tolerance)
    assert figure(summary, "high-trim-first", "open_at_end") == pytest.approx(happened["open_at_end"], abs=40)


def test_policies_keep_their_promises(summary: dict[str, Any]) -> None:
    assert figure(summary, "fifo", "overtakes") == 0 and figure(summary, "fifo", "kendall_tau") == 1.0
    assert 0 < figure(summary, "bounded-overtake:k=50", "largest_overtake") <= 50
    assert figure(summary, "high-trim-first", "largest_overtake") > 50
    # The 8% who prepay are served before the rest under paid-first: they wait less.
    assert figure(summary, "paid-first", "overtakes") > 0
    assert figure(summary, "high-trim-first", "trim.Max.wait_mean") < figure(summary, "fifo", "trim.Max.wait_mean")


def test_the_bank_fold_and_the_columns_tell_the_same_history(summary: dict[str, Any]) -> None:
    bank = summary["bank"]
    series = summary["as_happened"]["series"]
    for name in ("backlog", "pool", "delivered", "cancelled"):
        assert bank[name] == series[name]


def test_the_replay_command_prints_the_table_and_writes_the_report(tmp_path: Path) -> None:
    log = tmp_path / "small.jsonl.gz"
    write_docs(log, generate(preset("small"), seed=1))
    result = CliRunner().invoke(app, ["replay", str(log), "--policy", "fifo", "--policy", "high-trim-first",
                                      "--replications", "2", "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "Kendall tau" in result.output and "high-trim-first" in result.output
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "daily.csv", "figures.csv", "figures.parquet", "index.html", "orders.parquet", "summary.csv", "summary.json"]
    bad = CliRunner().invoke(app, ["replay", str(log), "--policy", "lottery", "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "unknown policy 'lottery'" in bad.output
