"""Which decoded events apply: the bank's lifecycle rules, over columns where an order goes the
expected way, event by event through `orderbank.projections.orders.check` where it does not.

The rows are grouped by order (one sort that keeps each order's events in log order). An order goes
the expected way when its first event is its OrderPlaced at seq 1, its seqs run 1, 2, 3, ..., every
amount is in its currency, nothing follows a delivery, only refunds follow a cancellation, a
cancellation refunds at most what was paid, refunds stay within what is owed and none of its event
ids is on another row: then every one of its events applies, which numpy checks for all orders at
once. The other orders' events (a duplicate, a gap, an event for an order never placed, an event id
used again, maybe by another order, a bad line repeated, ...) and every plan stream's are decoded
again by `orderbank.projections.codec` and folded one by one with the bank's rules (its `EventIds` and
`Counted` among them), which say what applies, what is a duplicate and why the rest is rejected.
Where a lane could fill up (the bank's `max_open_per_lane` depends on every order before) or amounts
could overflow int64 sums, every order is folded one by one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from orderbank.projections.bank import BankSettings, Counted, EventIds, Verdict, id_conflict
from orderbank.projections.codec import Reason, Rejection, decode
from orderbank.projections.events import (
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentReceived,
    ProductionPlanned,
    RefundPaid,
    VehicleDelivered,
)
from orderbank.projections.orders import Order, Status, check
from orderbank.projections.plans import PlanStream, order_rule, plan_rule, stream_of
from orderbank.replay.orderlog import I64, Flags
from orderbank.replay.rows import Rows, Words, hash_rows
from orderbank.replay.shapes import CANCELLED, DELIVERED, HAS_MONEY, PLACED, PLANNED, RECEIVED, REFUNDED
from orderbank.replay.source import LineSource

Indices = npt.NDArray[np.intp]
V = TypeVar("V", bound=np.generic)


@dataclass(frozen=True)
class Orders:
    """The rows grouped by order: `sequence` lists the rows order by order, each order's in log order."""

    sequence: Indices
    group: Indices
    """Each position of `sequence`: which order (0, 1, ... in the sort's order, not the log's)."""
    starts: Indices
    """Where each order's rows begin in `sequence`."""

    @staticmethod
    def of(rows: Rows) -> Orders:
        """Group by sorting one int64 per row: a hash of the order id above the row number, so a
        row's place follows its order, then its line. A hash shared by two ids is seen (equal
        hashes, different ids side by side) and the ids themselves are sorted instead."""
        columns, n = [np.ascontiguousarray(column) for column in rows.order.T], len(rows)
        bits = max(n - 1, 1).bit_length()
        mixed = hash_rows(columns, n)
        key = np.right_shift(mixed, np.uint64(bits + 1), out=mixed).view(np.int64)
        np.left_shift(key, bits, out=key)
        key |= np.arange(n)
        key.sort()
        sequence = (key & ((1 << bits) - 1)).astype(np.intp)
        first = _firsts(columns, sequence)
        hashed = key >> bits
        if np.any(first[1:] & (hashed[1:] == hashed[:-1])):  # two ids, one hash
            sequence = np.lexsort(columns[::-1])
            first = _firsts(columns, sequence)
        return Orders(sequence, np.cumsum(first) - 1, np.flatnonzero(first))

    def running(self, chosen: Indices, values: I64) -> I64:
        """For each chosen position (in order), the sum of `values` over the chosen positions of its
        order before it."""
        before = np.cumsum(values) - values
        group = self.group[chosen]
        first = np.ones(len(chosen), dtype=bool)
        first[1:] = group[1:] != group[:-1]
        starts = np.flatnonzero(first)
        return before - np.repeat(before[starts], np.diff(starts, append=len(chosen)))

    def spread(self, per_order: npt.NDArray[V]) -> npt.NDArray[V]:
        """A value per order, repeated at each of its positions (`per_order[group]`, but faster)."""
        return np.repeat(per_order, np.diff(self.starts, append=len(self.sequence)))


def _firsts(columns: list[Words], sequence: Indices) -> Flags:
    """Where, in this sequence of rows, a new order id begins."""
    first = np.ones(len(sequence), dtype=bool)
    first[1:] = False
    for column in columns:
        ordered = column[sequence]
        first[1:] |= ordered[1:] != ordered[:-1]
    return first


