"""The fold's fast path (projections/structs.py, codec.decode_batch) against the models: whatever it
accepts, the models accept with the same values; whatever it cannot vouch for goes to the models.

Hypothesis writes events the way a producer might (any valid value, times with other offsets and
precisions, ids in other spellings) and breaks them where msgspec and pydantic could disagree."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbank.projections import structs
from orderbank.projections.codec import decode, decode_batch, decode_checked, encode, fast_path
from orderbank.projections.events import EVENT_TYPES
from tests.support import factories as f
from tests.support.factories import values_of

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=64)
ORDER_ID = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
MINOR = st.integers(0, 2**63 - 1)
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30)),
                           timezone(timedelta(hours=23, minutes=59))])


@st.composite
def times(draw: st.DrawFn) -> str:
    """A timestamp as some producer might write it."""
    when = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    text = when.replace(tzinfo=draw(OFFSETS)).isoformat()
    style = draw(st.sampled_from(["as is", "Z", "lower", "space", "nanos", "millis"]))
    if style == "Z":
        text = text.replace("+00:00", "Z")
    elif style == "lower":
        text = text.replace("T", "t").replace("+00:00", "z")
    elif style == "space":
        text = text.replace("T", " ")
    elif style in ("nanos", "millis"):
        digits = draw(st.integers(7, 9)) if style == "nanos" else draw(st.integers(1, 5))
        head, _, zone = text[:19], text[19:], text[-6:]
        text = f"{head}.{draw(st.integers(0, 10**digits - 1)):0{digits}d}{zone}"
    return text


def uuids() -> st.SearchStrategy[str]:
    return st.uuids().flatmap(lambda u: st.sampled_from([str(u), u.hex, str(u).upper(), f"{{{u}}}", f"urn:uuid:{u}"]))


def money() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"minor": MINOR, "currency": st.sampled_from(["CNY", "EUR", "USD"])})


def envelope(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.just(kind), "event_id": uuids(), "order_id": ORDER_ID, "seq": st.integers(1, 2**63 - 1),
         "occurred_at": times()},
        optional={"schema_version": st.integers(1, 3), "correlation_id": uuids() | st.none(),
                  "causation_id": uuids() | st.none()})


BODIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "OrderPlaced": st.fixed_dictionaries(
        {"customer_id": TEXT, "model": TEXT, "trim": TEXT, "trim_rank": st.integers(0, 100), "list_price": money(),
         "deposit": money(), "placed_at": times()},
        optional={"channel": st.sampled_from(["app", "web", "store", "dealer"])}),
    "PaymentDemanded": st.fixed_dictionaries({"amount": money(), "due_at": times()},
                                             optional={"purpose": st.sampled_from(["deposit", "balance", "fee"])}),
    "PaymentReceived": st.fixed_dictionaries({"amount": money()}),
    "OrderCancelled": st.fixed_dictionaries(
        {"refund": money()}, optional={"reason": st.sampled_from(["customer", "balance_not_paid", "maker", "fraud"])}),
    "RefundPaid": st.fixed_dictionaries({"amount": money()}),
    "VehicleDelivered": st.fixed_dictionaries({"delivered_at": times(),
                                               "vin": st.from_regex(r"\A[A-HJ-NPR-Z0-9]{17}\Z")}),
    "OrderTransferred": st.fixed_dictionaries({"new_customer_id": TEXT}),
    "ProductionPlanned": st.fixed_dictionaries(
        {"model": TEXT, "schedule": st.lists(st.fixed_dictionaries(
            {"starts_at": times(), "cars_per_day": st.integers(0, 1_000_000)}), min_size=1, max_size=3)},
        optional={"trim": TEXT | st.none(), "delivery_lead_days": st.integers(0, 365) | st.none()}),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(BODIES)))
    return {**draw(envelope(kind)), **draw(BODIES[kind])}


BREAKS = ["none", "newline", "pretty", "duplicate key", "retype", "drop", "huge int", "float", "bool", "string int",
          "trailing newline in id", "escaped", "version"]


@st.composite
def raws(draw: st.DrawFn) -> bytes:
    """An event's JSON, possibly broken where msgspec and pydantic might read it differently."""
    doc = draw(events())
    how = draw(st.sampled_from(BREAKS))
    key = draw(st.sampled_from(sorted(doc)))
    if how == "retype":
        doc[key] = draw(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.just({}))
    elif how == "drop":
        del doc[key]
    elif how == "huge int":
        doc[draw(st.sampled_from(["seq", "trim_rank", "schema_version"]))] = 2**64 + draw(st.integers(0, 9))
    elif how == "float":
        doc["seq"] = float(doc["seq"] % 1000)
    elif how == "bool":
        doc["seq"] = True
    elif how == "string int":
        doc["seq"] = str(doc["seq"])
    elif how == "trailing newline in id":
        doc["order_id"] += "\n"
    elif how == "version":
        doc["schema_version"] = draw(st.sampled_from([0, 1, 2, 3, "2", None]))
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()  # ints past 64 bits too
    if how == "newline":
        raw = raw.replace(b",", b",\n", 1)
    elif how == "pretty":
        raw = json.dumps(doc, indent=2).encode()
    elif how == "duplicate key":
        again = json.dumps(draw(st.integers(0, 3) | st.text(max_size=3)))
        raw = raw[:-1] + f',"{key}":{again}}}'.encode()
    elif how == "escaped":
        raw = raw.replace(b'"type"', b'"\\u0074ype"')
    return raw


