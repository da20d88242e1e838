"""What the pages show, as plain data a worker can send another: one order's facts, the dashboard's and the
policy's. Built from OrderBanks by the functions here; formatted for people by orderbank.engine.web.pages."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from orderbank.projections.bank import BankSettings, OrderBank
from orderbank.projections.merge import merge_cancellations
from orderbank.projections.policies import Policy, spec_of
from orderbank.projections.standing import (
    Happening,
    LaneTimes,
    Standing,
    order_view,
    parameters_of,
    rule_of,
    standing,
)
from orderbank.projections.trends import add_parts, grid, part


class OrderFacts(msgspec.Struct):
    """One order at its bank's clock: the JSON view's figures, where it stands and why, its history and its
    position over time (`positions`: (time, position) pairs, microseconds)."""

    view: dict[str, Any]
    standing: Standing | None
    history: list[Happening]
    history_from_events: bool  # every event, with its time; else what the order's state tells
    positions: list[tuple[int, int]]
    window_days: int  # the ETA's delivery-rate window


class PolicyFacts(msgspec.Struct):
    spec: str
    name: str
    rule: str
    describe: str
    parameters: dict[str, Any]
    report_url: str | None = None


class DashboardFacts(msgspec.Struct):
    """The whole bank for operations, at clock `as_of_us`, computed at wall time `computed_at`."""

    as_of_us: int
    computed_at: float
    source: str  # where the figures come from, in words
    policy: str
    window_days: int
    trends: dict[str, Any]  # orderbank.projections.trends.part, added up over every shard
    pool: dict[str, Any]  # orderbank.projections.trends.PoolSeries.as_dict, over every shard
    pool_since_us: int | None  # when the pool's samples start (a worker samples from its start)
    buckets: list[dict[str, Any]]  # the pool snapshot's rows
    cancellations: dict[str, Any]  # the cancellations snapshot
    rejections: dict[str, int]
    applied: int
    duplicates: int
    orders: int
    workers: list[dict[str, Any]]  # each worker's health, for a stream; empty for a log
    dead_letters: str | None = None  # where rejected events went


def past_positions(bank: OrderBank, order_id: str, lane_times: LaneTimes) -> list[tuple[int, int]]:
    """The order's position at its placement and every UTC midnight since, up to when `lane_times` were read
    (they may be older than the bank: the positions before their clock stay exact)."""
    order = bank.orders[order_id]
    end = bank.now_us if order.closed_us is None else min(order.closed_us, bank.now_us)
    times = [t for t in [order.placed_us, *grid(order.placed_us, end)] if t < lane_times.clock_us]
    return [(t, p) for t, p in zip(times, lane_times.positions(order_id, times), strict=True) if p is not None]


def order_facts(bank: OrderBank, order_id: str, history: list[Happening], from_events: bool,
                past: list[tuple[int, int]]) -> OrderFacts:
    """The order now, with its `past_positions`."""
    now = bank.position_of(order_id)
    positions = [*past, (bank.now_us, now.position)] if now is not None else past
    return OrderFacts(order_view(bank, order_id), standing(bank, order_id), history, from_events, positions,
                      bank.settings.eta_window_days)


def policy_facts(policy: Policy, report_url: str | None = None) -> PolicyFacts:
    return PolicyFacts(spec_of(policy), policy.name, rule_of(policy), policy.describe(), parameters_of(policy),
                       report_url)


def bank_part(bank: OrderBank, times: Sequence[int], window_days: int) -> dict[str, Any]:
    """What one shard's bank adds to the dashboard, read at `times` (the last one: the common clock)."""
    at = times[-1]
    return {"trends": part(bank, times, window_days), "buckets": bank.pool.snapshot(at)["buckets"],
            "cancellations": bank.cancellations.snapshot(at), "rejections": dict(bank.rejections),
            "applied": bank.applied, "duplicates": bank.duplicates, "orders": len(bank.orders)}


def combine(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parts of disjoint shards (bank_part) as one."""
    rejections: dict[str, int] = {}
    for p in parts:
        for reason, n in p["rejections"].items():
            rejections[reason] = rejections.get(reason, 0) + n
    return {"trends": add_parts(p["trends"] for p in parts),
            "buckets": sorted((row for p in parts for row in p["buckets"]),
                              key=lambda r: (r["lane"], r["trim"], r["cohort"], r["currency"])),
            "cancellations": merge_cancellations([p["cancellations"] for p in parts]),
            "rejections": dict(sorted(rejections.items())),
            "applied": sum(p["applied"] for p in parts), "duplicates": sum(p["duplicates"] for p in parts),
            "orders": sum(p["orders"] for p in parts)}


def dashboard_facts(parts: Sequence[dict[str, Any]], pool: dict[str, Any], as_of_us: int, source: str,
                    settings: BankSettings, workers: list[dict[str, Any]] | None = None,
                    dead_letters: str | None = None) -> DashboardFacts:
    """The dashboard's facts from every shard's part (bank_part) and the pool's samples, computed now."""
    whole = combine(parts)
    return DashboardFacts(
        as_of_us=as_of_us, computed_at=time.time(), source=source, policy=spec_of(settings.policy),
        window_days=settings.eta_window_days, trends=whole["trends"], pool=pool,
        pool_since_us=pool["times"][0] if pool["times"] else None, buckets=whole["buckets"],
        cancellations=whole["cancellations"], rejections=whole["rejections"], applied=whole["applied"],
        duplicates=whole["duplicates"], orders=whole["orders"], workers=workers or [], dead_letters=dead_letters)


def sample_times(first_us: int | None, at_us: int) -> list[int]:
    """The dashboard's sample times: midnights from the first placement, and the clock."""
    return grid(at_us if first_us is None else first_us, at_us)
