"""The canonical shapes of the events as msgspec Structs: what the loader's fast path decodes.

msgspec checks in C, a block of lines at a time, most of what the pydantic models in
`orderbank.projections.events` check: JSON types without coercion, every key present and no other, lengths,
integer ranges and the literal values. What it cannot check as cheaply (UUIDs, timestamps, the
order id, currency and VIN patterns) `orderbank.replay.decode` checks with numpy. A line failing either goes
to `orderbank.projections.codec.decode`, so the fast path accepts only lines the exact path accepts, with the same
values. Optional fields the encoder leaves out (correlation_id, causation_id) and defaults are not
part of the canonical shape: lines using them take the exact path.

A field the loader reads alike in several event types has one name in all of them: `money` (the
list price, amount or refund) and `when` (placed_at, due_at or delivered_at). An event without one
has a class-level placeholder, so a column is read from every event of a block in one pass.

The shapes are generic in the type of a currency code: any three characters (`DECODER`), or, once
a log has shown it uses one currency, exactly that one (`decoder_for`), so msgspec checks every
amount's currency and no column of currencies needs reading.

A production plan is no order's event: the fast path does not decode it (a block holding one is read
a line at a time, and the plan line by `orderbank.projections.codec`), its envelope joins the columns
in `ProductionPlanned`'s shape so that the lifecycle sees its stream id, seq and event id, and the
loader keeps the event itself for the forecast.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import msgspec
import numpy as np

from orderbank.projections import events
from orderbank.projections.events import EVENT_TYPES, SCHEMA_VERSION, Event, type_name
from orderbank.projections.events import CancelReason as CancelReason  # the literals of the shapes' fields
from orderbank.projections.events import Channel as Channel
from orderbank.projections.events import Purpose as Purpose

INT64_MAX = 2**63 - 1
Minor = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Time = Annotated[str, msgspec.Meta(min_length=20, max_length=27)]
"""A timestamp's text; `orderbank.replay.timestamps` checks its form (20 or 27 characters, UTC)."""
Code = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
"""Any currency code's text; `orderbank.replay.decode` checks it is three capitals."""
PLACED, DEMANDED, RECEIVED, CANCELLED, REFUNDED, DELIVERED, TRANSFERRED, PLANNED = map(EVENT_TYPES.index, (
    events.OrderPlaced, events.PaymentDemanded, events.PaymentReceived, events.OrderCancelled, events.RefundPaid,
    events.VehicleDelivered, events.OrderTransferred, events.ProductionPlanned))
"""Each event type's code (`Shape.kind`): its index in `EVENT_TYPES`, and in `SHAPES`."""
MONEY_FIELDS = tuple(dict.fromkeys(name for model in EVENT_TYPES for name, info in model.model_fields.items()
                                   if info.annotation is events.Money))
"""The names of the events' amounts."""
HAS_MONEY = np.array([any(info.annotation is events.Money for info in model.model_fields.values())
                      for model in EVENT_TYPES])
"""By code: whether the event carries an amount (its shape a `money`)."""
C = TypeVar("C")


class Money(msgspec.Struct, Generic[C], forbid_unknown_fields=True, gc=False):
    minor: Minor
    currency: C


NO_MONEY: Money[str] = Money(0, "")
"""The `money` of an event that has none; no decoded currency is empty, so it never passes for one."""
NO_TIME = "1970-01-01T00:00:00.000000Z"
"""The `when` of an event that has none."""


class Shape(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, gc=False):
    """The envelope: the fields every event carries (the tag `type` is the model's)."""

    kind: ClassVar[int]
    event_id: Annotated[str, msgspec.Meta(min_length=36, max_length=36)]
    order_id: Text
    seq: Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
    occurred_at: Time
    schema_version: Annotated[int, msgspec.Meta(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)]


class OrderPlaced(Shape, Generic[C], tag=type_name(events.OrderPlaced)):
    kind: ClassVar[int] = PLACED
    customer_id: Text
    model: Text
    trim: Text
    trim_rank: Annotated[int, msgspec.Meta(ge=0, le=100)]
    money: Money[C] = msgspec.field(name="list_price")
    deposit: Money[C]
    when: Time = msgspec.field(name="placed_at")
    channel: Channel


