"""The compiled block reader (native/, orderbank.replay.native): where it reads a block, it reads the same
rows as the pure-Python path; where it cannot vouch for a line, it leaves the block to that path."""

from __future__ import annotations

import os
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orderbank.replay.native as native
from orderbank.projections.events import EVENT_TYPES, type_name
from orderbank.replay.decode import BlockReader, ExactPath, decode_block, scan
from orderbank.replay.rows import Names, Rows
from orderbank.replay.shapes import CancelReason, Channel, OrderPlaced, Purpose, Text
from orderbank.replay.synth import generate, preset

COMPILED = native.COMPILED
needs_compiled = pytest.mark.skipif(COMPILED is None, reason="the compiled reader is not built here (no cargo)")


def test_the_compiled_reader_is_built_wherever_cargo_is() -> None:
    cargo = shutil.which("cargo") or (Path.home() / ".cargo/bin/cargo").exists()
    if cargo and os.environ.get("ORDERBANK_NATIVE", "1") != "0":
        assert COMPILED is not None, "make builds native/ where cargo is: `make clean` and `make test` again"


@needs_compiled
def test_it_accepts_no_literal_nor_length_the_shapes_refuse() -> None:
    reader = native.COMPILED
    assert reader is not None
    assert set(reader.TYPES) == {type_name(model) for model in EVENT_TYPES} - {"ProductionPlanned"}
    literals = [list(get_args(Channel)), list(get_args(Purpose)), list(get_args(CancelReason))]
    assert literals == [reader.CHANNELS, reader.PURPOSES, reader.REASONS]
    meta: Any = get_args(Text)[1]
    rank: Any = get_args(get_type_hints(OrderPlaced, include_extras=True)["trim_rank"])[1]
    assert [meta.max_length, rank.le] == [reader.TEXT_CHARS, reader.MAX_TRIM_RANK]
    assert isinstance(meta, msgspec.Meta) and meta.min_length == 1 and rank.ge == 0


_LINES = [orjson.dumps(doc) for doc in generate(preset("yu7", orders=60), seed=11)
          if doc["type"] != "ProductionPlanned"]


def _read_both(lines: list[bytes]) -> tuple[Rows | None, Rows, Names, Names]:
    """A block of these lines read by the compiled reader (None: it left the block) and the pure way."""
    block = scan(memoryview(b"\n".join(lines) + b"\n"))
    compiled_names, pure_names = Names(), Names()
    compiled = BlockReader().read_rows(block, 1, compiled_names)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "COMPILED", None)
        pure, _ = decode_block(block, 1, pure_names, ExactPath(), BlockReader())
    return compiled, pure, compiled_names, pure_names


def _assert_same(compiled: Rows, pure: Rows, compiled_names: Names, pure_names: Names) -> None:
    for column in fields(Rows):
        mine, theirs = getattr(compiled, column.name), getattr(pure, column.name)
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), column.name
    for codes in ("currency", "model", "trim"):
        assert getattr(compiled_names, codes).names == getattr(pure_names, codes).names


@needs_compiled
def test_a_launch_in_canonical_shape_is_read_whole_and_alike() -> None:
    compiled, pure, *names = _read_both(_LINES)
    assert compiled is not None and len(compiled) == len(_LINES)
    _assert_same(compiled, pure, *names)


def _edit(line: bytes, how: str, value: object, field: int = 0) -> bytes:
    doc: dict[str, Any] = orjson.loads(line)
    match how:
        case "field":  # a value of any JSON type in any of its fields
            doc[sorted(doc)[field % len(doc)]] = value
        case "extra":  # a key of another type's (null, or a value), or of none
            doc["vin" if doc["type"] != "VehicleDelivered" else "colour"] = value
        case "twice":
            return line[:-1] + b',"seq":' + orjson.dumps(value) + b"}"
        case "escaped":  # the same values, a character written as an escape
            return line.replace(b'"order_id":"', b'"order_id":"\\u0059', 1).replace(b'\\u0059Y', b'\\u0059', 1)
        case "spaced":
            return line.replace(b'":', b'": ').replace(b",", b" , ")
        case "reordered":
            doc = dict(reversed(doc.items()))
        case "whole_second" if isinstance(doc["occurred_at"], str):  # (not if an edit before made it another type)
            doc["occurred_at"] = doc["occurred_at"][:19] + "Z"
        case "unicode" if isinstance(doc["order_id"], str):
            doc["order_id"] = doc["order_id"] + "\u00fc"
        case "upper_id" if isinstance(doc["event_id"], str):
            doc["event_id"] = doc["event_id"].upper()
    return orjson.dumps(doc)


_VALUES: st.SearchStrategy[object] = st.sampled_from([
    None, 0, -1, 1, 2, 101, 2**63, 1.0, True, "", "x", "CNY", "USD", "balance", "fraud", "store",
    "2025-06-30T00:00:00Z", "2025-13-01T00:00:00.000000Z", {"minor": 1, "currency": "CNY"},
    {"minor": -1, "currency": "CNY"}, {"minor": 1, "currency": "cny"}, [], {}, "Y" * 65])
_EDITS = st.sampled_from(["field", "extra", "twice", "escaped", "spaced", "reordered", "whole_second", "unicode",
                          "upper_id"])


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_LINES) - 1), _EDITS, _VALUES, st.integers(0, 20)), min_size=1,
                max_size=3))
def test_whatever_it_reads_it_reads_as_the_pure_path_does(edits: list[tuple[int, str, object, int]]) -> None:
    lines = list(_LINES)
    for at, how, value, field in edits:
        lines[at] = _edit(lines[at], how, value, field)
    compiled, pure, *names = _read_both(lines)
    if compiled is not None:
        _assert_same(compiled, pure, *names)


@needs_compiled
@pytest.mark.parametrize(("how", "value", "read"), [
    ("reordered", None, True), ("spaced", None, True), ("whole_second", None, True),
    ("twice", 2, False), ("escaped", None, False), ("extra", None, False), ("extra", "x", False),
    ("unicode", None, False), ("upper_id", None, True),
])
def test_what_it_reads_and_what_it_leaves(how: str, value: object, read: bool) -> None:
    """Keys in any order, spaces, whole seconds and capital hex are read (numpy pads and checks them as on the
    pure path); a key twice, an escape, a key of another type even when null, and a non-ASCII order id are not."""
    lines = list(_LINES)
    lines[7] = _edit(lines[7], how, value)
    compiled, pure, *names = _read_both(lines)
    assert (compiled is not None) == read
    if compiled is not None:
        _assert_same(compiled, pure, *names)


@needs_compiled
def test_a_production_plan_or_a_second_currency_leaves_the_block() -> None:
    plan = next(orjson.dumps(doc) for doc in generate(preset("yu7", orders=5), seed=1)
                if doc["type"] == "ProductionPlanned")
    assert _read_both([*_LINES[:5], plan])[0] is None
    usd = orjson.loads(_LINES[0])
    usd["list_price"]["currency"] = usd["deposit"]["currency"] = "USD"
    assert _read_both([*_LINES[:5], orjson.dumps({**usd, "order_id": "USD-1"})])[0] is None
