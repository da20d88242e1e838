"""The ways the projections are produced from a log, each a `Way`: (log lines, settings) -> canonical snapshot.

In process: the plain fold (`orderbank.projections.bank.fold`, events decoded by the fast path as a
large log's are), a bank restored half way through the log from its orders' states
(`orderbank.projections.restore`), per-lane banks merged at one clock (`orderbank.projections.merge`),
and a worker's shards applying lanes frames, restored from their changelog and merged
(`orderbank.engine.stream.shards`). Through Kafka: a worker on a real broker (`through_kafka`).
tests/test_equals_the_fold.py holds each of them to the fold (tests.support.equality).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import msgspec
import orjson

from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import FrameBuilder, unpack
from orderbank.engine.stream.ingest import LaneDirectory, Routes
from orderbank.engine.stream.shards import Shard, restore_shard
from orderbank.projections.bank import BankSettings, OrderBank, canonical, fold
from orderbank.projections.codec import Rejection, decode_batch
from orderbank.projections.events import Event
from orderbank.projections.merge import merge, part
from orderbank.projections.plans import PlanStream
from orderbank.projections.restore import order_from_doc, restore
from tests.support.topics import key_of, keyed, produce_raw, with_topics
from tests.support.workers import Worker, caught_up

Way = Callable[[Sequence[bytes], Settings], bytes]
FRAME_EVENTS = 40


def events_of(lines: Iterable[bytes]) -> list[Event]:
    """A log's events, the lines the decoder rejects left out."""
    return [event for event in decode_batch(list(lines)) if not isinstance(event, Rejection)]


def folded(lines: Sequence[bytes], settings: Settings) -> bytes:
    return canonical(fold(events_of(lines), settings.bank).snapshot())


def restored_from(bank: OrderBank, folded: Iterable[Event]) -> OrderBank:
    """A bank restored from `bank`'s orders and plan streams as the changelog stores them (JSON) and reads
    them back, and from the ids of the events it `folded`."""
    orders = [order_from_doc(orjson.loads(msgspec.json.encode(order))) for order in bank.orders.values()]
    plans = [msgspec.json.decode(msgspec.json.encode(stream), type=PlanStream) for stream in bank.plans.values()]
    return restore(orders, bank.now_us, bank.settings, ((e.event_id.int, e.order_id, e.seq) for e in folded),
                   plans=plans)


def restored(lines: Sequence[bytes], settings: Settings) -> bytes:
    """Half the log folded, a bank restored from its orders and the ids of those events, the rest applied to that."""
    events = events_of(lines)
    half = len(events) // 2
    bank = restored_from(fold(events[:half], settings.bank), events[:half])
    for event in events[half:]:
        bank.apply(event)
    return canonical(bank.snapshot())


def banks_by_lane(events: Iterable[Event], settings: BankSettings) -> list[OrderBank]:
    """The fold of each lane's events in a bank of its own (a plan's with the lane it plans; events of orders
    not placed yet in one more)."""
    lane_of: dict[str, str] = {}
    by_lane: dict[str, list[Event]] = {}
    for event in events:
        if event.type == "OrderPlaced":
            lane_of.setdefault(event.order_id, settings.lane_of(event))
        elif event.type == "ProductionPlanned":
            lane_of.setdefault(event.order_id, settings.plan_lane(event.model, event.trim))
        by_lane.setdefault(lane_of.get(event.order_id, ""), []).append(event)
    return [fold(lane_events, settings) for lane_events in by_lane.values()]


def merged_at_the_latest_clock(banks: Iterable[OrderBank], settings: BankSettings) -> bytes:
    """The banks' snapshot, each read at the latest of their clocks and merged as a worker's view merges them."""
    banks = list(banks)
    at = max(bank.now_us for bank in banks)
    parts = [orjson.loads(orjson.dumps(part(bank, at))) for bank in banks]  # as they travel between workers
    return canonical(merge(parts, at, settings))


def merged(lines: Sequence[bytes], settings: Settings) -> bytes:
    return merged_at_the_latest_clock(banks_by_lane(events_of(lines), settings.bank), settings.bank)


def frames_of(lines: Sequence[bytes], settings: Settings) -> dict[int, list[bytes]]:
    """The lines as the ingest forwards them from one input partition, keyed by order id: routed to
    their shard, packed into frames of FRAME_EVENTS."""
    directory = LaneDirectory(settings.bank, settings.shard_partitions)
    builders: dict[int, list[FrameBuilder]] = {}
    events = Topics(settings).events.name
    keys = [key_of(line) for line in lines]
    routes = directory.route(Routes(), keys, lines)
    for offset, (line, key, (shard, id_taken, checked)) in enumerate(zip(lines, keys, routes, strict=True)):
        frames = builders.setdefault(shard, [FrameBuilder(events)])
        if frames[-1].count == FRAME_EVENTS:
            frames.append(FrameBuilder(events))
        frames[-1].add(0, offset, key, line, id_taken, checked)
    return {shard: [frame.build() for frame in frames] for shard, frames in builders.items()}


def sharded(lines: Sequence[bytes], settings: Settings) -> bytes:
    """Each shard applies its frames and writes its changelog; the shards restored from it, merged."""
    shards = []
    for partition, frames in frames_of(lines, settings).items():
        shard, changelog = Shard(partition, OrderBank(settings.bank)), dict[bytes, bytes]()
        for offset, frame in enumerate(frames):
            shard.apply(unpack(frame), offset)
            changelog.update(shard.changelog())
        shards.append(restore_shard(partition, changelog.items(), settings.bank))
    return merged_at_the_latest_clock((shard.bank for shard in shards), settings.bank)


IN_PROCESS: dict[str, Way] = {"fold": folded, "restore": restored, "merge": merged, "shards": sharded}


def through_kafka(bootstrap: str, state: Path) -> Way:
    """A worker of its own on the broker at `bootstrap`: the log produced to its input topic keyed by
    order id, its `/snapshot` once it has caught up."""

    def produce(lines: Sequence[bytes], settings: Settings) -> bytes:
        fresh = with_topics(bootstrap, policy=settings.policy, lane_by=settings.lane_by)
        worker = Worker(fresh, state).start()
        try:
            produce_raw(fresh, keyed(lines))
            caught_up([worker])
            return worker.snapshot()
        finally:
            worker.stop()

    return produce
