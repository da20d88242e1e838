"""The bank over time, for the operations dashboard: per lane the backlog and deliveries, the rolling
cancellation counts, and the prepayment pool, at a grid of sample times (UTC midnights).

Backlog, deliveries and cancellations are rebuilt from what the bank holds (every order's placed_at and
closing time, every delivery and cancellation time), so they cover the whole history at no memory cost;
an order counts as open from its placed_at until it closed. The pool is not: it moves with every payment,
and the bank keeps sums, not payment times. `PoolSeries` samples it while the bank is folded, at each
midnight the fold's clock passes. Every figure is a count or a sum, so the parts of several shards (or
workers) add up element by element (`add_parts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import numpy as np

from orderbank.projections.bank import OrderBank
from orderbank.projections.orders import US_PER_DAY
from orderbank.projections.pool import FIGURES

MOST_SAMPLES = 400
POOL_FIGURES = ("held", "demanded_outstanding", "overdue_amount", "refunds_owed")
ROLLING_DAYS = (7, 28)


def grid(first_us: int, at_us: int, most: int = MOST_SAMPLES) -> list[int]:
    """Sample times: the UTC midnights after `first_us` before `at_us` (every k-th one when there would be more
    than `most`), then `at_us` itself."""
    if at_us <= first_us:
        return [at_us]
    first_midnight = first_us - first_us % US_PER_DAY + US_PER_DAY
    days = max(0, (at_us - 1 - first_midnight) // US_PER_DAY + 1)
    step = -(-days // (most - 1)) if days >= most else 1
    return [*range(first_midnight, first_midnight + days * US_PER_DAY, step * US_PER_DAY), at_us]


def _count_upto(times: Any, at: Any) -> Any:
    """How many of the sorted `times` (a sequence or array of ints) are <= each of `at`."""
    return np.searchsorted(np.asarray(times, dtype=np.int64), at, side="right")


def first_placed(bank: OrderBank) -> int | None:
    """The earliest placed_at in the bank."""
    firsts = [times.placed[0] for times in bank.cancellations.times.values() if times.placed]
    return min(firsts) if firsts else None


def part(bank: OrderBank, times: Sequence[int], window_days: int) -> dict[str, Any]:
    """One bank's series at `times` (counts, to be added to other shards' parts)."""
    at = np.asarray(times, dtype=np.int64)
    window = window_days * US_PER_DAY
    lanes: dict[str, Any] = {}
    for name, lane in bank.queue.lanes.items():
        placed = np.fromiter((o.placed_us for o in lane.orders.values()), np.int64, len(lane.orders))
        closed = np.fromiter((o.closed_us for o in lane.orders.values() if o.closed_us is not None), np.int64)
        placed.sort()
        closed.sort()
        deliveries = np.asarray(lane.deliveries, dtype=np.int64)
        delivered = _count_upto(deliveries, at)
        lanes[name] = {"backlog": (_count_upto(placed, at) - _count_upto(closed, at)).tolist(),
                       "delivered": delivered.tolist(),
                       "delivered_window": (delivered - _count_upto(deliveries, at - window)).tolist()}
    rolling: dict[str, list[int]] = {}
    for days in ROLLING_DAYS:
        for kind in ("placed", "cancelled"):
            counts = np.zeros(len(at), dtype=np.int64)
            for per_trim in bank.cancellations.times.values():
                moments = getattr(per_trim, kind)
                counts += _count_upto(moments, at) - _count_upto(moments, at - days * US_PER_DAY)
            rolling[f"{kind}_{days}d"] = counts.tolist()
    return {"times": list(times), "lanes": lanes, "rolling": rolling}


def add_parts(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The parts of banks that hold disjoint lanes, read at the same times, as one."""
    out: dict[str, Any] = {"times": [], "lanes": {}, "rolling": {}}
    for p in parts:
        out["times"] = p["times"]
        out["lanes"].update(p["lanes"])
        for name, counts in p["rolling"].items():
            acc = out["rolling"].setdefault(name, [0] * len(counts))
            out["rolling"][name] = [a + b for a, b in zip(acc, counts, strict=True)]
    return out


