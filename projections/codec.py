"""Bytes in, events out: decode JSON into typed events or typed rejections, never an exception.

`decode(raw)` returns an event or a `Rejection` naming the field and the rule that failed.
Older schema versions are upcast to the current one before validation; a version newer than
this code knows is rejected rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import msgspec
import orjson
from pydantic import TypeAdapter, ValidationError

from orderbank.projections import structs
from orderbank.projections.events import SCHEMA_VERSION, Envelope, Event

MAX_EVENT_BYTES = 64 * 1024
"""Largest encoded event accepted; real events are a few hundred bytes."""

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_LONG_FRACTION = re.compile(rb"\.[0-9]{7}")
"""Seven decimals of a second: msgspec rounds them to microseconds, the models truncate."""


class Reason(StrEnum):
    """Why an event was not applied. Each rejection carries one of these."""

    MALFORMED_JSON = "malformed_json"
    TOO_LARGE = "too_large"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_ORDER = "unknown_order"
    SEQ_GAP = "seq_gap"
    ILLEGAL_TRANSITION = "illegal_transition"
    CURRENCY_MISMATCH = "currency_mismatch"
    LANE_FULL = "lane_full"
    INTERNAL_ERROR = "internal_error"
    """Applying the event raised: a bug that some input found. The stream dead-letters the event with
    the exception's type and message and goes on without it (orderbank.engine.stream.shards)."""
    EVENT_ID_CONFLICT = "event_id_conflict"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that was not applied, and why. `field` is a dotted path when one field is at fault."""

    reason: Reason
    rule: str
    message: str
    field: str | None = None
    order_id: str | None = None
    event_id: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "reason": self.reason.value,
            "rule": self.rule,
            "field": self.field,
            "message": self.message,
            "order_id": self.order_id,
            "event_id": self.event_id,
        }


def encode(event: Envelope) -> bytes:
    """The canonical wire form of an event: compact JSON, None fields left out."""
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def decode(raw: bytes | str) -> Event | Rejection:
    """Parse and validate one event; a `Rejection` says exactly what is wrong."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(Reason.TOO_LARGE, "max_bytes", f"event is {len(raw)} bytes, limit is {MAX_EVENT_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(Reason.MALFORMED_JSON, "json", f"not valid JSON: {exc}")
    return decode_obj(doc)


def decode_batch(raws: Sequence[bytes]) -> list[Event | Rejection]:
    """`[decode(raw) for raw in raws]` for a fold, several times faster.

    The raws are decoded in one msgspec call into the events' Structs (orderbank.projections.structs), which the
    reducers fold exactly as they fold the models. Whatever the Structs leave to the models goes
    through `decode`: a raw that fails them or is not one plain line of JSON (so every line is one
    raw), a schema version to upcast, a time not in UTC or with more than six decimals. So an event
    is decoded to the same values, or rejected for the same reason, whichever way it goes."""
    plain = [i for i, raw in enumerate(raws)
             if len(raw) <= MAX_EVENT_BYTES and raw[:1] == b"{" and raw[-1:] == b"}" and b"\n" not in raw]
    lines = b"\n".join(raws[i] for i in plain)
    if _LONG_FRACTION.search(lines):
        plain = [i for i in plain if not _LONG_FRACTION.search(raws[i])]
        lines = b"\n".join(raws[i] for i in plain)
    try:
        fast: list[Any] = structs.DECODER.decode_lines(lines)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # one raw failed: the others one by one
        fast = [_decode_fast(raws[i]) for i in plain]
    if len(fast) != len(plain):  # a raw held several values ({...}{...}): each raw alone decides its own
        fast = [_decode_fast(raws[i]) for i in plain]
    out: list[Event | Rejection | None] = [None] * len(raws)
    for i, event in zip(plain, fast, strict=True):
        if event is not None and event.schema_version == SCHEMA_VERSION and structs.in_utc(event):
            # A Struct with the model's fields and values, which is all a reducer reads of an event.
            out[i] = cast(Event, event)
    return [decode(raws[i]) if result is None else result for i, result in enumerate(out)]


_FAST_PATH: frozenset[type] = frozenset(structs.STRUCTS)


def fast_path(event: Event | Rejection) -> bool:
    """Whether `decode_batch` decoded this event on its fast path: its raw, read again, decodes the same by
    `decode_checked`. (Its exact type, looked up in a set: `isinstance` against the eight Struct types took 4x as
    long, a per-event cost of the ingest.)"""
    return type(event) in _FAST_PATH


def decode_checked(raws: Sequence[bytes]) -> list[Event]:
    """The events of raws that `decode_batch` decoded on its fast path (`fast_path`) before, decoded again
    without checking what that checked (the Structs' constraints, the schema version, UTC): the same values at
    about twice the speed. The stream's shards read so what its ingest has checked. Raises
    `msgspec.DecodeError` when a raw is not such an event."""
    events: list[Event] = structs.CHECKED_DECODER.decode_lines(b"\n".join(raws))
    if len(events) != len(raws):
        raise msgspec.DecodeError(f"{len(raws)} raws held {len(events)} events")
    return events


def _decode_fast(raw: bytes) -> Any:
    try:
        return structs.DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # nesting past msgspec's depth: the models say
        return None


def decode_obj(doc: Any) -> Event | Rejection:
    """Validate an already-parsed JSON object (the replay's fast path shares this)."""
    if not isinstance(doc, dict):
        return Rejection(Reason.NOT_AN_OBJECT, "object", f"an event is a JSON object, got {type(doc).__name__}")
    ids = _ids(doc)
    version = doc.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return Rejection(Reason.INVALID_FIELD, "int>=1", "schema_version must be a positive integer",
                         "schema_version", *ids)
    if version > SCHEMA_VERSION:
        return Rejection(Reason.UNSUPPORTED_VERSION, f"schema_version<={SCHEMA_VERSION}",
                         f"schema_version {version} is newer than this reader ({SCHEMA_VERSION}); "
                         "upgrade orderbank to read it", "schema_version", *ids)
    if version < SCHEMA_VERSION:
        doc = upcast(doc)
    try:
        return _ADAPTER.validate_python(doc)
    except ValidationError as exc:
        return _rejection_from(exc, ids)


def _ids(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    order_id, event_id = doc.get("order_id"), doc.get("event_id")
    return (order_id if isinstance(order_id, str) else None,
            event_id if isinstance(event_id, str) else None)


def _rejection_from(exc: ValidationError, ids: tuple[str | None, str | None]) -> Rejection:
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = err.get("ctx", {}).get("tag")
        message = f"unknown event type {tag!r}" if tag is not None else "missing event type"
        return Rejection(Reason.UNKNOWN_TYPE, kind, message, "type", *ids)
    # The first loc element is the union tag; the rest is the path inside the event.
    field = ".".join(str(part) for part in err["loc"][1:]) or None
    return Rejection(Reason.INVALID_FIELD, kind, f"{field}: {err['msg']}", field, *ids)


_V1_MONEY = {
    "OrderPlaced": ("list_price", "deposit"),
    "PaymentDemanded": ("amount",),
    "PaymentReceived": ("amount",),
    "OrderCancelled": ("refund",),
    "RefundPaid": ("amount",),
}


def upcast(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a version-1 event to version 2.

    Version 1 wrote money flat, one `currency` per event and `<name>_minor` integers
    (`list_price_minor`, `deposit_minor`, `amount_minor`, `refund_minor`), and had no trim rank.
    """
    out = dict(doc)
    currency = out.pop("currency", None)
    for name in _V1_MONEY.get(str(out.get("type")), ()):
        if f"{name}_minor" in out:
            out[name] = {"minor": out.pop(f"{name}_minor"), "currency": currency}
    if out.get("type") == "OrderPlaced":
        out.setdefault("trim_rank", 0)
    out["schema_version"] = SCHEMA_VERSION
    return out
