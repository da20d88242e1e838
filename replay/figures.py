"""The figures a replay reports for one outcome: flat scalars (compared across policies with
confidence intervals) and daily series (charted). Money in major units (minor / 100) of the
log's currency; waits and float in days.

Scalars:
- delivered, revenue: cars delivered by the end of the log and their list prices;
- pool_mean, pool_peak: customers' cash the maker holds (deposits and payments on open orders,
  refunds still owed), averaged over the days and at its highest;
- held_per_car: pool_mean divided by cars delivered;
- float_days: how long, on average, a unit of customers' money stays with the maker before
  its car is delivered or it is refunded or forfeited: the sum of the daily pool over the total paid in;
- cancelled, cancel_rate, cancel_customer, cancel_void, revenue_lost: orders cancelled (by
  customers, voided for an unpaid balance, by the maker) over orders placed, and their list prices;
- wait_mean, wait_p50, wait_p95, wait_p99: days from placed_at to delivered_at of delivered cars;
- overtakes, largest_overtake, kendall_tau, share_overtaken: see orderbank.replay.fairness, on the
  allocation sequence (who got a car on an earlier day than whom); served: the orders that got a car, whose
  pairs Kendall's tau compares;
- trim.<trim>.* and cohort.<ISO week>.cancel_rate: the same, by trim and by week of order.
Series (value at the end of each day): backlog (open orders), waiting (open, no car yet),
pool (held), delivered and revenue (cumulative), cancelled (cumulative).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from orderbank.projections.orders import US_PER_DAY
from orderbank.replay.fairness import NOBODY, Fairness, fairness
from orderbank.replay.orderlog import BALANCE_NOT_PAID, CUSTOMER, I64, NEVER, OrderLog
from orderbank.replay.outcome import Outcome, sum_by_order

SERIES = ("backlog", "waiting", "pool", "delivered", "revenue", "cancelled")
Scalars = dict[str, float | None]
Series = dict[str, list[float]]


@dataclass(frozen=True)
class Figures:
    scalars: Scalars
    series: Series


def _major(minor: float) -> float:
    return minor / 100


def boundaries(log: OrderLog) -> I64:
    """The end of each day of the log (midnight UTC), where the series are sampled."""
    return log.origin_us + US_PER_DAY * np.arange(1, log.days + 1, dtype=np.int64)


def _day_of(times: I64, log: OrderLog) -> I64:
    """For each time, the first day whose end (`boundaries`) it falls before; `log.days` past the last."""
    return np.minimum(np.maximum((times - log.origin_us) // US_PER_DAY, 0), log.days)  # np.clip: slower


def _counted_before(times: I64, log: OrderLog) -> I64:
    """How many of the (happened) times fall before each boundary (counted by day: no sort)."""
    per_day = np.bincount(_day_of(times[times != NEVER], log), minlength=log.days + 1)
    return np.cumsum(per_day[: log.days], dtype=np.int64)


def _summed_before(times: I64, amounts: I64, log: OrderLog) -> I64:
    """Exact integer sums of the amounts whose times fall before each boundary."""
    per_day = np.zeros(log.days + 1, dtype=np.int64)
    np.add.at(per_day, _day_of(times, log), amounts)
    return np.cumsum(per_day[: log.days])


def pool_changes(log: OrderLog, outcome: Outcome) -> tuple[I64, I64]:
    """Every change to the held pool as (time, amount): deposits and payments in; delivered
    cars' money realised, forfeited money and paid refunds out."""
    paid = log.deposit + sum_by_order(outcome.payments, log.orders)
    delivered = outcome.left_us != NEVER
    cancelled = outcome.cancelled_us != NEVER
    times = np.concatenate([outcome.entered_us, outcome.payments.at_us, outcome.left_us[delivered],
                            outcome.cancelled_us[cancelled], outcome.refunds.at_us])
    amounts = np.concatenate([log.deposit, outcome.payments.amount, -paid[delivered],
                              -(paid[cancelled] - outcome.refund_due[cancelled]), -outcome.refunds.amount])
    return times, amounts


def daily_series(log: OrderLog, outcome: Outcome) -> dict[str, I64]:
    entered = _counted_before(outcome.entered_us, log)
    delivered = _counted_before(outcome.left_us, log)
    cancelled = _counted_before(outcome.cancelled_us, log)
    allocated = outcome.allocated_us
    leave_queue = np.where(allocated != NEVER, allocated, outcome.cancelled_us)
    is_delivered = outcome.left_us != NEVER
    return {
        "backlog": entered - delivered - cancelled,
        "waiting": entered - _counted_before(leave_queue, log),
        "pool": _summed_before(*pool_changes(log, outcome), log),
        "delivered": delivered,
        "revenue": _summed_before(outcome.left_us[is_delivered], log.list_price[is_delivered], log),
        "cancelled": cancelled,
    }


