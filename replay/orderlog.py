"""An event log folded into columns: one row per order, plus the money movements, as numpy arrays.

This is what the replay reads instead of events. Times are int64 microseconds since the epoch,
`NEVER` (-1) when a fact did not happen; money is int64 minor units of the log's one currency.
The rules that fold events into these columns are those of `orderbank.projections.bank` (same lifecycle,
same rejections), applied by `orderbank.replay.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import get_args

import numpy as np
import numpy.typing as npt

from orderbank.projections.events import CancelReason, ProductionPlanned
from orderbank.projections.orders import US_PER_DAY

NEVER = -1
CANCEL_REASONS: tuple[CancelReason, ...] = get_args(CancelReason)
"""OrderCancelled.reason values; an order's `reason` column is 1 + the index here, 0 = not cancelled."""


def reason_code(reason: CancelReason) -> int:
    """An order's `reason` column for a cancellation with this reason."""
    return CANCEL_REASONS.index(reason) + 1


CUSTOMER, BALANCE_NOT_PAID, MAKER, FRAUD = (reason_code("customer"), reason_code("balance_not_paid"),
                                            reason_code("maker"), reason_code("fraud"))

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Movements:
    """Money that moved, one row per event: which order, when (occurred_at), how much."""

    order: I64
    at_us: I64
    amount: I64


@dataclass(frozen=True)
class Payments(Movements):
    voluntary: Flags
    """Paid while nothing was demanded (a customer's own prepayment), not in answer to a demand."""


@dataclass(frozen=True)
class LoadReport:
    """What loading found: lines read, events applied, duplicates, and every rejection by reason."""

    lines: int
    applied: int
    duplicates: int
    rejected: dict[str, int]
    examples: list[dict[str, object]] = field(default_factory=list)
    exact_lines: int = 0
    """Lines that left the fast path and were decoded by orderbank.projections.codec (pydantic)."""

    def as_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "applied": self.applied, "duplicates": self.duplicates,
                "rejected": dict(sorted(self.rejected.items())), "examples": self.examples}


@dataclass(frozen=True)
class OrderLog:
    """Every order of the log with what happened to it, by the end of the log (`end_us`)."""

    order_id: list[str]
    lanes: tuple[str, ...]
    lane: I32
    trims: tuple[str, ...]
    trim: I32
    trim_rank: I64
    currency: str
    list_price: I64
    deposit: I64
    placed_us: I64
    """placed_at: when the customer ordered (what first-come-first-served reads)."""
    entered_us: I64
    """occurred_at of OrderPlaced: when the order entered the bank."""
    demand_us: I64
    """The first balance demand: when the maker allocated a car to the order."""
    due_us: I64
    received: I64
    fully_paid_us: I64
    prepaid_us: I64
    """When a customer's own prepayments (nothing demanded) completed the price."""
    delivered_us: I64
    """delivered_at of VehicleDelivered."""
    delivered_entered_us: I64
    """occurred_at of VehicleDelivered (the bank's clock when the order left the queue)."""
    cancelled_us: I64
    reason: I32
    refund_due: I64
    refunded: I64
    transfers: I32
    payments: Payments
    refunds: Movements
    start_us: int
    end_us: int
    report: LoadReport
    plans: tuple[ProductionPlanned, ...] = ()
    """The production plans applied, in log order (no order's: for the ETA forecast)."""

    @property
    def orders(self) -> int:
        return len(self.order_id)

    @property
    def origin_us(self) -> int:
        """Midnight UTC of the log's first day: day k of the replay starts k days after this."""
        return self.start_us - self.start_us % US_PER_DAY

    @property
    def days(self) -> int:
        """Days from the origin to the end of the log, counting the last, partial day."""
        return (self.end_us - self.origin_us) // US_PER_DAY + 1

    @property
    def paid(self) -> I64:
        """Everything each customer paid: deposit and later payments."""
        return self.deposit + self.received

    @cached_property
    def first_come(self) -> I64:
        """Each order's rank by (placed_at, order_id) among all the log's orders: the tie-break every policy
        key ends with, as a number (kept, so that the order ids are sorted once per log, not once per policy)."""
        by_id = np.argsort(np.array(self.order_id, dtype=object), kind="stable")
        id_rank = np.empty(self.orders, dtype=np.int64)
        id_rank[by_id] = np.arange(self.orders)
        rank = np.empty(self.orders, dtype=np.int64)
        rank[np.lexsort((id_rank, self.placed_us))] = np.arange(self.orders)
        return rank

    def ordinal(self) -> I64:
        """Each order's rank by (placed_at, order_id) among the orders of its lane (policies read it)."""
        sequence = np.lexsort((self.first_come, self.lane))
        ordinal = np.empty(self.orders, dtype=np.int64)
        lane_sorted = self.lane[sequence]
        starts = np.searchsorted(lane_sorted, lane_sorted, side="left")
        ordinal[sequence] = np.arange(self.orders) - starts
        return ordinal
