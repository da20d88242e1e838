"""A shard (orderbank.engine.stream.shards) folds lanes frames as the fold does, restores from its changelog,
and goes on without an event that raises."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest

from orderbank.engine.stream import shards
from orderbank.engine.stream.frames import FrameBuilder, unpack
from orderbank.engine.stream.shards import Shard, order_key, restore_shard, saved_of
from orderbank.projections.bank import BankSettings, OrderBank, canonical, fold_lines
from orderbank.projections.cancellations import CancellationProjection
from orderbank.projections.codec import Reason, Rejection, decode_batch
from orderbank.projections.events import Event
from orderbank.projections.orders import Order
from orderbank.projections.queue import QueueProjection
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import key_of


def frame_of(lines: list[bytes], start: int) -> bytes:
    """The lines in one frame, at input offsets from `start` over three input partitions."""
    builder = FrameBuilder("orderbank.events")
    for offset, line in enumerate(lines, start=start):
        builder.add(offset % 3, offset, key_of(line), line)
    return builder.build()


def test_shard_folds_frames_dead_letters_rejections_and_restores_from_its_changelog(
        launch_docs: list[dict[str, Any]]) -> None:
    settings = BankSettings()
    shard, changelog = Shard(1, OrderBank(settings)), dict[bytes, bytes]()
    raws = [orjson.dumps(d) for d in launch_docs]
    stray = {"type": "PaymentReceived", "event_id": "00000000-0000-4000-8000-000000000001", "order_id": "NOPE-1",
             "seq": 2, "occurred_at": launch_docs[0]["occurred_at"], "amount": {"minor": 1, "currency": "CNY"}}
    bad = [b"{not json", orjson.dumps(stray)]
    chunks = [raws[:1000], bad + raws[1000:2500], raws[2500:]]
    rejected: list[tuple[Any, Rejection]] = []
    for offset, chunk in enumerate(chunks):
        out = shard.apply(unpack(frame_of(chunk, offset * 10_000)), offset)
        assert out is not None
        rejected += out
        changelog.update(shard.changelog())
    assert_records_hold_the_orders(shard, changelog)
    assert shard.apply(unpack(frame_of(raws[:5], 0)), 1) is None  # an offset applied before
    assert [r.reason for _, r in rejected] == [Reason.MALFORMED_JSON, Reason.UNKNOWN_ORDER]
    assert rejected[0][0].value == b"{not json" and rejected[0][0].offset == 10_000
    assert_equals_the_fold(canonical(shard.bank.snapshot()), raws, settings)
    restored = restore_shard(1, changelog.items(), settings)
    assert restored.offset == 2 and restored.processed == shard.processed
    assert_equals_the_fold(canonical(restored.bank.snapshot()), raws, settings)
    assert restore_shard(2, changelog.items(), settings).bank.orders == {}  # another shard's records


def assert_records_hold_the_orders(shard: Shard, changelog: dict[bytes, bytes]) -> None:
    """Each order's changelog record holds its state in the bank now (records are encoded as events apply)."""
    assert {order_id: saved_of(changelog[order_key(shard.partition, order_id)]).order
            for order_id in shard.bank.orders} == shard.bank.orders


def test_a_key_that_is_not_the_order_id_is_rejected(launch_docs: list[dict[str, Any]]) -> None:
    builder = FrameBuilder("in")
    builder.add(0, 0, b"someone-else", orjson.dumps(launch_docs[0]))
    shard = Shard(0, OrderBank())
    (rejected,) = shard.apply(unpack(builder.build()), 0) or []
    assert rejected[1].rule == "key_is_order_id" and shard.bank.orders == {}


def raising_for(order_id: str, fun: Callable[..., Any]) -> Callable[..., Any]:
    """`fun`, a projection's method taking an order, raising after it ran for `order_id`'s order: the bank is left
    half-changed (the order and the projections before this one changed, this one and the rest not)."""

    def failing(self: Any, order: Order, *args: Any) -> Any:
        result = fun(self, order, *args)
        if order.order_id == order_id:
            raise RuntimeError(f"injected for {order_id}")
        return result

    return failing


