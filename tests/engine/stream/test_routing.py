"""Hostile input through the ingest's routing and a worker's shards, in process: the stream's verdicts are the fold's.

Random logs of a few orders with placements naming other models before and after the real one,
placements no bank applies, events before their order's placement, event ids reused by other
orders and seqs, lines repeated, malformed lines and messages keyed by another order; lanes that
fill up. They are routed as the ingest routes one input partition, which then forwards again a
suffix it had not committed (a crash), and folded by shards that restart from their changelog
after every frame. Snapshot, counts and dead letters are the fold's of the records (each rejected
once per input and reason: `OrderBank.reject`), a wrong key being the stream's one rejection of its
own, and every record forwarded again one more duplicate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import Entry, FrameBuilder, unpack
from orderbank.engine.stream.ingest import LaneDirectory, Routes
from orderbank.engine.stream.shards import Shard, restore_shard
from orderbank.projections.bank import OrderBank, canonical
from orderbank.projections.codec import Reason, Rejection, decode, encode
from orderbank.projections.events import Event, Money
from tests.support import factories as f
from tests.support.ways import merged_at_the_latest_clock

Record = tuple[bytes | None, bytes]
Records = Sequence[Record]
ORDERS = ["A", "B", "C", "D", "E"]
LANES = [("YU7", "Standard"), ("YU7", "Max"), ("SU7", "Standard"), ("X9", "Pro")]
FRAME_EVENTS = 3


@st.composite
def hostile_records(draw: st.DrawFn, lanes_fill_up: bool) -> list[Record]:
    """Input records keyed by order id, mostly. When `lanes_fill_up`, an order's valid placements all
    name one lane and no record is sent twice (see `test_a_lane_that_fills_up_...` for why)."""
    lane_of = {order: draw(st.sampled_from(LANES)) for order in ORDERS}
    seqs: Counter[str] = Counter()
    records: list[Record] = []
    events: list[Event] = []
    for step in range(draw(st.integers(1, 30))):
        order = draw(st.sampled_from(ORDERS))
        day = step / 4
        kind = draw(st.sampled_from(["place", "place", "hostile place", "bad place", "event", "event", "event",
                                     "reuse id", "malformed", "wrong key", *([] if lanes_fill_up else ["repeat"])]))
        salt = str(draw(st.integers(0, 1)))  # an event id drawn twice: a redelivery, maybe changed
        if kind == "repeat" and records:
            records.append(records[draw(st.integers(0, len(records) - 1))])
            continue
        if kind == "malformed":
            records.append((order.encode(), b'{"type": "OrderPlaced", "order_id": ' + salt.encode()))
            continue
        event: Event
        if kind in ("place", "hostile place", "bad place"):
            model, trim = lane_of[order] if kind == "place" or lanes_fill_up else draw(st.sampled_from(LANES))
            event = f.placed(order, day, model=model, trim=trim).model_copy(
                update={"event_id": f.eid(order, 1, kind + salt)})
            if kind == "bad place":
                breaking: dict[str, Any] = draw(st.sampled_from([{"seq": 2},  # seq_gap, or currency_mismatch:
                                                                 {"deposit": Money(minor=1, currency="USD")}]))
                event = event.model_copy(update=breaking)
        else:
            seqs[order] += 1
            seq = max(2, seqs[order] + draw(st.integers(-1, 1)))
            lives: list[Event] = [f.received(order, seq, day, 1000), f.demanded(order, seq, day, 5000),
                                  f.transferred(order, seq, day), f.cancelled(order, seq, day, 100),
                                  f.delivered(order, seq, day)]
            event = draw(st.sampled_from(lives))
            event = event.model_copy(update={"event_id": f.eid(order, seq, salt)})
        if kind == "reuse id" and events:
            event = event.model_copy(update={"event_id": draw(st.sampled_from(events)).event_id})
        events.append(event)
        key = draw(st.sampled_from(ORDERS)).encode() if kind == "wrong key" else order.encode()
        records.append((key, encode(event)))
    return records


def forwarded(records: Records, again_from: int, directory: LaneDirectory) -> list[tuple[int, Entry]]:
    """Each delivery of a record to a shard (at input offsets 0, 1, ...): the ingest routes them all,
    crashes having committed `again_from` of them, rebuilds its routes from those and forwards the rest again."""
    def route(routes: Routes, start: int, stop: int) -> list[tuple[int, Entry]]:
        part = records[start:stop]
        keys, values = [key for key, _ in part], [value for _, value in part]
        return [(shard, Entry(0, offset, key, value, id_taken, checked))
                for offset, key, value, (shard, id_taken, checked)
                in zip(range(start, stop), keys, values, directory.route(routes, keys, values), strict=True)]

    rebuilt = Routes()
    route(rebuilt, 0, again_from)
    return route(Routes(), 0, len(records)) + route(rebuilt, again_from, len(records))


def through_the_shards(deliveries: list[tuple[int, Entry]], settings: Settings) -> tuple[list[Shard], list[Any]]:
    """The shards after folding these deliveries in frames, each restarted from its changelog after
    every frame; and the dead letters, (input offset, reason)."""
    by_shard: dict[int, list[Entry]] = {}
    for partition, entry in deliveries:
        by_shard.setdefault(partition, []).append(entry)
    shards, letters = [], []
    for partition, entries in by_shard.items():
        shard, changelog = Shard(partition, OrderBank(settings.bank)), dict[bytes, bytes]()
        for offset, start in enumerate(range(0, len(entries), FRAME_EVENTS)):
            frame = FrameBuilder(Topics(settings).events.name)
            for entry in entries[start:start + FRAME_EVENTS]:
                frame.add(entry.partition, entry.offset, entry.key, entry.value, entry.id_taken, entry.checked)
            rejected = shard.apply(unpack(frame.build()), offset)
            assert rejected is not None
            letters += [(entry.offset, rejection.reason) for entry, rejection in rejected]
            changelog.update(shard.changelog())
            shard = restore_shard(partition, changelog.items(), settings.bank)
        shards.append(shard)
    return shards, letters


def the_fold(records: Records, settings: Settings) -> tuple[OrderBank, list[Any]]:
    """The fold of the records, a message keyed by another order rejected (as the stream must: the
    key routes it); and its rejections, (input offset, reason)."""
    bank, letters = OrderBank(settings.bank), []
    for offset, (key, value) in enumerate(records):
        event = decode(value)
        if not isinstance(event, Rejection) and key != event.order_id.encode():
            event = Rejection(Reason.INVALID_FIELD, "key_is_order_id", "another order's key")
        outcome = bank.apply_decoded(event, value)
        if isinstance(outcome, Rejection):
            letters.append((offset, outcome.reason))
    return bank, letters


def assert_the_stream_is_the_fold(records: Records, again_from: int, settings: Settings) -> None:
    deliveries = forwarded(records, again_from, LaneDirectory(settings.bank, settings.shard_partitions))
    shards, letters = through_the_shards(deliveries, settings)
    fold, rejected = the_fold(records, settings)
    assert merged_at_the_latest_clock([s.bank for s in shards], settings.bank) == canonical(fold.snapshot())
    counted = [sum(s.bank.applied for s in shards), sum(s.bank.duplicates for s in shards),
               sum((s.bank.rejections for s in shards), Counter[str]())]
    assert counted == [fold.applied, fold.duplicates + len(records) - again_from, fold.rejections]
    assert sorted(letters) == sorted(rejected)
    lanes = [lane for s in shards for lane in s.bank.queue.lanes]
    assert len(lanes) == len(set(lanes)), "a lane on two shards"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hostile_input_through_the_ingest_and_the_shards_is_judged_as_the_fold_judges_it(data: st.DataObject) -> None:
    tight = data.draw(st.booleans())
    records = data.draw(hostile_records(lanes_fill_up=tight))
    settings = Settings(lane_by=data.draw(st.sampled_from(["model", "model_trim"])),
                        max_open_per_lane=1 if tight else 2_000_000)
    assert_the_stream_is_the_fold(records, data.draw(st.integers(0, len(records))), settings)


def test_a_lane_that_fills_up_judges_a_placement_again_in_its_shard() -> None:
    """A placement refused for lane_full is routed as if applied (only its shard's bank knows): the
    order placed again in that lane once it has room is judged there, as the fold judges it.

    The limits this leaves (README): placed again in another lane, the order would be judged there
    too, on the wrong shard; and bad bytes sent before the refused placement and again after it
    are judged by two banks, so counted twice."""
    records = [(order.encode(), encode(event)) for order, event in [
        ("A", f.placed("A")), ("B", f.placed("B", 0.1)), ("B", f.received("B", 2, 0.2, 100)),
        ("A", f.delivered("A", 2, 1)), ("B", f.placed("B", 0.1)), ("B", f.received("B", 2, 2, 100))]]
    settings = Settings(max_open_per_lane=1)
    fold, rejected = the_fold(records, settings)
    assert [reason for _, reason in rejected] == [Reason.LANE_FULL, Reason.UNKNOWN_ORDER]
    assert fold.orders["B"].received == 100
    assert_the_stream_is_the_fold(records, len(records), settings)
