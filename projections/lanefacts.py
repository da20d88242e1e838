"""What a lane's ETA forecast reads of its orders: for every order ever placed in the lane, as columns.

The lane keeps the columns as its last forecast read them (`LaneFacts`), and the queue projection marks every
order whose facts changed since (placed, allocated, paid in full, delivered or cancelled): a refresh reads only
those orders again, or every order in row order when most changed (a catch-up's refresh). Reading every order at
each refresh took ~0.3 s for the yu7 launch's 300,000 orders (their fields scattered over the fold's memory, each
read a cache miss), half of a refresh, and a worker catching up on a launch's months refreshes at each midnight
of its clock; keeping them costs each such event one dict entry, and a lane ~110 bytes an order (32 MB for the
yu7 launch). Rows come in the order the lane was given its orders (`Lane.orders`), which differs between a fold,
a shard and a restore: the forecast reads the columns only through counts and sorts, which do not depend on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import compress, islice, repeat
from operator import attrgetter, eq

import numpy as np
import numpy.typing as npt

from orderbank.projections.orders import Order, Status

NEVER = -1
CHUNK = 1024
"""Orders read at a time (their fields stay in the CPU's caches from one field's pass to the next)."""
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


class LaneFacts:
    """A lane's columns, as of the last read, and the orders whose facts changed since."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}  # order id -> its row
        self._changed: dict[str, Order] = {}
        self._table: I64 = np.empty((len(fields(Columns)), 0), dtype=np.int64)  # a row per field; room to the right

    def changed(self, order: Order) -> None:
        """The order was placed here, or a fact the forecast reads changed."""
        self._changed[order.order_id] = order

    def columns(self, placed: Mapping[str, Order]) -> Columns:
        """Every order's columns as they stand (views, valid until the next call). `placed`: the lane's orders
        in the order they were placed here, the order of the rows (an order's first change is its placement)."""
        if self._changed:
            rows = self._rows
            if len(self._changed) * 2 >= len(placed):
                # Most of them changed (a catch-up's read): every order in row order, with no row to look up
                # (~0.7 us an order in a dict of a launch's 300,000).
                rows.update(zip(islice(placed, len(rows), None), range(len(rows), len(placed)), strict=True))
                at, orders = None, list(placed.values())
            else:
                ids, orders = list(self._changed), list(self._changed.values())
                at = np.fromiter(map(rows.get, ids, repeat(-1)), np.intp, len(ids))
                new = at < 0  # placed since: a row each, after the others
                at[new] = np.arange(len(rows), len(rows) + int(new.sum()))
                rows.update(zip(compress(ids, new.tolist()), at[new].tolist(), strict=True))
            if len(rows) > self._table.shape[1]:  # grown by a quarter at least: appends stay cheap
                grown = np.empty((len(self._table), max(len(rows), self._table.shape[1] * 5 // 4)), dtype=np.int64)
                grown[:, :self._table.shape[1]] = self._table
                self._table = grown
            # A thousand orders at a time: each is read six times (a pass per field), and a pass over
            # a catch-up's 150,000 scattered orders left none of them in the caches for the next.
            for start in range(0, len(orders), CHUNK):
                chunk = orders[start:start + CHUNK]
                where = slice(start, start + len(chunk)) if at is None else at[start:start + CHUNK]
                self._table[:, where] = _table(chunk)
            self._changed = {}
        return Columns(*self._table[:, :len(self._rows)])


def _table(orders: Sequence[Order]) -> I64:
    """The columns of these orders, one row of the result per field of Columns."""
    count = len(orders)

    def plain(name: str) -> I64:
        return np.fromiter(map(attrgetter(name), orders), np.int64, count)

    def time(name: str) -> I64:
        return np.fromiter((NEVER if t is None else t for t in map(attrgetter(name), orders)), np.int64, count)

    return np.stack([plain("placed_us"), plain("trim_rank"), time("allocated_us"), time("paid_us"), time("closed_us"),
                     _outcomes(orders)])
