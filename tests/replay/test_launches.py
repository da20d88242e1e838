"""Backtests over many synthetic launches (orderbank.replay.launches): each launch's figures are its own
backtest's, the same whether launches run one at a time or in worker processes, the spread over launches
is counted as it says, and Ctrl-C stops the workers."""

from __future__ import annotations

import multiprocessing
from typing import Any

import orjson
import pytest
from pytest import approx

from orderbank.projections.bank import BankSettings, canonical
from orderbank.projections.policies import HighTrimFirst
from orderbank.replay.launches import Study, backtest_launches, backtest_synthetic, parse_seeds, spread
from orderbank.replay.synth import preset

SMALL = Study(preset("small", 1_500), (3, 1, 2), (7, 30), BankSettings(policy=HighTrimFirst()))


def launch(seed: int, *coverage: float | None) -> dict[str, Any]:
    days = (7, 30, 60)
    return {"seed": seed, "cutoffs": [
        {"day": day, "scored": 0 if share is None else 100, "coverage": share, "mean_error_days": seed / 10,
         "median_abs_error_days": float(seed), "band_days": 15.0} for day, share in zip(days, coverage, strict=False)]}


def test_each_launch_has_its_own_backtests_figures_whether_run_alone_or_in_workers() -> None:
    seen: list[int] = []
    alone = backtest_launches(SMALL, 1)
    workers = backtest_launches(SMALL, 2, seen.append)
    assert canonical(workers) == canonical(alone)
    assert [found["seed"] for found in workers] == [3, 1, 2] and sorted(seen) == [1, 2, 3]
    whole = backtest_synthetic(SMALL.scenario, 1, SMALL.days, SMALL.settings)["cutoffs"]
    one = next(found for found in alone if found["seed"] == 1)["cutoffs"]
    assert [cut["day"] for cut in one] == [7, 30]
    for mine, theirs in zip(one, whole, strict=True):
        assert mine["coverage"] == theirs["forecast"]["coverage"] is not None
        assert mine["mean_error_days"] == theirs["forecast"]["mean_error_days"]
        assert mine["scored"] == theirs["forecast"]["scored"] > 0
    assert alone[0]["cutoffs"] != alone[1]["cutoffs"]  # other seeds, other launches


def test_the_spread_counts_launches_near_80_percent_at_each_cutoff_and_at_all() -> None:
    study = Study(preset("small"), (1, 2, 3, 4), (7, 30, 60), BankSettings(), tolerance=0.05)
    launches = [launch(1, 0.80, 0.76, 0.84), launch(2, 0.90, 0.79, 0.81), launch(3, 0.60, 0.70, None),
                launch(4, 0.78, None, 0.85)]
    out = spread(study, launches)
    by_day = {cut["day"]: cut for cut in out["cutoffs"]}
    assert by_day[7]["launches"] == 4 and by_day[7]["within"] == 2
    assert by_day[7]["mean_coverage"] == approx(0.77) and by_day[7]["coverage_p50"] == approx(0.79)
    assert by_day[7]["coverage_p10"] == approx(0.654) and by_day[7]["coverage_p90"] == approx(0.87)
    assert by_day[30]["launches"] == 3 and by_day[30]["within"] == 2  # launch 4 had nobody scored at day 30
    assert by_day[60]["within"] == 3 and by_day[60]["mean_error_days"] == approx((0.1 + 0.2 + 0.4) / 3)
    assert by_day[60]["median_abs_error_days"] == 2.0
    assert out["within_at_every_cutoff"] == 2  # launches 1 and 4 (at the cutoffs they were scored at)
    assert out["launches"] == launches and out["target"] == 0.8
    orjson.dumps(out)  # plain JSON: written as the command's --json


def test_ctrl_c_stops_the_workers_and_leaves_no_process_behind() -> None:
    def interrupt(_seed: int) -> None:
        raise KeyboardInterrupt

    study = Study(preset("small", 1_500), (1, 2, 3, 4, 5), (7,), BankSettings())
    with pytest.raises(KeyboardInterrupt):
        backtest_launches(study, 2, interrupt)
    assert multiprocessing.active_children() == []


def test_seeds_are_named_by_ranges_and_lists() -> None:
    assert parse_seeds("1-4") == (1, 2, 3, 4)
    assert parse_seeds("7, 1-3,2,") == (1, 2, 3, 7)
    for bad, says in (("", "at least one seed"), ("1-x", "'1-x' is neither a seed"), ("5-2", "ends before")):
        with pytest.raises(ValueError, match=says):
            parse_seeds(bad)
