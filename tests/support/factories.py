"""Small builders for events in tests: explicit facts, sensible defaults, deterministic ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from orderbank.projections.codec import Rejection
from orderbank.projections.events import (
    Money,
    OrderCancelled,
    OrderPlaced,
    OrderTransferred,
    PaymentDemanded,
    PaymentReceived,
    PlanStep,
    ProductionPlanned,
    RefundPaid,
    VehicleDelivered,
)

T0 = datetime(2025, 6, 26, 14, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def cny(minor: int) -> Money:
    return Money(minor=minor, currency="CNY")


def eid(order_id: str, seq: int, salt: str = "") -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{order_id}/{seq}/{salt}")


def envelope(order_id: str, seq: int, when: datetime) -> dict[str, Any]:
    return {"event_id": eid(order_id, seq), "order_id": order_id, "seq": seq, "occurred_at": when}


def placed(order_id: str, day: float = 0, *, trim: str = "Standard", rank: int = 0, price: int = 25_000_000,
           deposit: int = 500_000, model: str = "YU7", customer: str = "c1") -> OrderPlaced:
    when = at(day)
    return OrderPlaced(**envelope(order_id, 1, when), customer_id=customer, model=model, trim=trim,
                       trim_rank=rank, list_price=cny(price), deposit=cny(deposit), placed_at=when)


def demanded(order_id: str, seq: int, day: float, amount: int, due_days: float = 7) -> PaymentDemanded:
    return PaymentDemanded(**envelope(order_id, seq, at(day)), amount=cny(amount), due_at=at(day + due_days))


def received(order_id: str, seq: int, day: float, amount: int) -> PaymentReceived:
    return PaymentReceived(**envelope(order_id, seq, at(day)), amount=cny(amount))


def cancelled(order_id: str, seq: int, day: float, refund: int = 0, reason: str = "customer") -> OrderCancelled:
    return OrderCancelled(**envelope(order_id, seq, at(day)), refund=cny(refund), reason=reason)


def refunded(order_id: str, seq: int, day: float, amount: int) -> RefundPaid:
    return RefundPaid(**envelope(order_id, seq, at(day)), amount=cny(amount))


def delivered(order_id: str, seq: int, day: float, vin: str = "LXMCAR00000000001") -> VehicleDelivered:
    return VehicleDelivered(**envelope(order_id, seq, at(day)), delivered_at=at(day), vin=vin)


def transferred(order_id: str, seq: int, day: float, to: str = "c2") -> OrderTransferred:
    return OrderTransferred(**envelope(order_id, seq, at(day)), new_customer_id=to)


def planned(stream: str, seq: int, day: float, *steps: tuple[float, int], model: str = "YU7",
            trim: str | None = None, lead_days: int | None = 14) -> ProductionPlanned:
    """A plan declared on `day`: (first day, cars a day) steps."""
    return ProductionPlanned(**envelope(stream, seq, at(day)), model=model, trim=trim, delivery_lead_days=lead_days,
                             schedule=[PlanStep(starts_at=at(first), cars_per_day=cars) for first, cars in steps])


def values_of(decoded: Any) -> object:
    """What a reducer reads of a decoded event, comparable whether it is a model or its Struct
    (orderbank.projections.structs): the type and every field's value, money as (minor, currency); a rejection as is."""
    if isinstance(decoded, Rejection):
        return decoded
    kind = type(decoded)
    names = getattr(kind, "__struct_fields__", None) or [name for name in kind.model_fields if name != "type"]
    values = [getattr(decoded, name) for name in names]
    return decoded.type, sorted(zip(names, [_plain(v) for v in values], strict=True))


def _plain(value: Any) -> object:
    """Money as (minor, currency), a list's objects (a plan's steps) as their fields' values, the rest as is."""
    if hasattr(value, "minor"):
        return value.minor, value.currency
    if isinstance(value, list):
        return [tuple(_plain(getattr(item, name)) for name in sorted(
            getattr(type(item), "__struct_fields__", None) or type(item).model_fields)) for item in value]
    return value
