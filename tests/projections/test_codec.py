"""Decoding: every event type round-trips; every bad input is a rejection naming field and rule."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orderbank.projections.codec import MAX_EVENT_BYTES, Reason, Rejection, decode, encode
from orderbank.projections.events import SCHEMA_VERSION, Envelope, OrderPlaced
from tests.support import factories as f

ALL_EVENTS: list[Envelope] = [
    f.placed("A-1"),
    f.demanded("A-1", 2, 1, 24_500_000),
    f.received("A-1", 3, 2, 24_500_000),
    f.cancelled("A-1", 4, 3, refund=500_000),
    f.refunded("A-1", 5, 4, 500_000),
    f.delivered("A-1", 4, 3),
    f.transferred("A-1", 2, 1),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.__class__.__name__)
def test_every_event_type_round_trips(event: Envelope) -> None:
    raw = encode(event)
    assert decode(raw) == event
    assert orjson.loads(raw)["type"] == event.__class__.__name__


def good_doc() -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode(f.placed("A-1")))
    return doc


def rejected(doc: Any) -> Rejection:
    result = decode(orjson.dumps(doc))
    assert isinstance(result, Rejection), result
    return result


def test_malformed_json() -> None:
    result = decode(b'{"type": "OrderPlaced",')
    assert isinstance(result, Rejection)
    assert result.reason is Reason.MALFORMED_JSON


def test_not_an_object() -> None:
    assert rejected([1, 2]).reason is Reason.NOT_AN_OBJECT


def test_unknown_type_is_named() -> None:
    result = rejected({**good_doc(), "type": "OrderTeleported"})
    assert (result.reason, result.field) == (Reason.UNKNOWN_TYPE, "type")
    assert "OrderTeleported" in result.message
    assert result.order_id == "A-1"


def test_missing_type() -> None:
    doc = good_doc()
    del doc["type"]
    assert rejected(doc).reason is Reason.UNKNOWN_TYPE


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("seq",), "one", "int_type"),
        (("seq",), 0, "greater_than_equal"),
        (("list_price", "minor"), -1, "greater_than_equal"),
        (("deposit", "minor"), 1.5, "int_type"),
        # The schema's types are the law: no coercion of strings, floats, booleans or epoch numbers.
        (("seq",), "2", "int_type"),
        (("seq",), 2.0, "int_type"),
        (("seq",), 1_000_001, "less_than_equal"),
        (("trim_rank",), False, "int_type"),
        (("deposit", "minor"), True, "int_type"),
        (("deposit", "minor"), "1_000", "int_type"),
        (("deposit", "minor"), 10**12 + 1, "less_than_equal"),
        (("list_price", "minor"), 2**64 - 1, "less_than_equal"),
        (("occurred_at",), 1751018400, "iso_time"),
        (("schema_version",), "2", "int>=1"),
        (("list_price", "currency"), "yuan", "string_pattern_mismatch"),
        (("placed_at",), "2025-06-26T14:00:00", "timezone_aware"),
        (("occurred_at",), "yesterday", "datetime_from_date_parsing"),
        (("occurred_at",), "0001-01-01T00:00:00+01:00", "value_error"),  # year 0 in UTC: once a crash
        (("event_id",), "not-a-uuid", "uuid_parsing"),
        (("order_id",), "", "string_too_short"),
        (("channel",), "fax", "literal_error"),
        (("surprise",), 1, "extra_forbidden"),
    ],
)
def test_invalid_field_names_field_and_rule(path: tuple[str, ...], value: Any, rule: str) -> None:
    doc = good_doc()
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    result = rejected(doc)
    assert result.reason is Reason.INVALID_FIELD
    assert result.field == ".".join(path)
    assert result.rule == rule
    assert result.field in result.message


def test_missing_field() -> None:
    doc = good_doc()
    del doc["customer_id"]
    result = rejected(doc)
    assert (result.field, result.rule) == ("customer_id", "missing")


def test_too_large() -> None:
    doc = {**good_doc(), "customer_id": "x" * MAX_EVENT_BYTES}
    result = decode(orjson.dumps(doc))
    assert isinstance(result, Rejection)
    assert result.reason is Reason.TOO_LARGE


def test_times_are_normalised_to_utc() -> None:
    doc = {**good_doc(), "placed_at": "2025-06-26T22:00:00+08:00"}
    event = decode(orjson.dumps(doc))
    assert isinstance(event, OrderPlaced)
    assert event.placed_at.utcoffset() is not None and event.placed_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.placed_at.hour == 14


def test_future_schema_version_is_rejected_not_misread() -> None:
    result = rejected({**good_doc(), "schema_version": SCHEMA_VERSION + 1})
    assert (result.reason, result.field) == (Reason.UNSUPPORTED_VERSION, "schema_version")


@pytest.mark.parametrize("version", [0, -1, "2", True])
def test_bad_schema_version(version: Any) -> None:
    assert rejected({**good_doc(), "schema_version": version}).field == "schema_version"


def test_version_1_is_upcast() -> None:
    v1 = {"type": "OrderPlaced", "event_id": str(f.eid("A-1", 1)), "order_id": "A-1", "seq": 1,
          "occurred_at": "2025-06-26T14:00:00Z", "schema_version": 1, "customer_id": "c1", "model": "YU7",
          "trim": "Max", "currency": "CNY", "list_price_minor": 32_990_000, "deposit_minor": 500_000,
          "placed_at": "2025-06-26T14:00:00Z"}
    event = decode(orjson.dumps(v1))
    assert isinstance(event, OrderPlaced)
    assert (event.list_price.minor, event.deposit.minor, event.list_price.currency) == (32_990_000, 500_000, "CNY")
    assert (event.trim_rank, event.schema_version) == (0, SCHEMA_VERSION)
    v1_payment = {"type": "PaymentReceived", "event_id": str(f.eid("A-1", 2)), "order_id": "A-1", "seq": 2,
                  "occurred_at": "2025-06-27T14:00:00Z", "schema_version": 1, "currency": "CNY",
                  "amount_minor": 100}
    payment = decode(orjson.dumps(v1_payment))
    assert not isinstance(payment, Rejection)
    assert payment == f.received("A-1", 2, 1, 100).model_copy(update={"event_id": payment.event_id})
