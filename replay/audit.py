"""A log folded for people to look at (`orderbank serve LOG`): the bank as the stream would hold it, its
prepayment pool sampled at every midnight of the fold, and every order's own events, so that an order's
page can show its history and the dashboard the pool over time.

The events are kept as columns (order, kind, time, amount, due date): about 29 bytes an event, 32 MB for
the yu7 launch's 1.1 million; the position history needs no more (orderbank.projections.standing).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from orderbank.projections.bank import BankSettings, OrderBank
from orderbank.projections.events import Event
from orderbank.projections.orders import Order, micros
from orderbank.projections.standing import Happening
from orderbank.projections.trends import PoolSeries
from orderbank.replay.history import History, replay_history
from orderbank.replay.source import LineSource

KINDS = ("placed", "demanded", "paid", "cancelled", "refunded", "delivered", "transferred")
_KIND = dict(zip(("OrderPlaced", "PaymentDemanded", "PaymentReceived", "OrderCancelled", "RefundPaid",
                  "VehicleDelivered", "OrderTransferred"), range(len(KINDS)), strict=True))


@dataclass
class Events:
    """Every applied event as columns, told apart by the order's slot (its rank of first appearance)."""

    slots: dict[str, int] = field(default_factory=dict)
    order: array[int] = field(default_factory=lambda: array("i"))
    kind: array[int] = field(default_factory=lambda: array("b"))
    at_us: array[int] = field(default_factory=lambda: array("q"))
    amount: array[int] = field(default_factory=lambda: array("q"))
    due_us: array[int] = field(default_factory=lambda: array("q"))
    paid_us: dict[str, int] = field(default_factory=dict)  # when each fully paid order's full price arrived

    def add(self, bank: OrderBank, event: Event) -> None:
        order = bank.orders.get(event.order_id)
        if order is None:  # a plan stream's event: no order's history
            return
        order_id = order.order_id  # the bank's string: one copy per order
        slot = self.slots.setdefault(order_id, len(self.slots))
        amount, due = 0, 0
        match event.type:
            case "OrderPlaced":
                amount = event.deposit.minor
            case "PaymentDemanded":
                amount, due = event.amount.minor, micros(event.due_at)
            case "PaymentReceived" | "RefundPaid":
                amount = event.amount.minor
            case "OrderCancelled":
                amount = event.refund.minor
        self.order.append(slot)
        self.kind.append(_KIND[event.type])
        self.at_us.append(micros(event.occurred_at))
        self.amount.append(amount)
        self.due_us.append(due)
        if order_id not in self.paid_us and bank.orders[order_id].fully_paid:
            self.paid_us[order_id] = micros(event.occurred_at)

    def of(self, order_id: str) -> list[Happening]:
        """The order's applied events, in the order they were applied."""
        slot = self.slots.get(order_id)
        if slot is None:
            return []
        rows = np.flatnonzero(np.frombuffer(self.order, dtype=np.int32) == slot).tolist()
        return [Happening(KINDS[self.kind[i]], self.at_us[i], self.amount[i] if KINDS[self.kind[i]] not in
                          ("delivered", "transferred") else None, self.due_us[i] or None) for i in rows]

    def paid_at(self, order: Order) -> int | None:
        return self.paid_us.get(order.order_id)


@dataclass
class Audit:
    """What `fold_for_pages` keeps."""

    bank: OrderBank
    history: History
    pool: PoolSeries
    events: Events


class _Watch:
    def __init__(self) -> None:
        self.pool, self.events = PoolSeries(), Events()

    def midnight(self, bank: OrderBank, boundary_us: int) -> None:
        self.pool.sample([bank], boundary_us)

    def applied(self, bank: OrderBank, event: Event) -> None:
        self.events.add(bank, event)


def fold_for_pages(source: LineSource, settings: BankSettings | None = None,
                   progress: Callable[[int], None] | None = None, until_us: int | None = None) -> Audit:
    """Fold the log with the live reducer (up to `until_us`: what customers saw then), keeping what the pages
    show."""
    watch = _Watch()
    bank, history = replay_history(source, settings, progress, watch, until_us)
    if bank.now_us:
        watch.pool.sample([bank], bank.now_us)
    return Audit(bank, history, watch.pool, watch.events)