@dataclass(frozen=True)
class Settlement:
    """What happened to each row: applied or not; the duplicates; the rejections with their line numbers."""

    applied: Flags
    duplicates: int
    rejections: list[tuple[int, Rejection]]
    decoded: set[int]
    """Line numbers decoded again by orderbank.projections.codec to fold them one by one."""


def settle(rows: Rows, orders: Orders, settings: BankSettings, source: LineSource, exact: bool) -> Settlement:
    """Apply the bank's rules to every row: in bulk where an order goes the expected way (never, when
    `exact`), else one event at a time."""
    one_by_one = exact or _lanes_may_fill(rows, settings) or not _sums_fit(rows)
    expected = np.zeros(len(orders.starts), dtype=bool) if one_by_one else _expected(rows, orders)
    applied = np.empty(len(rows), dtype=bool)
    applied[orders.sequence] = orders.spread(expected)
    rest = np.flatnonzero(~applied)
    folded = _fold_each(rows.line[rest], source, settings)
    applied[rest] = folded.applied
    return Settlement(applied, folded.duplicates, folded.rejections, folded.decoded)


def _lanes_may_fill(rows: Rows, settings: BankSettings) -> bool:
    """Could a lane reach `max_open_per_lane` (then the bank rejects a placement)? Not if no lane
    has that many placements in the whole log."""
    placed = rows.kind == PLACED
    lane = rows.model[placed].astype(np.int64)
    if settings.lane_by == "model_trim":
        lane = lane * (int(rows.trim.max(initial=0)) + 1) + rows.trim[placed]
    return bool(np.bincount(lane).max(initial=0) > settings.max_open_per_lane)


def _sums_fit(rows: Rows) -> bool:
    """Can running sums of all the log's amounts be taken in int64? (If not, Python's ints do it.)"""
    return float(rows.minor.sum(dtype=np.float64) + rows.deposit.sum(dtype=np.float64)) < 2.0**62


def _expected(rows: Rows, orders: Orders) -> Flags:
    """For each order: does it go the expected way (so all its events apply)?"""
    at, starts, group = orders.sequence, orders.starts, orders.group
    kind, position = rows.kind[at], np.arange(len(at))
    ok = (rows.seq[at] == position - orders.spread(starts) + 1) & (kind != PLANNED)  # plan streams: one by one
    first = np.zeros(len(at), dtype=bool)
    first[starts] = True
    ok &= (kind == PLACED) == first
    money = np.flatnonzero(HAS_MONEY[kind])
    ok[money] &= rows.currency[at[money]] == rows.currency[at[starts]][group[money]]
    ok[starts] &= rows.deposit_currency[at[starts]] == rows.currency[at[starts]]
    # open until cancelled or delivered, once; after a cancellation, refunds only
    ends = np.flatnonzero((kind == CANCELLED) | (kind == DELIVERED))
    ok[ends[1:][group[ends][1:] == group[ends][:-1]]] = False
    end = np.full(len(starts), len(at), dtype=np.int64)
    end[group[ends]] = ends
    cancelled = np.zeros(len(starts), dtype=bool)
    cancelled[group[ends]] = kind[ends] == CANCELLED
    refunded = kind == REFUNDED
    ok &= np.where(position > orders.spread(end), refunded & orders.spread(cancelled), ~refunded)
    # a cancellation refunds at most what was paid; refunds stay within what it owes
    paid = np.flatnonzero((kind == RECEIVED) | (kind == CANCELLED))
    minor = rows.minor[at[paid]]
    received = orders.running(paid, np.where(kind[paid] == RECEIVED, minor, 0))
    refunding = kind[paid] == CANCELLED
    ok[paid[refunding]] &= minor[refunding] <= (rows.deposit[at[starts]][group[paid]] + received)[refunding]
    owing = np.flatnonzero((kind == CANCELLED) | refunded)
    minor = rows.minor[at[owing]]
    owed = np.zeros(len(starts), dtype=np.int64)
    owed[group[owing[kind[owing] == CANCELLED]]] = minor[kind[owing] == CANCELLED]
    refunds = np.where(kind[owing] == REFUNDED, minor, 0)
    ok[owing] &= orders.running(owing, refunds) + refunds <= owed[group[owing]]
    # an event id on two rows: one of them is a redelivery or a conflict (and a line repeated is both)
    ok &= ~_ids_shared(rows)[at]
    expected = np.ones(len(starts), dtype=bool)
    expected[group[~ok]] = False
    return expected


