"""The replay lab's main job: history as it happened against each policy's counterfactual.

`compare(source, settings)` loads the log into columns, estimates the counterfactual's inputs,
optionally folds the log with the live reducer for the daily projections (and, on the way, backtests
the ETA forecast at its cutoffs, orderbank.replay.backtest), then runs every
policy for every replication (replication r draws its customers from seed + r, the same for
every policy) and returns the summary as plain data: per figure, the as-it-happened value and
each policy's mean with its 95% interval; per day, the series. Same log and settings, same
summary, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from orderbank.projections.bank import BankSettings, OrderBank
from orderbank.projections.errors import ConfigError
from orderbank.projections.orders import iso
from orderbank.projections.policies import Policy, parse_policy, spec_of
from orderbank.replay.backtest import DEFAULT_DAYS, Backtest
from orderbank.replay.counterfactual import policy_ranks, run_policy
from orderbank.replay.estimates import estimate_from
from orderbank.replay.figures import Figures, boundaries, figures
from orderbank.replay.history import replay_history
from orderbank.replay.load import load
from orderbank.replay.orderlog import OrderLog
from orderbank.replay.outcome import Outcome, as_happened
from orderbank.replay.source import LineSource
from orderbank.replay.stats import interval

ReplayProgress = Callable[[str, int, int | None], None]
"""Called with (stage, done, total or None)."""
RunRecorder = Callable[[str, int, OrderLog, Outcome, Figures], None]
"""Called after each run with (policy, replication, log, outcome, figures): history as policy HAPPENED,
replication 0, then replication 1.. of each policy."""
HAPPENED = "as it happened"
DEFAULT_POLICIES = ("fifo", "high-trim-first", "paid-first", "bounded-overtake:k=1000")


@dataclass(frozen=True)
class ReplaySettings:
    """What to compare and how. Policies are specs as `parse_policy` reads them."""

    policies: tuple[str, ...] = DEFAULT_POLICIES
    replications: int = 3
    seed: int = 1
    patience: str = "km"
    fold_history: bool = True
    eta_days: tuple[int, ...] = DEFAULT_DAYS
    """Cutoffs of the ETA backtest (days after the log's first midnight), with the fold; none: no backtest."""
    eta_policy: str = "high-trim-first"
    """The maker's policy, which the fold's queue follows (the seed case's)."""

    def parsed(self) -> list[Policy]:
        if not self.policies:
            raise ConfigError("compare: name at least one policy")
        if self.replications < 1:
            raise ConfigError(f"compare: replications must be >= 1, got {self.replications}")
        parse_policy(self.eta_policy)
        parsed = [parse_policy(spec) for spec in self.policies]
        specs = [spec_of(policy) for policy in parsed]
        if len(set(specs)) != len(specs):
            raise ConfigError(f"compare: a policy is named twice in {', '.join(specs)}")
        return parsed

    def as_dict(self) -> dict[str, object]:
        return {"policies": list(self.policies), "replications": self.replications, "seed": self.seed,
                "patience": self.patience, "eta_days": list(self.eta_days), "eta_policy": self.eta_policy}


def _quiet(stage: str, done: int, total: int | None) -> None:
    """The default progress: none."""


def compare(source: LineSource, settings: ReplaySettings, progress: ReplayProgress = _quiet,
            on_folded: Callable[[OrderBank], None] | None = None, record: RunRecorder | None = None) -> dict[str, Any]:
    """The comparison summary; `on_folded` receives the bank the live reducer folded (fold_history), `record`
    every run."""
    policies = settings.parsed()
    log = load(source, progress=lambda lines: progress("load", lines, None))
    estimates = estimate_from(log, settings.patience)
    ordinal = log.ordinal()
    summary: dict[str, Any] = {
        "log": describe_log(log, source.name), "settings": settings.as_dict(), "estimates": estimates.describe(),
        "days": [iso(int(b))[:10] for b in (boundaries(log) - 86_400_000_000).tolist()],
    }
    happened = as_happened(log, estimates.lead_us)
    history = figures(log, happened, ordinal)
    if record is not None:
        record(HAPPENED, 0, log, happened, history)
    if settings.fold_history:
        tracker = Backtest(settings.eta_days)
        bank, folded = replay_history(source, BankSettings(policy=parse_policy(settings.eta_policy)),
                                      lambda lines: progress("fold", lines, log.report.lines), tracker)
        summary["bank"] = folded.as_dict()
        if settings.eta_days:
            summary["eta"] = tracker.summary(bank)
        if on_folded is not None:
            on_folded(bank)
    runs: dict[str, list[Figures]] = {spec_of(policy): [] for policy in policies}
    ranks = {spec_of(policy): policy_ranks(log, policy, ordinal) for policy in policies}
    total = settings.replications * len(policies)
    for r in range(settings.replications):
        for k, spec in enumerate(runs):
            progress("replay", r * len(policies) + k, total)
            outcome = run_policy(log, estimates, ranks[spec], settings.seed + r)
            runs[spec].append(figures(log, outcome, ordinal))
            if record is not None:
                record(spec, r + 1, log, outcome, runs[spec][-1])
    progress("replay", total, total)
    summary["as_happened"] = {"figures": history.scalars, "series": history.series}
    summary["policies"] = {
        spec: {"describe": policy.describe(), "figures": _intervals(runs[spec]), "series": _mean_series(runs[spec])}
        for spec, policy in zip(runs, policies, strict=True)
    }
    return summary


def describe_log(log: OrderLog, name: str) -> dict[str, object]:
    return {"name": name, "orders": log.orders, "lanes": list(log.lanes), "trims": list(log.trims),
            "currency": log.currency, "from": iso(log.start_us), "to": iso(log.end_us), "days": log.days,
            "transfers": int(log.transfers.sum()), "load": log.report.as_dict()}


def _intervals(runs: list[Figures]) -> dict[str, dict[str, float | None]]:
    names = sorted({name for run in runs for name in run.scalars})
    return {name: interval([run.scalars.get(name) for run in runs]) for name in names}


def _mean_series(runs: list[Figures]) -> dict[str, list[float]]:
    return {name: np.mean([run.series[name] for run in runs], axis=0).tolist() for name in runs[0].series}