def _waits(log: OrderLog, outcome: Outcome, rows: I64) -> Scalars:
    delivered = rows[outcome.delivered_us[rows] != NEVER]
    days = (outcome.delivered_us[delivered] - log.placed_us[delivered]) / US_PER_DAY
    if not len(days):
        return dict.fromkeys(("wait_mean", "wait_p50", "wait_p95", "wait_p99"))
    p50, p95, p99 = np.percentile(days, [50, 95, 99])
    return {"wait_mean": float(days.mean()), "wait_p50": float(p50), "wait_p95": float(p95), "wait_p99": float(p99)}


def _cancellations(log: OrderLog, outcome: Outcome, rows: I64) -> Scalars:
    gone = rows[outcome.cancelled_us[rows] != NEVER]
    placed = len(rows)
    return {
        "placed": float(placed), "cancelled": float(len(gone)),
        "cancel_rate": len(gone) / placed if placed else None,
        "cancel_customer": float((outcome.reason[gone] == CUSTOMER).sum()),
        "cancel_void": float((outcome.reason[gone] == BALANCE_NOT_PAID).sum()),
        "revenue_lost": _major(float(log.list_price[gone].sum())),
    }


def _fairness(log: OrderLog, outcome: Outcome, ordinal: I64) -> Fairness:
    """Overtakes by the day orders stopped waiting: a car allocated the same day as another is
    not counted as served out of turn (the log's allocation times within a day are noise, and
    for orders paid in full before allocation only an estimate)."""
    served = outcome.allocated_us != NEVER
    left = np.where(served, outcome.allocated_us, outcome.cancelled_us)
    exit_day = np.where(left != NEVER, (left - log.origin_us) // US_PER_DAY, np.iinfo(np.int64).max)
    total = NOBODY
    for lane in range(len(log.lanes)):
        members = np.flatnonzero(log.lane == lane)
        sequence = np.empty_like(members)
        sequence[ordinal[members]] = members  # a lane's ordinals are 0, 1, ...: no sort
        total = total + fairness(exit_day[sequence], served[sequence])
    return total


def iso_weeks(log: OrderLog) -> tuple[list[str], I64]:
    """Each order's ISO week of placement, as (week labels, index per order)."""
    days = (log.placed_us - log.origin_us) // US_PER_DAY
    unique_days, day_index = np.unique(days, return_inverse=True)
    origin = datetime.fromtimestamp(log.origin_us / 1_000_000, UTC)
    labels = []
    for day in unique_days.tolist():
        year, week, _ = (origin + timedelta(days=day)).isocalendar()
        labels.append(f"{year}-W{week:02d}")
    weeks = sorted(set(labels))
    position = {week: i for i, week in enumerate(weeks)}
    return weeks, np.array([position[label] for label in labels], dtype=np.int64)[day_index]


def figures(log: OrderLog, outcome: Outcome, ordinal: I64) -> Figures:
    series = daily_series(log, outcome)
    everyone = np.arange(log.orders)
    delivered = outcome.delivered_us != NEVER
    pool = series["pool"].astype(np.float64)
    paid_in = float(log.deposit.sum() + outcome.payments.amount.sum())
    fair = _fairness(log, outcome, ordinal)
    scalars: Scalars = {
        "delivered": float(delivered.sum()),
        "revenue": _major(float(log.list_price[delivered].sum())),
        "pool_mean": _major(float(pool.mean())), "pool_peak": _major(float(pool.max())),
        "held_per_car": _major(float(pool.mean()) / int(delivered.sum())) if delivered.any() else None,
        "float_days": float(pool.sum()) / paid_in if paid_in else None,
        **_cancellations(log, outcome, everyone), **_waits(log, outcome, everyone),
        "overtakes": float(fair.overtakes), "largest_overtake": float(fair.largest_overtake),
        "kendall_tau": fair.kendall_tau, "share_overtaken": fair.share_overtaken, "served": float(fair.served),
        "open_at_end": float(series["backlog"][-1]),
    }
    for code, trim in enumerate(log.trims):
        rows = np.flatnonzero(log.trim == code)
        by_trim = {**_cancellations(log, outcome, rows), **_waits(log, outcome, rows),
                   "delivered": float(delivered[rows].sum())}
        scalars.update({f"trim.{trim}.{name}": value for name, value in by_trim.items()})
    weeks, week_of = iso_weeks(log)
    placed = np.bincount(week_of, minlength=len(weeks))
    gone = np.bincount(week_of[outcome.cancelled_us != NEVER], minlength=len(weeks))
    scalars.update({f"cohort.{week}.cancel_rate": float(gone[i] / placed[i])
                    for i, week in enumerate(weeks) if placed[i]})
    money = {"pool", "revenue"}
    return Figures(scalars, {name: [_major(v) if name in money else float(v) for v in values.tolist()]
                             for name, values in series.items()})
