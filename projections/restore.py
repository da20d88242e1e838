"""Rebuild an OrderBank from its orders' current states, as a recovering stream worker must.

Every projection is a function of the orders and the plan streams alone (plus the clock): the queue
holds the open orders by policy key and the delivery times, and its forecast reads the orders' facts
and the plans; the pool sums each order's contribution, the cancellation rates count placements,
cancellations and deliveries. So the orders and plans of a changelog are enough to restore a bank that
then behaves exactly as if it had folded the events: `restore(orders, clock, plans=...)` equals
`fold(events)` for the events that produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from orderbank.projections.bank import BankSettings, OrderBank
from orderbank.projections.orders import Order, Status
from orderbank.projections.plans import PlanStream
from orderbank.projections.pool import NOTHING


def order_from_doc(doc: Mapping[str, Any]) -> Order:
    """An order from its JSON form as a JSON parser gives it (`msgspec.json.encode(order)` writes it)."""
    return msgspec.convert(doc, Order)


def restore(orders: Iterable[Order], clock_us: int, settings: BankSettings | None = None,
            taken: Iterable[tuple[int, str, int]] = (), rejected: Iterable[int] = (),
            plans: Iterable[PlanStream] = ()) -> OrderBank:
    """A bank holding `orders` and plan streams `plans` (taken over, not copied) at clock `clock_us`.

    `taken` are events that took their ids, as (event id's 128-bit int, order_id, seq), so another
    event carrying one is a conflict: the applied ones at least, whose redeliveries stay duplicates
    by id; given every event that reached the bank, in order, the restored bank judges ids as the
    fold does. `rejected` are the `rejection_id`s counted, so the same bad input is not counted
    again (`OrderBank.remember`).
    """
    bank = OrderBank(settings)
    for stream in plans:
        bank.plans[stream.stream_id] = stream
        bank.queue.planned(bank.settings.plan_lane(stream.model, stream.trim), stream, stream.plans[-1].declared_us)
    # In placement order, so queue ordinals come out as the fold computed them.
    for order in sorted(orders, key=lambda o: (o.placed_us, o.order_id)):
        bank.values.hold(order)
        bank.orders[order.order_id] = order
        bank.queue.add(order)  # inserts only open orders; ordinal and placement record for all
        bank.pool.after(order, NOTHING)
        bank.cancellations.placed(order)
        if order.status is Status.CANCELLED:
            assert order.closed_us is not None
            bank.cancellations.cancelled(order, order.closed_us)
        elif order.status is Status.DELIVERED:
            assert order.closed_us is not None
            bank.queue.lanes[order.lane].deliveries.add(order.closed_us)
            bank.cancellations.delivered(order)
    bank.now_us = clock_us
    bank.remember(taken, rejected)
    return bank
