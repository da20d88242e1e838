"""The event model: what happened to an order, as immutable pydantic v2 models.

Every event carries the same envelope (event_id, type, order_id, seq, occurred_at,
schema_version, correlation/causation ids) followed by its own facts. Money is an integer
amount in minor units with an ISO 4217 currency code; every time is an aware UTC datetime.
Most streams are orders; a maker's production plans are a stream of their own (`ProductionPlanned`,
e.g. order_id "plan:YU7"), which never becomes an order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from orderbank.projections.errors import LogError

SCHEMA_VERSION = 2
"""The version this code writes. Older versions are upcast on decode (orderbank.projections.codec)."""

MAX_MINOR = 10**12
"""Largest amount of one event, in minor units (10 billion CNY). With at most MAX_SEQ events an order's
sums stay below 10^18, inside int64, which the replay lab's columns use."""
MAX_SEQ = 1_000_000
"""Most events one order may have."""

# The schema's types are the law: an integer is a JSON integer (not "2", 2.0 or true), a time an ISO 8601
# string; pydantic's lax mode would coerce all of those, so every integer is strict and times are checked.
Count = Annotated[int, Strict()]

OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
CustomerId = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
LeadDays = Annotated[int, Strict(), Field(ge=0, le=365, description="days from a car's allocation to its handover")]
Channel = Literal["app", "web", "store", "dealer"]
Purpose = Literal["deposit", "balance", "fee"]
CancelReason = Literal["customer", "balance_not_paid", "maker", "fraud"]


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise LogError("the time in UTC is outside years 1-9999") from None


def _iso_text(value: object) -> object:
    if not isinstance(value, str | datetime):
        raise PydanticCustomError("iso_time", "a time is an ISO 8601 string with its offset, e.g. 2025-06-26T14:00:00Z")
    return value


UtcTime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_to_utc)]


class Money(BaseModel):
    """An amount in integer minor units (fen, cents) of one currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    minor: Count = Field(ge=0, le=MAX_MINOR, description="amount in minor units, never negative, at most 10^12")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")


class Envelope(BaseModel):
    """Fields every event carries. order_id is the stream id and the Kafka key: an order's id, or a plan stream's."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_id: UUID
    order_id: OrderId
    seq: Count = Field(ge=1, le=MAX_SEQ, description="1, 2, ... per order; a gap is rejected")
    occurred_at: UtcTime
    schema_version: Count = Field(default=SCHEMA_VERSION, ge=1)
    correlation_id: UUID | None = None
    causation_id: UUID | None = None


class OrderPlaced(Envelope):
    """A customer reserved a car: the order enters its lane's queue."""

    type: Literal["OrderPlaced"] = "OrderPlaced"
    customer_id: CustomerId
    model: Name
    trim: Name
    trim_rank: Count = Field(ge=0, le=100, description="margin rank of the trim, 0 = base")
    list_price: Money
    deposit: Money
    placed_at: UtcTime
    channel: Channel = "app"


class PaymentDemanded(Envelope):
    """The maker asked the customer to pay `amount` by `due_at`."""

    type: Literal["PaymentDemanded"] = "PaymentDemanded"
    amount: Money
    due_at: UtcTime
    purpose: Purpose = "balance"


class PaymentReceived(Envelope):
    """Money arrived from the customer for this order."""

    type: Literal["PaymentReceived"] = "PaymentReceived"
    amount: Money


class OrderCancelled(Envelope):
    """The order left the queue without a car; `refund` is what the customer is owed back."""

    type: Literal["OrderCancelled"] = "OrderCancelled"
    reason: CancelReason = "customer"
    refund: Money


class RefundPaid(Envelope):
    """Part or all of a cancelled order's refund was paid out."""

    type: Literal["RefundPaid"] = "RefundPaid"
    amount: Money


class VehicleDelivered(Envelope):
    """The car was handed over: the order leaves the queue and its cash is realised."""

    type: Literal["VehicleDelivered"] = "VehicleDelivered"
    delivered_at: UtcTime
    vin: str = Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$", description="17-character VIN")


class OrderTransferred(Envelope):
    """The slot changed hands (the seed's scalpers); it keeps its place in the queue."""

    type: Literal["OrderTransferred"] = "OrderTransferred"
    new_customer_id: CustomerId


class PlanStep(BaseModel):
    """From `starts_at` on (until a later step starts), the maker builds `cars_per_day` cars a day."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    starts_at: UtcTime
    cars_per_day: Count = Field(ge=0, le=1_000_000)


class ProductionPlanned(Envelope):
    """The maker's production plan for a model (or one of its trims): cars a day from given dates.

    A plan stream (its own order_id, seqs 1, 2, ...) plans one model, or one trim of it, for good; each
    plan supersedes the stream's earlier ones. The steps may come in any order: each applies from its
    `starts_at` until the next later one starts, and no car is planned before the first.
    `delivery_lead_days` is the maker's word on how long a built car takes to reach its customer,
    used until the log has shown it."""

    type: Literal["ProductionPlanned"] = "ProductionPlanned"
    model: Name
    trim: Name | None = Field(None, description="the trim planned; none: the whole model")
    schedule: list[PlanStep] = Field(min_length=1, max_length=1000)
    delivery_lead_days: LeadDays | None = None


Event = Annotated[
    OrderPlaced
    | PaymentDemanded
    | PaymentReceived
    | OrderCancelled
    | RefundPaid
    | VehicleDelivered
    | OrderTransferred
    | ProductionPlanned,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[type[Envelope], ...] = (
    OrderPlaced,
    PaymentDemanded,
    PaymentReceived,
    OrderCancelled,
    RefundPaid,
    VehicleDelivered,
    OrderTransferred,
    ProductionPlanned,
)


def type_name(model: type[Envelope]) -> str:
    """An event model's `type` tag, the literal its events carry on the wire."""
    name: str = model.model_fields["type"].default
    return name
