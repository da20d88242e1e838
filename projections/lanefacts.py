"""What a lane's ETA forecast reads of its orders: one row per order ever placed in the lane, as columns.

The bank writes a row when an order is placed and rewrites its changing cells when a fact the forecast
reads changes (a car allocated, the price paid in full, the order delivered or cancelled), a few array
stores per event. A refresh reads the columns with numpy (`columns()`), so it never walks the orders in
Python. Rows are in the order the bank met the orders, which differs between a fold, a shard and a
restore: the forecast reads them only through counts and sorts, which do not depend on it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from orderbank.projections.orders import Order, Status

NEVER = -1
OPEN, DELIVERED, GAVE_UP, REMOVED = 0, 1, 2, 3
"""An order's outcome so far: open, delivered, cancelled by its customer, cancelled otherwise."""
I64 = npt.NDArray[np.int64]


def _time(us: int | None) -> int:
    return NEVER if us is None else us


def outcome(order: Order) -> int:
    if order.status is Status.OPEN:
        return OPEN
    if order.status is Status.DELIVERED:
        return DELIVERED
    return GAVE_UP if order.cancel_reason == "customer" else REMOVED


@dataclass(frozen=True)
class Columns:
    """Every order of a lane: placed_at, trim rank, when allocated and fully paid (or NEVER), when it was
    delivered (delivered_at) or cancelled (or NEVER), and its outcome so far."""

    placed_us: I64
    trim_rank: I64
    allocated_us: I64
    paid_us: I64
    closed_us: I64
    outcome: I64


class LaneFacts:
    """The columns of one lane, kept as the bank folds."""

    __slots__ = ("allocated", "closed", "outcome", "paid", "placed", "rank", "row")

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.placed, self.rank, self.allocated = array("q"), array("q"), array("q")
        self.paid, self.closed, self.outcome = array("q"), array("q"), array("q")

    def add(self, order: Order) -> None:
        self.row[order.order_id] = len(self.placed)
        self.placed.append(order.placed_us)
        self.rank.append(order.trim_rank)
        self.allocated.append(_time(order.allocated_us))
        self.paid.append(_time(order.paid_us))
        self.closed.append(_time(order.closed_us))
        self.outcome.append(outcome(order))

    def update(self, order: Order) -> None:
        row = self.row[order.order_id]
        self.allocated[row] = _time(order.allocated_us)
        self.paid[row] = _time(order.paid_us)
        self.closed[row] = _time(order.closed_us)
        self.outcome[row] = outcome(order)

    def columns(self) -> Columns:
        """Copies (a view would stop the arrays growing while it lives)."""
        return Columns(*(np.frombuffer(column, dtype=np.int64).copy() for column in (
            self.placed, self.rank, self.allocated, self.paid, self.closed, self.outcome)))
