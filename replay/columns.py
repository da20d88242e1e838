"""The applied events, folded into per-order columns (`OrderLog`) with numpy.

Orders are numbered by the line of their OrderPlaced, as the bank meets them. Lanes and trims are
numbered by first sight in that order. Every fact is read from the order's applied events in log
order: the first balance demand and its due date, money received and refunded, when payments
completed the price (and whether the customer paid unasked), the cancellation or the delivery.
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from orderbank.projections.bank import BankSettings
from orderbank.projections.errors import LogError
from orderbank.projections.events import ProductionPlanned
from orderbank.replay.lifecycle import Indices, Orders
from orderbank.replay.orderlog import I64, NEVER, Flags, LoadReport, Movements, OrderLog, Payments
from orderbank.replay.rows import Names, Rows, Words
from orderbank.replay.shapes import CANCELLED, DELIVERED, DEMANDED, PLANNED, RECEIVED, REFUNDED, TRANSFERRED, Purpose

_BALANCE = get_args(Purpose).index("balance")
_LATEST = np.iinfo(np.int64).max


class _Applied:
    """The applied events order by order (each order's in log order, its OrderPlaced first): each
    one's row (`at`), type and order number, and what to read of chosen ones."""

    def __init__(self, rows: Rows, orders: Orders, applied: Flags) -> None:
        if not applied.all():
            kept = applied[orders.sequence]
            first = _firsts(orders.group[kept])
            orders = Orders(orders.sequence[kept], np.cumsum(first) - 1, np.flatnonzero(first))
        self.orders, self.at = orders, orders.sequence
        self.kind = rows.kind[self.at]
        placements = self.at[orders.starts]
        self.numbering = np.argsort(placements)  # rows are in log order: orders by the line of their OrderPlaced
        number = np.empty(len(self.numbering), dtype=np.int64)
        number[self.numbering] = np.arange(len(self.numbering))
        self.order = orders.spread(number)
        self.placed = placements[self.numbering]  # each order's OrderPlaced row, by order number

    def of_kind(self, *kinds: int) -> Indices:
        return np.flatnonzero(np.isin(self.kind, kinds)) if len(kinds) > 1 else np.flatnonzero(self.kind == kinds[0])

    def per_order(self, chosen: Indices, values: I64) -> I64:
        """`values` of the chosen events put at their orders; NEVER for the other orders."""
        out = np.full(len(self.placed), NEVER, dtype=np.int64)
        out[self.order[chosen]] = values
        return out

    def total(self, chosen: Indices, values: I64) -> I64:
        """Each order's sum of `values` over its chosen events."""
        out = np.zeros(len(self.placed), dtype=np.int64)
        np.add.at(out, self.order[chosen], values)
        return out



def order_log(rows: Rows, orders: Orders, applied: Flags, names: Names, settings: BankSettings,
              report: LoadReport, plans: tuple[ProductionPlanned, ...] = ()) -> OrderLog:
    """The orders of the applied rows, as columns (the plans' rows are no order's; `plans` keeps them)."""
    events = _Applied(rows, orders, applied & (rows.kind != PLANNED))
    placed, at = events.placed, events.at
    amounts = np.sum(rows.minor, where=applied, dtype=np.float64) + np.sum(rows.deposit[placed], dtype=np.float64)
    if amounts >= 2.0**62:
        raise LogError("the log's amounts are too large to sum in 64-bit integers")
    currencies = sorted({names.currency.names[code] for code in np.unique(rows.currency[placed]).tolist()})
    if len(currencies) > 1:
        raise LogError(f"the replay sums money in one currency; this log has {', '.join(currencies)}")
    lanes, lane = _lanes(rows, placed, names, settings)
    trim, first_of_trim = _by_first_sight(rows.trim[placed].astype(np.int64), len(names.trim.names))
    demands = events.of_kind(DEMANDED)
    demands = demands[rows.detail[at[demands]] == _BALANCE]
    demands = demands[_firsts(events.orders.group[demands])]  # each order's first
    cancels, deliveries = events.of_kind(CANCELLED), events.of_kind(DELIVERED)
    refunds, transfers = events.of_kind(REFUNDED), events.of_kind(TRANSFERRED)
    received = events.of_kind(RECEIVED)
    reason = np.zeros(len(placed), dtype=np.int32)
    reason[events.order[cancels]] = rows.detail[at[cancels]] + 1
    payments, completed, prepaid = _payments(events, rows)
    by_line = refunds[np.argsort(at[refunds])]
    return OrderLog(
        order_id=_texts(rows.order[placed]), lanes=lanes, lane=lane.astype(np.int32),
        trims=tuple(names.trim.names[code] for code in rows.trim[placed][first_of_trim].tolist()),
        trim=trim.astype(np.int32), trim_rank=rows.trim_rank[placed].astype(np.int64),
        currency=currencies[0] if currencies else "", list_price=rows.minor[placed], deposit=rows.deposit[placed],
        placed_us=rows.when[placed], entered_us=rows.at[placed],
        demand_us=events.per_order(demands, rows.at[at[demands]]),
        due_us=events.per_order(demands, rows.when[at[demands]]),
        received=events.total(received, rows.minor[at[received]]),
        fully_paid_us=events.per_order(completed, rows.at[at[completed]]),
        prepaid_us=events.per_order(prepaid, rows.at[at[prepaid]]),
        delivered_us=events.per_order(deliveries, rows.when[at[deliveries]]),
        delivered_entered_us=events.per_order(deliveries, rows.at[at[deliveries]]),
        cancelled_us=events.per_order(cancels, rows.at[at[cancels]]), reason=reason,
        refund_due=np.where(reason > 0, events.per_order(cancels, rows.minor[at[cancels]]), 0),
        refunded=events.total(refunds, rows.minor[at[refunds]]),
        transfers=events.total(transfers, np.ones(len(transfers), dtype=np.int64)).astype(np.int32),
        payments=payments,
        refunds=Movements(events.order[by_line], rows.at[at[by_line]], rows.minor[at[by_line]]),
        start_us=int(np.min(rows.at, where=applied, initial=_LATEST)) if applied.any() else NEVER,
        end_us=int(np.max(rows.at, where=applied, initial=NEVER)) if applied.any() else NEVER,
        report=report, plans=plans,
    )


def _payments(events: _Applied, rows: Rows) -> tuple[Payments, Indices, Indices]:
    """Every payment, by time (then order, what answered a demand first, log order); and the
    payments that completed their order's price, and those of them nothing was demanded for."""
    money = events.of_kind(DEMANDED, RECEIVED)
    minor, paying = rows.minor[events.at[money]], events.kind[money] == RECEIVED
    demanded = events.orders.running(money, np.where(paying, 0, minor))[paying]
    received = events.orders.running(money, np.where(paying, minor, 0))[paying]
    paid, amount = money[paying], minor[paying]
    voluntary = demanded <= received  # nothing demanded was outstanding
    order, time = events.order[paid], rows.at[events.at[paid]]
    price, before = rows.minor[events.placed][order], rows.deposit[events.placed][order] + received
    completes = (before < price) & (price <= before + amount)
    by_time = np.argsort(events.at[paid])  # log order; if times rise strictly in it, no tie is left to break
    if np.any(time[by_time][1:] <= time[by_time][:-1]):
        by_time = np.lexsort((order * 2 + voluntary, time))  # stable: log order on a tie
    payments = Payments(order[by_time], time[by_time], amount[by_time], voluntary[by_time])
    return payments, paid[completes], paid[completes & voluntary]


def _lanes(rows: Rows, placed: Indices, names: Names, settings: BankSettings) -> tuple[tuple[str, ...], I64]:
    """The lanes' names by first sight, and each order's lane."""
    models, trims = names.model.names, names.trim.names
    key = rows.model[placed].astype(np.int64)
    if settings.lane_by == "model_trim":
        key = key * len(trims) + rows.trim[placed]
    lane, first = _by_first_sight(key, len(models) * max(len(trims), 1))
    seen = key[first].tolist()
    if settings.lane_by == "model":
        return tuple(models[k] for k in seen), lane
    return tuple(f"{models[k // len(trims)]}/{trims[k % len(trims)]}" for k in seen), lane


def _by_first_sight(keys: I64, bound: int) -> tuple[I64, Indices]:
    """Codes 0, 1, ... for the distinct keys (each in [0, bound)) in order of first appearance; and
    where each first appears."""
    first = np.full(bound, len(keys), dtype=np.int64)
    np.minimum.at(first, keys, np.arange(len(keys)))
    seen = np.flatnonzero(first < len(keys))
    seen = seen[np.argsort(first[seen])]
    code = np.empty(bound, dtype=np.int64)
    code[seen] = np.arange(len(seen))
    return code[keys], first[seen]


def _firsts(groups: Indices) -> Flags:
    """In a run of group numbers where equal ones are adjacent, where each group first appears."""
    first = np.ones(len(groups), dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    return first


def _texts(words: Words) -> list[str]:
    """Zero-padded ASCII texts held as 64-bit words, as strings (numpy's bytes drop the padding)."""
    packed = words.view(f"S{8 * words.shape[1]}").ravel().tolist()
    return b"\n".join(packed).decode("ascii").split("\n") if packed else []
