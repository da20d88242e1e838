"""The `orderbank` command end to end: synth, fold, policies, schema (committed schemas match the code)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.engine.cli.core import schemas
from orderbank.projections.policies import REGISTRY

runner = CliRunner()
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


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
    assert "rejected 2" in result.output
    assert json.loads(out.read_bytes())["queue"]["policy"] == "high-trim-first"


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
    assert set(generated) == set(schemas()) and len(generated) == 12
    assert committed == generated, "schemas/ is stale: run `orderbank schema -o schemas`"
