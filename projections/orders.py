"""One order's state and its lifecycle: placed -> (payment demanded / paid)* -> delivered | cancelled.

`check(order, event)` is the state machine: it says whether an event may be applied to an
order (or to no order yet), as a `Rejection` with the rule broken, or None when legal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

import msgspec

from orderbank.projections.codec import Reason, Rejection
from orderbank.projections.events import Event, Money

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = _EPOCH.replace(tzinfo=None)
US_PER_DAY = 86_400_000_000


def micros(t: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact, sortable)."""
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def iso(us: int) -> str:
    """Microseconds since the epoch as ISO 8601 UTC text, e.g. '2025-06-26T14:00:00.557440Z'."""
    return f"{(_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat()}Z"


class Status(StrEnum):
    OPEN = "open"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Demand(msgspec.Struct, array_like=True, gc=False):
    amount: int
    due_us: int


class Order(msgspec.Struct, array_like=True, gc=False):
    """The fold's view of one order. Money in minor units of `currency`.

    A msgspec Struct: a worker holds hundreds of thousands of them, and writes one to the changelog
    on every change. Structs encode and decode several times faster than dataclasses, as JSON arrays
    (the fields in this order) half the size of objects, which the broker and the recovery read
    again; and, never part of a reference cycle, they stay out of the garbage collector's scans."""

    order_id: str
    customer_id: str
    model: str
    trim: str
    trim_rank: int
    lane: str
    currency: str
    list_price: int
    deposit: int
    placed_us: int
    cohort: str
    last_seq: int = 1
    status: Status = Status.OPEN
    received: int = 0
    demands: list[Demand] = msgspec.field(default_factory=list)
    demanded: int = 0  # the sum of the demands' amounts
    refund_due: int = 0
    refunded: int = 0
    transfers: int = 0
    ordinal: int = 0
    closed_us: int | None = None
    cancel_reason: str | None = None
    updated_us: int = 0  # the latest occurred_at among its applied events
    allocated_us: int | None = None  # occurred_at of its first balance demand: when a car was allocated to it
    paid_us: int | None = None  # when its payments first reached the list price

    @property
    def paid(self) -> int:
        """Everything the customer has paid: deposit plus later payments."""
        return self.deposit + self.received

    @property
    def fully_paid(self) -> bool:
        return self.paid >= self.list_price

    def demand(self, amount: int, due_us: int) -> None:
        self.demands.append(Demand(amount, due_us))
        self.demanded += amount

    @property
    def outstanding(self) -> int:
        """Demanded but not yet received (payments settle demands oldest first)."""
        return max(0, self.demanded - self.received) if self.status is Status.OPEN else 0

    def overdue(self, now_us: int) -> int:
        """The part of `outstanding` whose due date has passed at `now_us`."""
        if self.status is not Status.OPEN:
            return 0
        covered, late = self.received, 0
        for demand in self.demands:
            settled = min(covered, demand.amount)
            covered -= settled
            if demand.due_us < now_us:
                late += demand.amount - settled
        return late


def cohort_of(placed_us: int) -> str:
    """The ISO week (in UTC) an order was placed in, e.g. '2025-W26'."""
    return _week_of_day(placed_us // US_PER_DAY)


@cache
def _week_of_day(day: int) -> str:
    year, week, _ = (_NAIVE_EPOCH + timedelta(days=day)).isocalendar()
    return f"{year}-W{week:02d}"


def _money_of(event: Event) -> Money | None:
    match event.type:
        case "PaymentDemanded" | "PaymentReceived" | "RefundPaid":
            return event.amount
        case "OrderCancelled":
            return event.refund
    return None


def _reject(event: Event, reason: Reason, rule: str, message: str, field: str | None = None) -> Rejection:
    return Rejection(reason, rule, message, field, event.order_id, str(event.event_id))


def check(order: Order | None, event: Event) -> Rejection | None:
    """The lifecycle rule this event breaks for this order, or None if it may be applied.
    Duplicates (seq already applied) are the caller's business and never reach here.
    Events are told apart by `type` (not by class): the fast path's Structs are folded alike."""

    if order is None:
        if event.type == "OrderPlaced":
            if event.seq != 1:
                return _reject(event, Reason.SEQ_GAP, "first_seq_is_1", f"OrderPlaced must be seq 1, got {event.seq}",
                               "seq")
            if event.deposit.currency != event.list_price.currency:
                return _reject(event, Reason.CURRENCY_MISMATCH, "same_currency",
                               "deposit and list_price must share a currency", "deposit.currency")
            return None
        return _reject(event, Reason.UNKNOWN_ORDER, "order_placed_first",
                       f"{event.type} for order {event.order_id!r}, which was never placed", "order_id")
    if event.type == "OrderPlaced":
        return _reject(event, Reason.ILLEGAL_TRANSITION, "placed_once", f"order {order.order_id!r} is already placed")
    if event.seq != order.last_seq + 1:
        return _reject(event, Reason.SEQ_GAP, "seq_contiguous",
                       f"expected seq {order.last_seq + 1}, got {event.seq}", "seq")
    money = _money_of(event)
    if money is not None and money.currency != order.currency:
        return _reject(event, Reason.CURRENCY_MISMATCH, "order_currency",
                       f"order is in {order.currency}, event in {money.currency}", "amount.currency")
    if event.type == "RefundPaid":
        if order.status is not Status.CANCELLED:
            return _reject(event, Reason.ILLEGAL_TRANSITION, "refund_after_cancel",
                           f"refund on a {order.status.value} order")
        if event.amount.minor > order.refund_due - order.refunded:
            return _reject(event, Reason.ILLEGAL_TRANSITION, "refund_within_due",
                           f"refund {event.amount.minor} exceeds the {order.refund_due - order.refunded} still owed",
                           "amount.minor")
        return None
    if order.status is not Status.OPEN:
        return _reject(event, Reason.ILLEGAL_TRANSITION, "order_open",
                       f"{event.type} on a {order.status.value} order")
    if event.type == "OrderCancelled" and event.refund.minor > order.paid:
        return _reject(event, Reason.ILLEGAL_TRANSITION, "refund_within_paid",
                       f"refund {event.refund.minor} exceeds the {order.paid} paid", "refund.minor")
    return None