class PaymentDemanded(Shape, Generic[C], tag=type_name(events.PaymentDemanded)):
    kind: ClassVar[int] = DEMANDED
    money: Money[C] = msgspec.field(name="amount")
    when: Time = msgspec.field(name="due_at")
    purpose: Purpose


class PaymentReceived(Shape, Generic[C], tag=type_name(events.PaymentReceived)):
    kind: ClassVar[int] = RECEIVED
    when: ClassVar[str] = NO_TIME
    money: Money[C] = msgspec.field(name="amount")


class OrderCancelled(Shape, Generic[C], tag=type_name(events.OrderCancelled)):
    kind: ClassVar[int] = CANCELLED
    when: ClassVar[str] = NO_TIME
    reason: CancelReason
    money: Money[C] = msgspec.field(name="refund")


class RefundPaid(Shape, Generic[C], tag=type_name(events.RefundPaid)):
    kind: ClassVar[int] = REFUNDED
    when: ClassVar[str] = NO_TIME
    money: Money[C] = msgspec.field(name="amount")


class VehicleDelivered(Shape, tag=type_name(events.VehicleDelivered)):
    kind: ClassVar[int] = DELIVERED
    money: ClassVar[Money[str]] = NO_MONEY
    when: Time = msgspec.field(name="delivered_at")
    vin: Annotated[str, msgspec.Meta(min_length=17, max_length=17)]


class OrderTransferred(Shape, tag=type_name(events.OrderTransferred)):
    kind: ClassVar[int] = TRANSFERRED
    money: ClassVar[Money[str]] = NO_MONEY
    when: ClassVar[str] = NO_TIME
    new_customer_id: Text


class PlanStep(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    starts_at: Time
    cars_per_day: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class ProductionPlanned(Shape, tag=type_name(events.ProductionPlanned)):
    """Never decoded by the fast path (see the module docstring): the shape an exact-path plan takes."""

    kind: ClassVar[int] = PLANNED
    money: ClassVar[Money[str]] = NO_MONEY
    when: ClassVar[str] = NO_TIME
    model: Text
    schedule: list[PlanStep]
    trim: Text | None = None
    delivery_lead_days: Annotated[int, msgspec.Meta(ge=0, le=365)] | None = None


SHAPES: tuple[type[Shape], ...] = tuple(sorted((
    OrderPlaced, PaymentDemanded, PaymentReceived, OrderCancelled, RefundPaid, VehicleDelivered, OrderTransferred,
    ProductionPlanned), key=lambda shape: shape.kind))


def _shapes(currency: Any) -> Any:
    """The union of the orders' seven shapes with this currency type (tagged by `type`)."""
    return (OrderPlaced[currency] | PaymentDemanded[currency] | PaymentReceived[currency]
            | OrderCancelled[currency] | RefundPaid[currency] | VehicleDelivered | OrderTransferred)


AnyShape = _shapes(Code)
DECODER = msgspec.json.Decoder(AnyShape)
"""Decodes any canonical order event."""
_EXACT = AnyShape | ProductionPlanned


@cache
def decoder_for(currency: str) -> msgspec.json.Decoder[Shape]:
    """Decodes a canonical event whose amounts are all in `currency` (any other fails to decode)."""
    return msgspec.json.Decoder(_shapes(Literal.__getitem__(currency)))


_OPTIONAL = {"correlation_id", "causation_id"}


def shape_of(event: Event) -> Shape:
    """A validated event in its canonical shape (how the exact path's events join the columns).
    A seq or amount beyond int64 is cut to INT64_MAX: such a seq is never an order's next, so the
    order is folded event by event from the event itself; such an amount, applied, makes the sums
    overflow, which the loader reports."""
    doc = event.model_dump(mode="json", exclude=_OPTIONAL)
    doc["seq"] = min(doc["seq"], INT64_MAX)
    for name in MONEY_FIELDS:
        if name in doc:
            doc[name]["minor"] = min(doc[name]["minor"], INT64_MAX)
    shape: Shape = msgspec.convert(doc, _EXACT)
    return shape