_SUMMED = [FIGURES.index(name) for name in ("held", "demanded_outstanding", "refunds_owed")]


@dataclass
class PoolSeries:
    """The pool's totals per currency, sampled at the midnights a fold's clock passes.

    `rows[currency][i]` holds POOL_FIGURES at `times[i]`, in minor units."""

    times: list[int] = field(default_factory=list)
    rows: dict[str, list[list[int]]] = field(default_factory=dict)

    def sample(self, banks: Iterable[OrderBank], at_us: int) -> None:
        """Record the banks' pool as of `at_us` (a midnight the fold just passed, or its clock)."""
        if self.times and self.times[-1] == at_us:  # the fold ended on a midnight: one sample of it
            self.times.pop()
            for rows in self.rows.values():
                rows.pop()
        self._record(banks, [at_us])

    def follow(self, banks: Sequence[OrderBank], clock_us: int) -> None:
        """Sample a live bank: at its clock the first time, then at each midnight its clock has passed since
        the last sample (the state when the midnight was noticed stands for it)."""
        if not self.times:
            if clock_us:
                self.sample(banks, clock_us)
            return
        midnights = range(self.times[-1] - self.times[-1] % US_PER_DAY + US_PER_DAY, clock_us + 1, US_PER_DAY)
        if midnights:
            self._record(banks, midnights)

    def _record(self, banks: Iterable[OrderBank], times: Sequence[int]) -> None:
        """Append the banks' present state as the sample at each of `times` (ascending, after the last sample).

        Only the overdue amount depends on the time, and it only grows: an order overdue by as much at the
        first time as at the last is so at every time between. So a worker catching up through days of
        events reads its banks once per call, not once per midnight."""
        sums: dict[str, list[int]] = {}
        steps: dict[str, list[int]] = {}  # per currency: the overdue amount at times[0], then its rise at each next
        for bank in banks:
            for (_, _, _, currency), figures in bank.pool.buckets.items():
                held, demanded, owed = (figures[i] for i in _SUMMED)
                acc = sums.setdefault(currency, [0, 0, 0, 0])
                acc[0] += held
                acc[1] += demanded
                acc[3] += owed
            for order in bank.pool.owing():
                rises = steps.setdefault(order.currency, [0] * len(times))
                first, last = order.overdue(times[0]), order.overdue(times[-1])
                rises[0] += first
                if last != first:  # a demand fell due in between
                    before = first
                    for i in range(1, len(times)):
                        late = order.overdue(times[i])
                        rises[i] += late - before
                        before = late
        for currency in (sums.keys() | steps.keys()) - self.rows.keys():
            self.rows[currency] = [[0, 0, 0, 0] for _ in self.times]
        for currency, rows in self.rows.items():
            held, demanded, _, owed = sums.get(currency, [0, 0, 0, 0])
            overdue = accumulate(steps.get(currency, [0] * len(times)))
            rows.extend([held, demanded, late, owed] for late in overdue)
        self.times.extend(times)

    def as_dict(self) -> dict[str, Any]:
        return {"times": self.times, "rows": self.rows}


def merge_pool(series: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Several workers' pool series as one: summed at the union of their times, each carried forward from
    its last sample, from the latest first sample on (before it some worker has nothing to say)."""
    docs = [s for s in series if s["times"]]
    if not docs:
        return PoolSeries().as_dict()
    start = max(doc["times"][0] for doc in docs)
    times = sorted({t for doc in docs for t in doc["times"] if t >= start})
    rows: dict[str, list[list[int]]] = {}
    for doc in docs:
        for currency, values in doc["rows"].items():
            acc = rows.setdefault(currency, [[0, 0, 0, 0] for _ in times])
            picks = np.searchsorted(np.asarray(doc["times"], dtype=np.int64), times, side="right") - 1
            for row, pick in zip(acc, picks.tolist(), strict=True):
                for i, value in enumerate(values[pick]):
                    row[i] += value
    return {"times": times, "rows": rows}
