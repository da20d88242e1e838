"""The replay's tidy tables, loaded the way docs/replay.md tells analysts to (pandas.read_parquet, read_csv): one
row per policy x replication x figure and per order x policy x replication, telling what the summary tells."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

from orderbank.replay.compare import HAPPENED, ReplaySettings, compare
from orderbank.replay.source import MemorySource
from orderbank.replay.tidy import Results, write_tables
from tests import REPO_ROOT

POLICIES = ("fifo", "high-trim-first", "bounded-overtake:k=100")
REPLICATIONS = 2


@pytest.fixture(scope="module")
def replayed(launch_docs: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[dict[str, Any], Path]:
    results = Results()
    summary = compare(MemorySource(tuple(orjson.dumps(doc) for doc in launch_docs)),
                      ReplaySettings(POLICIES, replications=REPLICATIONS, fold_history=False), record=results.record)
    directory = tmp_path_factory.mktemp("tidy")
    written = write_tables(results, directory)
    assert [path.name for path in written] == ["figures.parquet", "figures.csv", "orders.parquet"]
    return summary, directory


def test_one_row_per_policy_replication_and_figure(replayed: tuple[dict[str, Any], Path]) -> None:
    summary, directory = replayed
    figures = pd.read_parquet(directory / "figures.parquet")
    names = summary["as_happened"]["figures"].keys()
    assert list(figures.columns) == ["policy", "replication", "figure", "value"]
    assert len(figures) == (1 + len(POLICIES) * REPLICATIONS) * len(names)
    assert not figures.duplicated(["policy", "replication", "figure"]).any()
    assert set(figures.loc[figures.policy == HAPPENED, "replication"]) == {0}
    assert set(figures.loc[figures.policy == "fifo", "replication"]) == set(range(1, REPLICATIONS + 1))
    happened = figures[figures.policy == HAPPENED].set_index("figure")["value"]
    for name, value in summary["as_happened"]["figures"].items():
        assert math.isnan(happened[name]) if value is None else happened[name] == value, name
    means = figures[figures.policy != HAPPENED].groupby(["policy", "figure"])["value"].mean()
    for policy in POLICIES:
        for name in ("delivered", "cancel_rate", "wait_mean", "pool_mean", "overtakes", "kendall_tau"):
            assert means[(policy, name)] == pytest.approx(summary["policies"][policy]["figures"][name]["mean"])
    from_csv = pd.read_csv(directory / "figures.csv")
    pd.testing.assert_frame_equal(from_csv, figures, check_dtype=False)


def test_one_row_per_order_policy_and_replication(replayed: tuple[dict[str, Any], Path]) -> None:
    summary, directory = replayed
    orders = pd.read_parquet(directory / "orders.parquet")
    placed = summary["log"]["orders"]
    assert list(orders.columns) == ["order", "lane", "trim", "policy", "replication", "outcome", "cancel_reason",
                                    "wait_days"]
    assert len(orders) == placed * (1 + len(POLICIES) * REPLICATIONS)
    assert pq.ParquetFile(directory / "orders.parquet").num_row_groups == 1 + len(POLICIES) * REPLICATIONS
    assert orders.groupby(["policy", "replication"])["order"].nunique().eq(placed).all()
    assert set(orders.outcome) == {"delivered", "cancelled", "open"}
    assert orders.loc[orders.outcome != "cancelled", "cancel_reason"].isna().all()
    assert orders.loc[orders.outcome == "open", "wait_days"].isna().all()
    figures = pd.read_parquet(directory / "figures.parquet").set_index(["policy", "replication", "figure"])["value"]
    for (policy, replication), run in orders.groupby(["policy", "replication"]):
        def figure(name: str, policy: Any = policy, replication: Any = replication) -> float:
            return float(figures[(policy, replication, name)])

        delivered = run[run.outcome == "delivered"]
        assert len(delivered) == figure("delivered")
        assert (run.outcome == "cancelled").sum() == figure("cancelled")
        assert (run.cancel_reason == "customer").sum() == figure("cancel_customer")
        assert delivered.wait_days.mean() == pytest.approx(figure("wait_mean"))
        assert delivered.wait_days.quantile(0.95) == pytest.approx(figure("wait_p95"))
        for trim, count in delivered.groupby("trim").size().items():
            assert count == figure(f"trim.{trim}.delivered")


@pytest.mark.parametrize("doc", ["docs/replay.md", "README.md"])
def test_the_documented_pandas_examples_run(replayed: tuple[dict[str, Any], Path], doc: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, directory = replayed
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / doc).read_text(), re.S)
    examples = [block for block in blocks if "read_parquet" in block]
    assert examples
    (directory.parent / "report").unlink(missing_ok=True)
    (directory.parent / "report").symlink_to(directory)
    monkeypatch.chdir(directory.parent)
    for example in examples:
        exec(compile(example, doc, "exec"), {})
