"""What happened to each order, as it happened or under another policy: the figures' one input.

An `Outcome` says, per order of an `OrderLog`, when it was allocated a car, delivered or
cancelled (and why), what it was owed back, and every payment and refund. `as_happened` reads
it off the log; `orderbank.replay.counterfactual` simulates one. Times are int64 microseconds, NEVER when
the fact did not happen by the end of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orderbank.replay.orderlog import I32, I64, NEVER, Movements, OrderLog


@dataclass(frozen=True)
class Outcome:
    entered_us: I64
    """When the order joined the queue."""
    allocated_us: I64
    """When a car was allocated to it (its balance demanded), NEVER if none was."""
    delivered_us: I64
    """delivered_at, for waits."""
    left_us: I64
    """When the delivery took the order out of the bank (occurred_at), for the daily series."""
    cancelled_us: I64
    reason: I32
    refund_due: I64
    payments: Movements
    refunds: Movements


def sum_by_order(movements: Movements, orders: int) -> I64:
    """Each order's total of the movements (exact integer sums)."""
    total = np.zeros(orders, dtype=np.int64)
    np.add.at(total, movements.order, movements.amount)
    return total


def allocation_times(log: OrderLog, lead_us: int) -> I64:
    """When the log's orders were allocated a car: the first balance demand, or for an order
    delivered without one (it was paid in full already), `lead_us` before its delivery."""
    allocated = log.demand_us.copy()
    undemanded = (allocated == NEVER) & (log.delivered_us != NEVER)
    allocated[undemanded] = log.delivered_us[undemanded] - lead_us
    return allocated


def as_happened(log: OrderLog, lead_us: int) -> Outcome:
    """The outcome the log records."""
    return Outcome(
        entered_us=log.entered_us, allocated_us=allocation_times(log, lead_us), delivered_us=log.delivered_us,
        left_us=log.delivered_entered_us, cancelled_us=log.cancelled_us, reason=log.reason,
        refund_due=log.refund_due, payments=log.payments, refunds=log.refunds,
    )
