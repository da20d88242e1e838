"""The events as msgspec Structs, derived from the pydantic models of projections/events.py: the fold's fast path.

msgspec validates a batch of events in C at about twice the speed of the models' own validation,
and a Struct costs a fraction of a model to build; a shard spends more on decoding than on folding
otherwise. The Structs are made from the models' fields when this module is imported, so there is
one definition of the events: the same field names, defaults, lengths, ranges, patterns and
literal values, and values of the same types (UUID, aware datetime, Money with minor/currency).
The reducers read events through attributes and `event.type` only, so they fold either alike.

Where the two libraries differ, the fast path leaves the verdict to the models (orderbank.projections.codec
sends those events through them): msgspec rounds fractions of a second past six digits where
pydantic truncates; it reads integers of any size where the models' JSON reader (orjson) reads
those past 64 bits as floats, so the fast path takes int64 only; it keeps a timestamp's offset
where the models convert it to UTC (and reject one whose UTC form leaves years 1-9999); and it
reads no schema version but its own. tests/projections/test_structs.py checks, over generated and mutated
events, that whatever the fast path accepts the models accept with equal values.
"""

from __future__ import annotations

import types
import uuid
from datetime import UTC, datetime
from functools import cache
from operator import attrgetter
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AwareDatetime, BaseModel, Strict
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from orderbank.projections.events import EVENT_TYPES

TIME = Annotated[datetime, msgspec.Meta(tz=True)]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _pattern(rust: str) -> str:
    """A pydantic (Rust regex) pattern for Python's `re.search`, which msgspec uses: there `$` also
    matches before a final newline, `\\Z` only at the end, as `$` does in Rust."""
    return rust[:-1] + r"\Z" if rust.endswith("$") and not rust.endswith(r"\$") else rust


def _constraints(info: FieldInfo) -> dict[str, Any]:
    return _rules(info.metadata, info.annotation)


def _rules(metadata: list[Any], annotation: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, annotated_types.MinLen):
            out["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            out["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge):
            out["ge"] = item.ge
        elif isinstance(item, annotated_types.Le):
            out["le"] = item.le
        elif getattr(item, "pattern", None) is not None:
            out["pattern"] = _pattern(item.pattern)
        elif isinstance(item, FieldInfo):  # the rules of an Annotated type inside a union (`Name | None`)
            out.update(_rules(item.metadata, annotation))
        elif annotation is AwareDatetime:
            continue  # the UTC conversion: the fast path keeps the offset (see the module docstring)
        elif isinstance(item, Strict):
            continue  # msgspec takes no "2", 2.0 or true for an integer either
        else:
            raise TypeError(f"no msgspec equivalent for {item!r}")
    return out


def _type(annotation: Any, checks: bool = True) -> Any:
    """The msgspec type of a model field's annotation (constraints apart; those inside it too without `checks`)."""
    if annotation is AwareDatetime:
        return TIME
    if annotation in (str, int, uuid.UUID, type(None)) or get_origin(annotation) is Literal:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return struct_of(annotation, checks)
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        return Annotated[_type(base), msgspec.Meta(**_rules(metadata, base))] if checks else _type(base, checks)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return list[_type(item, checks)]  # type: ignore[misc]  # built at run time
    if get_origin(annotation) in (Union, types.UnionType):
        return Union[tuple(_type(arg, checks) for arg in get_args(annotation))]  # noqa: UP007  # built from a tuple
    raise TypeError(f"no msgspec equivalent for {annotation!r}")


def _field(name: str, info: FieldInfo, checks: bool) -> tuple[Any, ...]:
    kind, rules = _type(info.annotation, checks), _constraints(info) if checks else {}
    if kind is int and checks:  # within int64: msgspec checks no wider bounds, and the models (see above) none as wide
        rules["ge"] = max(rules.get("ge", INT64_MIN), INT64_MIN)
        rules["le"] = min(rules.get("le", INT64_MAX), INT64_MAX)
    kind = Annotated[kind, msgspec.Meta(**rules)] if rules else kind
    return (name, kind) if info.default is PydanticUndefined else (name, kind, info.default)


@cache
def struct_of(model: type[BaseModel], checks: bool = True) -> type[msgspec.Struct]:
    """The Struct with the model's fields. An event's tag (`type`) is also a class attribute, as
    it is a field of the model. Without `checks`, none of the fields' constraints (lengths, ranges,
    patterns, unknown fields): it reads text that the checked Struct accepted to the same values, about
    twice as fast."""
    tag = model.model_fields["type"].default if "type" in model.model_fields else None
    fields = [_field(name, info, checks) for name, info in model.model_fields.items() if name != "type"]
    options: dict[str, Any] = {"tag_field": "type", "tag": tag, "namespace": {"type": tag}} if tag else {}
    return msgspec.defstruct(model.__name__, fields, kw_only=True, frozen=True, forbid_unknown_fields=checks,
                             gc=False, **options)


def _item_times(info: FieldInfo) -> tuple[str, ...]:
    if get_origin(info.annotation) is not list:
        return ()
    (item,) = get_args(info.annotation)
    return tuple(name for name, field in item.model_fields.items() if field.annotation is AwareDatetime)


STRUCTS = tuple(struct_of(model) for model in EVENT_TYPES)
DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[STRUCTS])  # noqa: UP007
CHECKED_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(struct_of(model, checks=False) for model in EVENT_TYPES)])  # noqa: UP007
"""Reads events already checked by DECODER (orderbank.projections.codec.decode_checked)."""
TIMES = {struct: tuple(name for name, info in model.model_fields.items() if info.annotation is AwareDatetime)
         for struct, model in zip(STRUCTS, EVENT_TYPES, strict=True)}
"""The datetime fields of each Struct."""
NESTED_TIMES = {struct: tuple((name, _item_times(info)) for name, info in model.model_fields.items()
                              if _item_times(info))
                for struct, model in zip(STRUCTS, EVENT_TYPES, strict=True)}
"""The datetime fields of the objects in each Struct's lists (a plan's steps), by list."""
_ZONES = {struct: attrgetter(*(f"{name}.tzinfo" for name in names)) for struct, names in TIMES.items()}
"""Each Struct's time zones: a tuple, or the one zone of a Struct with one time (as `attrgetter` gives them)."""
_ALL_UTC = {struct: (UTC,) * len(names) if len(names) > 1 else UTC for struct, names in TIMES.items()}


def in_utc(event: Any) -> bool:
    """Whether every time of a decoded event is in UTC (the form orderbank.projections.codec.encode writes)."""
    kind = type(event)
    # Compared with `==` in one call (0.2 us an event, where a test of each with `is` took 0.7 us): msgspec decodes
    # every zero offset to the one UTC object, and no other offset compares equal to it, so `==` is `is` here.
    if _ZONES[kind](event) != _ALL_UTC[kind]:
        return False
    nested = NESTED_TIMES[kind]
    return not nested or all(getattr(item, name).tzinfo is UTC
                             for items, names in nested for item in getattr(event, items) for name in names)
