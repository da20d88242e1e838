"""One bank's snapshot from several shards: banks that each hold whole lanes, read at one clock.

A stream worker keeps one OrderBank per shard (a partition of the lanes topic). Lanes never
span shards, so queue lanes and pool buckets are disjoint and simply collected; the
cancellation figures are sums of counts, so they are added up and their rates recomputed.
Read every shard at the same clock `at_us` (the latest of the shards' clocks, which is the
whole fold's clock) and `merge` returns exactly `fold(all events).snapshot()`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from orderbank.projections.bank import BankSettings, OrderBank
from orderbank.projections.cancellations import snapshot_of
from orderbank.projections.orders import iso
from orderbank.projections.pool import totals

Part = dict[str, Any]


def part(bank: OrderBank, at_us: int) -> Part:
    """What one shard contributes, read at the common clock (plain data, JSON-safe)."""
    return {"lanes": {name: bank.queue.lane_snapshot(name, at_us) for name in bank.queue.lanes},
            "pool": bank.pool.snapshot(at_us)["buckets"],
            "cancellations": bank.cancellations.snapshot(at_us)}


def merge(parts: Iterable[Part], at_us: int, settings: BankSettings | None = None) -> dict[str, object]:
    """The snapshot of the bank made of these shards, shaped as `OrderBank.snapshot()`."""
    settings = settings or BankSettings()
    parts = list(parts)
    lanes = {name: lane for p in parts for name, lane in p["lanes"].items()}
    rows = sorted((row for p in parts for row in p["pool"]),
                  key=lambda r: (r["lane"], r["trim"], r["cohort"], r["currency"]))
    return {
        "as_of": iso(at_us) if at_us else None,
        "queue": {"policy": settings.policy.name, "window_days": settings.eta_window_days,
                  "lanes": {name: lanes[name] for name in sorted(lanes)}},
        "pool": {"buckets": rows, "totals": totals(rows)},
        "cancellations": merge_cancellations([p["cancellations"] for p in parts]),
    }


def merge_cancellations(snapshots: list[dict[str, Any]]) -> dict[str, object]:
    """Add up cancellation snapshots taken at the same clock; rates are recomputed from counts."""
    windows: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    cohorts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    overall = [0, 0]
    for snap in snapshots:
        for w in snap["windows"]:
            acc = windows[(w["window_days"], w["trim"])]
            acc[0] += w["placed"]
            acc[1] += w["cancelled"]
        for c in snap["cohorts"]:
            counts = cohorts[(c["cohort"], c["trim"])]
            counts[0] += c["placed"]
            counts[1] += c["cancelled"]
            counts[2] += c["delivered"]
        overall[0] += snap["overall"]["placed"]
        overall[1] += snap["overall"]["cancelled"]
    return snapshot_of(windows, cohorts, overall)