def orders_events(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    events: dict[str, list[str]] = {}
    for doc in docs:
        events.setdefault(doc["order_id"], []).append(doc["type"])
    return events


def inject(kind: str, docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> int:
    """Make one event raise, as `kind` says; its index in `docs`. Later events of its order follow it."""
    events = orders_events(docs)
    if kind == "cancellation":  # mid-way through a cancellation: status and queue changed, the rates not
        order_id = next(o for o, types in events.items() if types == ["OrderPlaced", "OrderCancelled", "RefundPaid"])
        monkeypatch.setattr(CancellationProjection, "cancelled",
                            raising_for(order_id, CancellationProjection.cancelled))
        return next(i for i, d in enumerate(docs) if d["order_id"] == order_id and d["type"] == "OrderCancelled")
    if kind == "placement":  # a new order in the order table and the pool, not in the queue
        order_id = next(o for o, types in events.items() if len(types) >= 4)
        monkeypatch.setattr(QueueProjection, "add", raising_for(order_id, QueueProjection.add))
        return next(i for i, d in enumerate(docs) if d["order_id"] == order_id)
    # the decoder: raises on a frame holding this event, and on the event alone
    bad = next(i for i, d in enumerate(docs) if d["type"] == "PaymentReceived")
    poison = orjson.dumps(docs[bad])

    def decoding(raws: Sequence[bytes]) -> list[Event | Rejection]:
        if poison in raws:
            raise ValueError("injected decoder bug")
        return decode_batch(raws)

    monkeypatch.setattr(shards, "decode_batch", decoding)  # the name the shard calls
    return bad


@pytest.mark.parametrize("kind", ["cancellation", "placement", "decode"])
def test_an_event_that_raises_is_dead_lettered_and_leaves_the_bank_as_the_fold_without_it(
        launch_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    settings, raws = BankSettings(), [orjson.dumps(d) for d in launch_docs]
    bad = inject(kind, launch_docs, monkeypatch)
    shard, changelog = Shard(0, OrderBank(settings)), dict[bytes, bytes]()
    rejected: list[tuple[Any, Rejection]] = []
    for offset, start in enumerate(range(0, len(raws), 1000)):
        rejected += shard.apply(unpack(frame_of(raws[start:start + 1000], start)), offset) or []
        changelog.update(shard.changelog())

    (entry, error), = [(e, r) for e, r in rejected if r.reason is Reason.INTERNAL_ERROR]
    assert (entry.offset, entry.value) == (bad, raws[bad])
    assert error.rule == ("decode" if kind == "decode" else "apply")
    assert error.message.startswith("ValueError: injected" if kind == "decode" else "RuntimeError: injected")
    assert "Traceback" not in error.message
    others = raws[:bad] + raws[bad + 1:]
    folded, folded_rejections = fold_lines(others, settings)
    assert Counter(r.reason for _, r in rejected) == Counter(
        [Reason.INTERNAL_ERROR] + [r.reason for _, r in folded_rejections])
    assert_equals_the_fold(canonical(shard.bank.snapshot()), others, settings)
    assert shard.processed == len(raws) and shard.bank.stats()["orders"] == len(folded.orders)
    assert_records_hold_the_orders(shard, changelog)
    restored = restore_shard(0, changelog.items(), settings)
    assert_equals_the_fold(canonical(restored.bank.snapshot()), others, settings)

    # Fixed and sent again, the event and the later ones of its order apply: the bank never took it as seen.
    monkeypatch.undo()
    order_id = launch_docs[bad]["order_id"]
    again = [raws[i] for i in range(bad, len(raws)) if launch_docs[i]["order_id"] == order_id]
    assert shard.apply(unpack(frame_of(again, len(raws))), 99) == []
    assert_equals_the_fold(canonical(shard.bank.snapshot()), raws, settings)



def test_the_same_bad_input_again_is_counted_and_dead_lettered_once_even_after_a_restart(
        launch_docs: list[dict[str, Any]]) -> None:
    """A producer's re-run sends the bad lines again, at new offsets: the bank counts a rejection once
    per input and reason, and the shard keeps what it counted in its changelog."""
    settings = BankSettings()
    placed = launch_docs[0]
    gap = orjson.dumps({"type": "PaymentReceived", "event_id": "00000000-0000-4000-8000-000000000003", "seq": 3,
                        "order_id": placed["order_id"], "occurred_at": placed["occurred_at"],
                        "amount": {"minor": 1, "currency": "CNY"}})
    shard = Shard(1, OrderBank(settings))
    first = shard.apply(unpack(frame_of([b"{not json", gap, orjson.dumps(placed)], 0)), 0) or []
    restarted = restore_shard(1, shard.changelog(), settings)
    again = restarted.apply(unpack(frame_of([b"{not json", gap, orjson.dumps(placed), b"{not json"], 100)), 1) or []
    assert [r.reason for _, r in first] == [Reason.MALFORMED_JSON, Reason.UNKNOWN_ORDER]
    assert [r.reason for _, r in again] == [Reason.SEQ_GAP]  # rejected again, for another reason: counted
    assert dict(restarted.bank.rejections) == {"malformed_json": 1, "unknown_order": 1, "seq_gap": 1}
    assert (restarted.bank.applied, restarted.bank.duplicates, restarted.processed) == (1, 3, 7)


def test_an_input_forwarded_again_after_a_crash_is_a_duplicate_not_judged_again(
        launch_docs: list[dict[str, Any]]) -> None:
    """The ingest forwards again what it had not committed: an entry at or below the last input offset a
    shard judged from its partition is a duplicate, even one rejected that would now apply."""
    placed, paid = (next(d for d in launch_docs if d["type"] == kind) for kind in ("OrderPlaced", "PaymentReceived"))
    early = orjson.dumps({**paid, "order_id": placed["order_id"], "seq": 2})
    builder = FrameBuilder("in")
    builder.add(0, 7, placed["order_id"].encode(), early)  # before its order's placement: unknown_order
    builder.add(0, 8, placed["order_id"].encode(), orjson.dumps(placed))
    shard = Shard(0, OrderBank())
    assert [r.reason for _, r in shard.apply(unpack(builder.build()), 0) or []] == [Reason.UNKNOWN_ORDER]
    restarted = restore_shard(0, shard.changelog(), BankSettings())
    again = FrameBuilder("in")
    again.add(0, 7, placed["order_id"].encode(), early)
    later = orjson.dumps({**paid, "order_id": placed["order_id"], "seq": 2, "amount": {"minor": 1, "currency": "CNY"},
                          "event_id": "00000000-0000-4000-8000-000000000004"})
    again.add(1, 7, placed["order_id"].encode(), later)  # another input partition's offset 7: judged
    assert restarted.apply(unpack(again.build()), 1) == []
    assert (restarted.bank.applied, restarted.bank.duplicates, restarted.bank.orders[placed["order_id"]].received) \
        == (2, 1, 1)
