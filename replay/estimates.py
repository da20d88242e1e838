"""What the counterfactual learns from the log: the maker's timing rules and customers' behaviour.

- lead: days from a car's allocation (its balance demand) to its delivery (median);
- due: days a customer is given to pay the balance (median of due_at - demanded);
- pay probability: of the allocated orders whose answer is known, the share that paid;
  and the delays from demand to payment (the empirical distribution, resampled);
- refunds: per cancellation reason, the share of what was paid that is refunded and the days
  until the refund is paid (medians);
- patience: each order's wait until it cancelled (observed) or stopped being at risk without
  cancelling (censored: allocated, cancelled by the maker, or still waiting at the end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orderbank.projections.orders import US_PER_DAY
from orderbank.replay.orderlog import CANCEL_REASONS, CUSTOMER, I64, NEVER, Flags, OrderLog
from orderbank.replay.outcome import allocation_times
from orderbank.replay.patience import F64, Patience, estimate


@dataclass(frozen=True)
class Refunds:
    share: float
    """Of what the customer had paid, the share refunded."""
    delay_us: int | None
    """From cancellation to the refund being paid; None when the log shows no refund paid."""


@dataclass(frozen=True)
class Estimates:
    lead_us: int
    due_us: int
    pay_probability: float
    pay_delays_us: I64
    refunds: dict[int, Refunds]
    allocated_us: I64
    waited_days: F64
    cancelled: Flags
    """True where waited_days is an observed patience, False where it is censored."""
    patience: Patience

    def describe(self) -> dict[str, object]:
        return {
            "lead_days": round(self.lead_us / US_PER_DAY, 6), "due_days": round(self.due_us / US_PER_DAY, 6),
            "pay_probability": round(self.pay_probability, 6),
            "pay_delay_days_median": round(float(np.median(self.pay_delays_us)) / US_PER_DAY, 6)
            if len(self.pay_delays_us) else None,
            "refunds": {CANCEL_REASONS[code - 1]: {"share": round(r.share, 6), "delay_days": None if r.delay_us is None
                        else round(r.delay_us / US_PER_DAY, 6)} for code, r in sorted(self.refunds.items())},
            "patience": {"observed": int(self.cancelled.sum()), "censored": int((~self.cancelled).sum()),
                         **self.patience.describe()},
        }


def _median_us(values: I64, default: int) -> int:
    return int(np.median(values)) if len(values) else default


def estimate_from(log: OrderLog, patience_estimator: str = "km") -> Estimates:
    demanded = log.demand_us != NEVER
    delivered_after_demand = demanded & (log.delivered_us != NEVER)
    lead = _median_us(log.delivered_us[delivered_after_demand] - log.demand_us[delivered_after_demand], 0)
    due = _median_us(log.due_us[demanded] - log.demand_us[demanded], 7 * US_PER_DAY)
    paid_after = demanded & (log.fully_paid_us != NEVER) & (log.fully_paid_us >= log.demand_us)
    refused = demanded & ~paid_after & (log.cancelled_us != NEVER)
    answered = int(paid_after.sum() + refused.sum())
    allocated = allocation_times(log, lead)
    waited, cancelled = _waits(log, allocated)
    return Estimates(
        lead_us=lead, due_us=due, pay_probability=float(paid_after.sum() / answered) if answered else 1.0,
        pay_delays_us=np.sort(log.fully_paid_us[paid_after] - log.demand_us[paid_after]),
        refunds=_refunds(log), allocated_us=allocated, waited_days=waited, cancelled=cancelled,
        patience=estimate(waited, cancelled, patience_estimator),
    )


def _refunds(log: OrderLog) -> dict[int, Refunds]:
    paid = log.paid
    first_refund = np.full(log.orders, NEVER, dtype=np.int64)
    order, at = log.refunds.order[::-1], log.refunds.at_us[::-1]  # reversed, so the earliest write wins
    first_refund[order] = at
    out = {}
    for code in range(1, len(CANCEL_REASONS) + 1):
        rows = log.reason == code
        if not rows.any():
            continue
        share = float(np.median(np.where(paid[rows] > 0, log.refund_due[rows] / np.maximum(paid[rows], 1), 0.0)))
        refunded = rows & (first_refund != NEVER)
        delays = first_refund[refunded] - log.cancelled_us[refunded]
        out[code] = Refunds(share, _median_us(delays, 0) if len(delays) else None)
    return out


def _waits(log: OrderLog, allocated: I64) -> tuple[F64, Flags]:
    """Each order's time at risk of cancelling, and whether it ended in a customer cancellation."""
    cancelled_waiting = (log.reason == CUSTOMER) & ((allocated == NEVER) | (log.cancelled_us < allocated))
    exit_us = np.full(log.orders, log.end_us, dtype=np.int64)
    exit_us = np.where(log.cancelled_us != NEVER, log.cancelled_us, exit_us)
    exit_us = np.where((allocated != NEVER) & ~cancelled_waiting, np.minimum(allocated, exit_us), exit_us)
    return np.maximum(exit_us - log.placed_us, 0) / US_PER_DAY, cancelled_waiting