def _ids_shared(rows: Rows) -> Flags:
    """The rows whose event id (by its digest) is on another row too."""
    digests = np.sort(rows.event)
    shared = digests[1:][digests[1:] == digests[:-1]]
    return np.isin(rows.event, shared) if len(shared) else np.zeros(len(rows), dtype=bool)


@dataclass
class _Folded:
    applied: Flags
    duplicates: int
    rejections: list[tuple[int, Rejection]]
    decoded: set[int]


def _fold_each(lines: I64, source: LineSource, settings: BankSettings) -> _Folded:
    """The bank's fold over the events on these lines (in log order), from a second read of the log."""
    out = _Folded(np.zeros(len(lines), dtype=bool), 0, [], set())
    if not len(lines):
        return out
    wanted = dict(zip(lines.tolist(), range(len(lines)), strict=True))
    orders: dict[str, Order] = {}
    plans: dict[str, PlanStream] = {}
    open_in: Counter[str] = Counter()
    # Every row with an id on another row is folded here, and every repeated line (its id is on the other).
    event_ids, counted = EventIds(), Counted()
    for number, line in enumerate(source.lines(), start=1):
        if len(out.decoded) == len(wanted):
            break
        row = wanted.get(number)
        if row is None:
            continue
        out.decoded.add(number)
        event = decode(line)
        assert not isinstance(event, Rejection), f"line {number} decoded on the fast path, rejected on the exact one"
        if event_ids.taken_by_another(event):
            rejection: Rejection | Verdict | None = id_conflict(event)
        elif isinstance(event, ProductionPlanned):
            rejection = _plan(plans, orders, event)
        else:
            order = orders.get(event.order_id)
            if order is not None and event.seq <= order.last_seq:
                rejection = Verdict.DUPLICATE
            else:
                rejection = (check(order, event) or (order_rule(event, plans) if order is None else None)
                             or _over_limit(order, event, open_in, settings))
                if rejection is None:
                    _apply(orders, order, event, open_in, settings)
        if rejection is None:
            out.applied[row] = True
        elif isinstance(rejection, Rejection) and counted.first(line, rejection.reason):
            out.rejections.append((number, rejection))
        else:  # the same event again, or the same bytes rejected again for the same reason
            out.duplicates += 1
    return out


def _plan(plans: dict[str, PlanStream], orders: dict[str, Order],
          event: ProductionPlanned) -> Rejection | Verdict | None:
    """The bank's rules for a plan event (orderbank.projections.bank): None if it applies (to `plans`),
    a duplicate's verdict, or its rejection."""
    stream = plans.get(event.order_id)
    if stream is not None and event.seq <= stream.last_seq:
        return Verdict.DUPLICATE
    rejection = plan_rule(stream, event, event.order_id in orders)
    if rejection is not None:
        return rejection
    if stream is None:
        stream = plans[event.order_id] = stream_of(event)
    stream.declare(event)
    return None


def _over_limit(order: Order | None, event: Event, open_in: Counter[str], settings: BankSettings) -> Rejection | None:
    if order is not None or not isinstance(event, OrderPlaced):
        return None
    if open_in[settings.lane_of(event)] >= settings.max_open_per_lane:
        return Rejection(Reason.LANE_FULL, "max_open_per_lane",
                         f"lane already holds {settings.max_open_per_lane} open orders",
                         None, event.order_id, str(event.event_id))
    return None


def _apply(orders: dict[str, Order], order: Order | None, event: Event, open_in: Counter[str],
           settings: BankSettings) -> None:
    """What `check` reads of an order after the event: seq, status, money received and owed."""
    if order is None:
        assert isinstance(event, OrderPlaced)
        lane = settings.lane_of(event)
        orders[event.order_id] = Order(
            order_id=event.order_id, customer_id=event.customer_id, model=event.model, trim=event.trim,
            trim_rank=event.trim_rank, lane=lane, currency=event.list_price.currency,
            list_price=event.list_price.minor, deposit=event.deposit.minor, placed_us=0, cohort="")
        open_in[lane] += 1
        return
    order.last_seq = event.seq
    match event:
        case PaymentReceived():
            order.received += event.amount.minor
        case OrderCancelled():
            order.status, order.refund_due = Status.CANCELLED, event.refund.minor
            open_in[order.lane] -= 1
        case RefundPaid():
            order.refunded += event.amount.minor
        case VehicleDelivered():
            order.status = Status.DELIVERED
            open_in[order.lane] -= 1