def test_the_structs_have_the_models_fields_defaults_and_tags() -> None:
    for model, struct in zip(EVENT_TYPES, structs.STRUCTS, strict=True):
        fields = {name: info for name, info in model.model_fields.items() if name != "type"}
        assert struct.__struct_fields__ == tuple(fields)
        assert vars(struct)["type"] == model.model_fields["type"].default == struct.__struct_config__.tag
        defaults = {field.name: field.default for field in msgspec.structs.fields(struct) if not field.required}
        assert defaults == {name: info.default for name, info in fields.items() if not info.is_required()}


def test_canonical_events_take_the_fast_path_with_the_models_values() -> None:
    good = [f.placed("N"), f.demanded("A", 2, 1, 100), f.received("A", 2, 1, 100), f.transferred("A", 2, 1),
            f.cancelled("A", 2, 1), f.delivered("A", 2, 1), f.refunded("B", 3, 2, 100)]
    fast = decode_batch([encode(event) for event in good])
    assert all(isinstance(event, structs.STRUCTS) for event in fast)
    assert [type(event).__name__ for event in fast] == [type(event).__name__ for event in good]
    assert [values_of(event) for event in fast] == [values_of(event) for event in good]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raws(), min_size=1, max_size=8))
def test_the_fast_path_decodes_or_rejects_as_the_models_do(batch: list[bytes]) -> None:
    assert [values_of(event) for event in decode_batch(batch)] == [values_of(decode(raw)) for raw in batch]


@settings(max_examples=300, deadline=None)
@given(events())
def test_a_time_the_fast_path_reads_is_the_instant_the_models_read(doc: dict[str, Any]) -> None:
    raw = orjson.dumps({**doc, "schema_version": 2})
    (fast,), exact = decode_batch([raw]), decode(raw)
    assert values_of(fast) == values_of(exact)
    if isinstance(fast, structs.STRUCTS):  # kept off the fast path: offsets, and more than six decimals
        assert fast.occurred_at.tzinfo is UTC and "." + "0" * 7 not in doc["occurred_at"]


def test_one_failing_raw_sends_only_itself_to_the_models() -> None:
    good = encode(f.placed("N"))
    batch = decode_batch([good, b'{"type":"OrderPlaced"}', good.replace(b"Z", b"+08:00"), good])
    assert [type(event).__module__ for event in batch] == [f"orderbank.projections.{name}"
                                                           for name in ("structs", "codec", "events", "structs")]
    assert values_of(batch[3]) == values_of(batch[0]) == values_of(f.placed("N"))


def test_an_offset_behind_an_escape_still_goes_to_the_models() -> None:
    good = encode(f.placed("N"))
    hidden = good.replace(b'Z"', b'\\u002b08:00"', 1)  # "+08:00", written as JSON may write it
    batch = decode_batch([good, hidden])
    assert [type(event).__module__ for event in batch] == ["orderbank.projections.structs",
                                                           "orderbank.projections.events"]
    assert values_of(batch[1]) == values_of(decode(hidden))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raws(), min_size=1, max_size=8))
def test_what_the_fast_path_checked_reads_again_unchecked_to_the_same_values(batch: list[bytes]) -> None:
    fast = [(raw, event) for raw, event in zip(batch, decode_batch(batch), strict=True) if fast_path(event)]
    again = decode_checked([raw for raw, _ in fast])
    assert [values_of(event) for event in again] == [values_of(event) for _, event in fast]
