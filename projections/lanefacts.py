"""What a lane's ETA forecast reads of its orders: for every order ever placed in the lane, as columns.

A refresh reads the columns off the lane's orders at once (`columns_of`: ~0.3 s for the yu7 launch's 300,000
orders as a fold leaves them, their fields scattered over its memory), rather than the bank keeping them as it
folds: a lane is refreshed about once a day, and keeping them would cost every event of the fold. The orders come
in the order the bank met them, which differs between a fold, a shard and a restore: the forecast reads the
columns only through counts and sorts, which do not depend on it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, eq

import numpy as np
import numpy.typing as npt

from orderbank.projections.orders import Order, Status

NEVER = -1
OPEN, DELIVERED, GAVE_UP, REMOVED = 0, 1, 2, 3
"""An order's outcome so far: open, delivered, cancelled by its customer, cancelled otherwise."""
I64 = npt.NDArray[np.int64]


_STATUS = {Status.OPEN: OPEN, Status.DELIVERED: DELIVERED, Status.CANCELLED: GAVE_UP}


def _outcomes(orders: Collection[Order]) -> I64:
    """Each order's outcome: its status's, a cancellation's by its reason (read as columns, not an order at a time)."""
    count = len(orders)
    status = np.fromiter(map(_STATUS.__getitem__, map(attrgetter("status"), orders)), np.int64, count)
    by_customer = np.fromiter(map(eq, map(attrgetter("cancel_reason"), orders), repeat("customer")), bool, count)
    return np.where((status == GAVE_UP) & ~by_customer, REMOVED, status)


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


def columns_of(orders: Collection[Order]) -> Columns:
    """The columns of these orders (a lane's, every one ever placed in it), read off the orders at once."""
    count = len(orders)

    def plain(name: str) -> I64:
        return np.fromiter(map(attrgetter(name), orders), np.int64, count)

    def time(name: str) -> I64:
        return np.fromiter((NEVER if t is None else t for t in map(attrgetter(name), orders)), np.int64, count)

    return Columns(plain("placed_us"), plain("trim_rank"), time("allocated_us"), time("paid_us"), time("closed_us"),
                   _outcomes(orders))
