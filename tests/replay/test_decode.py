"""The loader's parts: timestamps and shapes agree with pydantic, orders group exactly, blocks cut cleanly."""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import get_args

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

import orderbank.replay.decode
import orderbank.replay.rows
import orderbank.replay.source
from orderbank.projections.events import EVENT_TYPES, OrderCancelled, OrderPlaced, PaymentDemanded
from orderbank.projections.orders import micros
from orderbank.replay.decode import BlockReader, columns, scan
from orderbank.replay.joined import Joined
from orderbank.replay.lifecycle import Orders
from orderbank.replay.orderlog import CANCEL_REASONS
from orderbank.replay.rows import Names
from orderbank.replay.shapes import SHAPES, CancelReason, Channel, PaymentReceived, Purpose, decoder_for
from orderbank.replay.source import MemorySource, ahead, blocks_of
from orderbank.replay.timestamps import as_chars, parse

TIMES = ["2025-06-26T14:00:00.017130Z", "2025-06-26T14:00:00Z", "2024-02-29T23:59:59.999999Z",
         "2025-02-29T00:00:00.000000Z", "2025-02-30T10:00:00Z", "2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z",
         "2025-06-26T24:00:00Z", "2025-06-26T23:60:00Z", "2025-06-26T23:59:60Z", "0000-01-01T00:00:00Z",
         "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2025-06-26 14:00:00Z", "2025-06-26T14:00:00",
         "2025-06-26T14:00:00+08:00", "2025-06-26T14:00:00.0171Z", "-025-06-26T14:00:00Z", "2025-06-26T14:00:00z",
         "2025-06-2\uff16T14:00:00Z", "1969-12-31T23:59:59.999999Z", "2025-06-26T14:00:00.01713Z"]


def test_timestamps_read_as_pydantic_reads_them_or_are_left_to_it() -> None:
    adapter = TypeAdapter(AwareDatetime)
    fitting = [text for text in TIMES if 20 <= len(text) <= 27]  # what the shapes let through
    at, ok = parse(as_chars(fitting))
    for text, us, accepted in zip(fitting, at.tolist(), ok.tolist(), strict=True):
        if accepted:  # the fast path's value is pydantic's
            assert us == micros(adapter.validate_python(text)), text
    expected_ok = {"2025-06-26T14:00:00.017130Z", "2025-06-26T14:00:00Z", "2024-02-29T23:59:59.999999Z",
                   "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"}
    assert {text for text, good in zip(fitting, ok.tolist(), strict=True) if good} == expected_ok


@settings(max_examples=300, deadline=None)
@given(st.lists(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
                min_size=1, max_size=50))
def test_any_real_instant_reads_as_pydantic_reads_it(instants: list[datetime]) -> None:
    # Each of year 1 to 9999, leap days and the turn of centuries included, in both written forms.
    texts = [instant.isoformat() + "Z" for instant in instants]  # whole seconds without a fraction
    at, ok = parse(as_chars(texts))
    adapter = TypeAdapter(AwareDatetime)
    assert ok.all()
    assert at.tolist() == [micros(adapter.validate_python(text)) for text in texts]


def test_an_impossible_time_deep_in_a_column_is_found() -> None:
    # numpy 2.4's datetime64 cast segfaulted on a bad value this far into an array, when parse used it
    texts = ["2025-06-26T14:00:00.000000Z"] * 2_000 + ["2025-06-26T24:00:00Z", "2025-02-29T10:00:00Z"]
    at, ok = parse(as_chars(texts))
    assert ok.tolist() == [True] * 2_000 + [False, False]
    assert at[0] == micros(TypeAdapter(AwareDatetime).validate_python(texts[0]))


def test_shapes_have_the_models_fields_and_values() -> None:
    optional = {"correlation_id", "causation_id"}
    for shape, model in zip(SHAPES, EVENT_TYPES, strict=True):
        info = msgspec.inspect.type_info(shape)
        assert isinstance(info, msgspec.inspect.StructType)
        assert info.tag == model.__name__
        assert {f.encode_name for f in info.fields} | {"type"} == set(model.model_fields) - optional
    assert get_args(Channel) == get_args(OrderPlaced.model_fields["channel"].annotation)
    assert get_args(Purpose) == get_args(PaymentDemanded.model_fields["purpose"].annotation)
    assert get_args(CancelReason) == get_args(OrderCancelled.model_fields["reason"].annotation) == CANCEL_REASONS


def test_a_decoder_for_one_currency_refuses_another() -> None:
    line = (b'{"type":"PaymentReceived","event_id":"00000000-0000-4000-8000-000000000001","order_id":"A","seq":2,'
            b'"occurred_at":"2025-06-26T14:00:00Z","schema_version":2,"amount":{"minor":5,"currency":"CNY"}}')
    shape = decoder_for("CNY").decode(line)
    assert isinstance(shape, PaymentReceived) and shape.money.currency == "CNY"
    with pytest.raises(msgspec.ValidationError, match="currency"):
        decoder_for("USD").decode(line)


