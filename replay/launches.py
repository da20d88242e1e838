"""The ETA forecast tried on many launches: a backtest per seeded synthetic launch, and how far each strays.

All the orders of one launch wait for the same factory: a good or a bad two months moves every order's
date the same way, so one launch's coverage at a cutoff is one draw, not 80% plus a little noise. A
calibrated forecast covers 80% on average over launches; `spread` says, cutoff by cutoff, how widely single
launches scatter around that, how many stay within a tolerance of it, and how many do so at every cutoff.
`backtest_launches` synthesizes and backtests the launches, several at once in worker processes.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from orderbank.projections.bank import BankSettings
from orderbank.replay.backtest import Backtest
from orderbank.replay.history import replay_history
from orderbank.replay.source import LaunchSource
from orderbank.replay.synth import Scenario

TARGET = 0.80  # the band's share: eight deliveries in ten inside it
FIGURES = ("coverage", "mean_error_days", "median_abs_error_days", "band_days")


@dataclass(frozen=True)
class Study:
    """Which launches to backtest, how, and what counts as close to the band's 80%."""

    scenario: Scenario
    seeds: tuple[int, ...]
    days: tuple[int, ...]
    settings: BankSettings
    tolerance: float = 0.05


def backtest_synthetic(scenario: Scenario, seed: int, days: Sequence[int], settings: BankSettings) -> dict[str, Any]:
    """The backtest's summary (orderbank.replay.backtest) of the scenario's launch synthesized with `seed`."""
    tracker = Backtest(days)
    bank, _ = replay_history(LaunchSource(scenario, seed), settings, None, tracker)
    return tracker.summary(bank)


def backtest_launch(study: Study, seed: int) -> dict[str, Any]:
    """One launch of the study, backtested at its cutoffs: the forecast's figures at each (over every order open
    then)."""
    summary = backtest_synthetic(study.scenario, seed, study.days, study.settings)
    cutoffs = [{"day": cut["day"], "scored": cut["forecast"]["scored"],
                **{name: cut["forecast"].get(name) for name in FIGURES}} for cut in summary["cutoffs"]]
    return {"seed": seed, "cutoffs": cutoffs}


def backtest_launches(study: Study, jobs: int, done: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Every launch of the study (`backtest_launch`), `jobs` at a time in worker processes, in the order of the
    seeds whatever order they finish in; `done(seed)` after each. Ctrl-C stops the workers at once."""
    if jobs <= 1:
        return [_told(backtest_launch(study, seed), done) for seed in study.seeds]
    # Spawned, not forked: the caller may have threads (a progress bar's) holding locks a fork would copy.
    with multiprocessing.get_context("spawn").Pool(jobs, initializer=_leave_ctrl_c_to_the_parent) as pool:
        try:
            launches = pool.imap_unordered(_backtest_one, ((study, seed) for seed in study.seeds))
            found = {launch["seed"]: _told(launch, done) for launch in launches}
        except BaseException:
            pool.terminate()
            raise
    return [found[seed] for seed in study.seeds]


def _backtest_one(task: tuple[Study, int]) -> dict[str, Any]:
    return backtest_launch(*task)


def _leave_ctrl_c_to_the_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _told(launch: dict[str, Any], done: Callable[[int], None] | None) -> dict[str, Any]:
    if done is not None:
        done(launch["seed"])
    return launch


def spread(study: Study, launches: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The launches' figures side by side: for each cutoff, the mean coverage and the 10th, 50th and 90th
    percentiles of the launches' own, how many launches covered within the tolerance of 80%, the mean bias
    and median error; and how many launches did so at every cutoff they were scored at."""
    low, high = TARGET - study.tolerance, TARGET + study.tolerance
    cutoffs = []
    for day in study.days:
        scored = [cut for launch in launches for cut in _scored(launch) if cut["day"] == day]
        if not scored:
            continue
        coverage = np.array([cut["coverage"] for cut in scored])
        p10, p50, p90 = (float(value) for value in np.percentile(coverage, [10, 50, 90]))
        cutoffs.append({
            "day": day, "launches": len(scored), "mean_coverage": float(coverage.mean()),
            "coverage_p10": p10, "coverage_p50": p50, "coverage_p90": p90,
            "within": int(((coverage >= low) & (coverage <= high)).sum()),
            "mean_error_days": float(np.mean([cut["mean_error_days"] for cut in scored])),
            "median_abs_error_days": float(np.median([cut["median_abs_error_days"] for cut in scored])),
        })
    every = sum(bool(scored) and all(low <= cut["coverage"] <= high for cut in scored)
                for scored in (_scored(launch) for launch in launches))
    return {"scenario": study.scenario.name, "orders": study.scenario.orders, "policy": study.settings.policy.name,
            "seeds": list(study.seeds), "target": TARGET, "tolerance": study.tolerance, "cutoffs": cutoffs,
            "within_at_every_cutoff": every, "launches": list(launches)}


def _scored(launch: dict[str, Any]) -> list[dict[str, Any]]:
    return [cut for cut in launch["cutoffs"] if cut["coverage"] is not None]


def parse_seeds(spec: str) -> tuple[int, ...]:
    """Seeds as `1-40`, `1,3,7` or both (`1-8,20`): ascending, each once. A ValueError says what is wrong."""
    seeds: set[int] = set()
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            start, end = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"{part!r} is neither a seed nor a range of seeds like 1-40") from None
        if end < start:
            raise ValueError(f"the range {part!r} ends before it starts")
        seeds.update(range(start, end + 1))
    if not seeds:
        raise ValueError("name at least one seed")
    return tuple(sorted(seeds))
