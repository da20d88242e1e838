"""The `orderbank` command end to end: synth, fold (damaged logs too), policies, schema (committed schemas match the
code)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.engine.stream.contract import json_schemas
from orderbank.projections.bank import REJECTED_KEPT
from orderbank.projections.policies import REGISTRY
from orderbank.replay.logfile import BOM
from tests import REPO_ROOT
from tests.support.logfiles import launch, noise, truncated

runner = CliRunner()
SCHEMAS = REPO_ROOT / "schemas"


def test_synth_writes_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz", tmp_path / "c.jsonl.gz"]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        result = runner.invoke(app, ["synth", "--orders", "400", "--seed", str(seed), "-o", str(path)])
        assert result.exit_code == 0, result.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_fold_prints_projections_and_reports_bad_lines(tmp_path: Path) -> None:
    log = tmp_path / "launch.jsonl"
    assert runner.invoke(app, ["synth", "--orders", "300", "-o", str(log)]).exit_code == 0
    with log.open("a") as handle:
        handle.write('{"type": "OrderPlaced"\n')
        handle.write('{"type": "Nope", "order_id": "X"}\n')
    out = tmp_path / "snap.json"
    result = runner.invoke(app, ["fold", str(log), "--policy", "high-trim-first", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Queue (high-trim-first)" in result.output and "Prepayment pool" in result.output
    assert "malformed_json" in result.output and "unknown_type" in result.output
    assert "rejected 2 (malformed_json 1, unknown_type 1)" in result.output
    assert json.loads(out.read_bytes())["queue"]["policy"] == "high-trim-first"


def said(output: str) -> list[str]:
    """The lines a command wrote that are not blank (a progress bar leaves an empty one on a non-terminal)."""
    return [line for line in output.splitlines() if line.strip()]


def test_fold_of_a_truncated_gzip_says_so_in_one_line(tmp_path: Path) -> None:
    log = tmp_path / "launch.jsonl.gz"
    whole = truncated(log)
    result = runner.invoke(app, ["fold", str(log)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit) and not result.stdout
    assert said(result.stderr) == [
        f"orderbank fold: {log}: the compressed data ends early after line {whole:,} (truncated file?)"]


def test_fold_of_random_bytes_says_they_are_not_gzip_data(tmp_path: Path) -> None:
    log = tmp_path / "noise.jsonl.gz"
    noise(log)
    result = runner.invoke(app, ["fold", str(log)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    (line,) = said(result.stderr)
    assert line.startswith(f"orderbank fold: {log}: the compressed data is corrupt before its first line (Not a gzip")


def test_fold_reads_a_byte_order_mark_and_numbers_lines_as_the_file_does(tmp_path: Path) -> None:
    plain, log = tmp_path / "plain.jsonl", tmp_path / "edited.jsonl"
    launch(plain)
    lines = plain.read_bytes().splitlines()
    log.write_bytes(BOM + b"\n".join([*lines[:5], b"", b"  ", b"{not json", b"", *lines[5:]]) + b"\n")
    result = runner.invoke(app, ["fold", str(log)])
    assert result.exit_code == 0, result.output
    (line,) = said(result.stderr)  # the first order is placed: none of its events is an unknown order's
    assert line.startswith("line 8: malformed_json (json): not valid JSON")  # blank lines counted
    assert "applied 670, duplicates 0, rejected 1 (malformed_json 1)" in result.stdout


def test_fold_shows_the_first_rejected_lines_counts_the_rest_and_fails_when_none_is_an_event(tmp_path: Path) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_bytes(b"".join(b"{not json %d\n" % n for n in range(5000)))  # each its own: counted once
    result = runner.invoke(app, ["fold", str(log)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit) and not result.stdout
    shown = said(result.stderr)
    assert [line.split(":")[0] for line in shown[:-2]] == [f"line {n}" for n in range(1, REJECTED_KEPT + 1)]
    assert shown[-2:] == [f"... and {5000 - REJECTED_KEPT:,} more rejected lines",
                          f"orderbank fold: {log}: not one event in it could be taken (5,000 lines rejected)"]


def test_fold_rejects_an_unknown_policy(tmp_path: Path) -> None:
    log = tmp_path / "empty.jsonl"
    log.write_text("")
    result = runner.invoke(app, ["fold", str(log), "--policy", "lottery"])
    assert result.exit_code != 0 and "unknown policy 'lottery'" in result.output


def test_synth_rejects_an_unknown_preset(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--preset", "yu8", "-o", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "unknown preset 'yu8'" in result.output
    assert not (tmp_path / "x.jsonl").exists()


def test_policies_lists_the_registry() -> None:
    result = runner.invoke(app, ["policies"])
    assert result.exit_code == 0
    for name in REGISTRY:
        assert name in result.output


def test_committed_schemas_match_the_code(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "-o", str(tmp_path)])
    assert result.exit_code == 0
    generated = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in SCHEMAS.glob("*.json")}
    assert set(generated) == set(json_schemas()) and len(generated) == 20
    assert committed == generated, "schemas/ is stale: run `orderbank schema -o schemas`"