def _payment(k: int, currency: str = "CNY") -> bytes:
    return (b'{"type":"PaymentReceived","event_id":"00000000-0000-4000-8000-%012d","order_id":"A","seq":%d,'
            b'"occurred_at":"2025-06-26T14:00:00Z","schema_version":2,"amount":{"minor":5,"currency":"%s"}}'
            % (k, k + 2, currency.encode()))


@pytest.mark.parametrize("chunk_lines", [1, 4, 256])
def test_a_block_with_bad_lines_is_read_in_chunks_around_them(monkeypatch: pytest.MonkeyPatch,
                                                             chunk_lines: int) -> None:
    monkeypatch.setattr(orderbank.replay.decode, "CHUNK_LINES", chunk_lines)
    lines = [_payment(k) for k in range(30)]
    lines[3] = b'{"type":"PaymentReceived","seq":"two"}'  # fails validation
    lines[17] = b'{"type":"PaymentReceived",,}'  # malformed
    block = scan(memoryview(b"\n".join(lines) + b"\n"))
    reader = BlockReader()
    reader.currency = "CNY"  # as an earlier block showed
    assert reader.read(block) is None
    shapes, currency = reader.read_lines(block)
    assert [k for k, shape in enumerate(shapes) if shape is None] == [3, 17]
    assert shapes == [None if k in (3, 17) else decoder_for("CNY").decode(line) for k, line in enumerate(lines)]
    assert currency == "CNY"  # every amount decoded for it: its checks are done
    lines[25] = _payment(25, "USD")
    shapes, currency = reader.read_lines(scan(memoryview(b"\n".join(lines) + b"\n")))
    assert currency is None and isinstance(shapes[25], PaymentReceived) and shapes[25].money.currency == "USD"
    assert [k for k, shape in enumerate(shapes) if shape is None] == [3, 17]


def test_orders_group_by_id_even_when_hashes_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    ids = [f"O-{int(k)}" + "x" * int(k % 11) for k in rng.integers(0, 50, 400)]
    shapes = [decoder_for("CNY").decode(
        b'{"type":"OrderTransferred","event_id":"00000000-0000-4000-8000-000000000001","order_id":"%s","seq":2,'
        b'"occurred_at":"2025-06-26T14:00:00Z","schema_version":2,"new_customer_id":"c"}' % i.encode()) for i in ids]
    rows, ok = columns(shapes, np.arange(1, len(ids) + 1), Names())
    assert ok.all()

    def groups() -> list[list[int]]:
        orders = Orders.of(rows)
        bounds = [*orders.starts.tolist(), len(ids)]
        return sorted(orders.sequence[a:b].tolist() for a, b in itertools.pairwise(bounds))

    expected = sorted([k for k, i in enumerate(ids) if i == one] for one in set(ids))
    assert groups() == expected  # each order's rows, in log order
    monkeypatch.setattr(orderbank.replay.rows, "_MIX", np.uint64(0))  # every id hashes alike
    assert groups() == expected


def test_blocks_end_on_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orderbank.replay.source, "BLOCK_BYTES", 16)
    text = b"short\n" + b"a line much longer than one block\n" * 3 + b"x\nlast line, no newline"
    blocks = [bytes(block) for block in blocks_of(io.BytesIO(text))]
    assert b"".join(blocks) == text + b"\n"
    assert all(block.endswith(b"\n") and block.count(b"\n") >= 1 for block in blocks)


def test_memory_lines_are_a_files_lines() -> None:
    with pytest.raises(ValueError, match="line 2"):
        MemorySource((b"{}", b"{}\n{}"))
    with pytest.raises(ValueError, match="line 1"):
        MemorySource((b" {}",))


def test_reading_ahead_hands_over_everything_and_stops_with_the_caller() -> None:
    assert list(ahead(iter(range(100)))) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(ahead(failing()))
    before = threading.active_count()
    for item in ahead(iter(range(10**6))):
        if item == 3:
            break
    assert threading.active_count() == before  # the reader thread ended with the loop


def test_joined_strings_give_their_lengths_unless_one_holds_a_nul() -> None:
    lengths = Joined.of(["ab", "", "cde", "日本"], 4).lengths
    assert lengths is not None and lengths.tolist() == [2, 0, 3, 2]
    same = Joined.of(iter(["ab", "cd"]), 2)
    assert [bytes(row) for row in same.rows(2)] == [b"ab", b"cd"]
    assert Joined.of(["a\0b", "c"], 2).lengths is None
    assert Joined.of(["AB", "C", "\0DE"], 3).lengths is None  # NULs where equal lengths would put them
    assert Joined.of([], 0).text.tolist() == []
