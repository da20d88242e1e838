"""The ETA in the stream: bands on the positions topic and in the lane snapshots, plan streams routed to their
lane's shard and kept in its changelog."""

from __future__ import annotations

import orjson

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.stream.frames import FrameBuilder, unpack
from orderbank.engine.stream.ingest import LaneDirectory, Route, Routes
from orderbank.engine.stream.publish import POSITIONS, QUEUE, Publisher
from orderbank.engine.stream.shards import Shard, restore_shard
from orderbank.projections.bank import BankSettings, OrderBank, Verdict, canonical, fold
from orderbank.projections.codec import encode
from orderbank.projections.events import Event
from orderbank.projections.policies import HighTrimFirst
from tests.projections.test_forecast import launch
from tests.support import factories as f


def test_position_records_and_lane_snapshots_carry_the_bands_the_bank_gives() -> None:
    events = launch(1_500, seed=2)
    bank = fold([e for e in events if e.occurred_at < f.at(60)], BankSettings(policy=HighTrimFirst()))
    publisher = Publisher(shard=0)
    records = {key: orjson.loads(value) for name, key, value in publisher.positions(bank, set())
               if name == POSITIONS and value is not None}
    open_orders = [order_id for order_id, record in records.items() if record["position"] is not None]
    assert open_orders
    for key in open_orders:
        position = bank.position_of(key.decode())
        assert position is not None
        record = records[key]
        assert (record["eta_low"], record["eta"], record["eta_high"], record["eta_basis"]) == (
            position.eta_low, position.eta, position.eta_high, position.eta_basis)
    headers = [orjson.loads(v) for name, k, v in publisher.lane_snapshots(bank)
               if name == QUEUE and b"lane" in k and v is not None]
    snap = bank.queue.lane_snapshot("YU7", bank.now_us)
    assert [(h["eta_basis"], h["eta_as_of"], h["eta_note"]) for h in headers] == [
        (snap["eta_basis"], snap["eta_as_of"], snap["eta_note"])]


def test_a_plan_goes_to_its_lanes_shard_and_its_stream_follows_it() -> None:
    directory, routes = LaneDirectory(BankSettings(lane_by="model_trim"), 8), Routes()
    for plan, lane in ((f.planned("plan:YU7:Max", 1, 0, (0, 9), trim="Max"), "YU7/Max"),
                       (f.planned("plan:YU7", 1, 0, (0, 9)), "YU7")):
        assert directory.route(routes, [plan.order_id.encode()], [encode(plan)]) == [
            Route(partition_for(lane.encode(), 8), id_taken=False, checked=True)]
    # A later plan naming another trim goes where its stream went, to be refused there as the fold refuses it.
    moved = f.planned("plan:YU7:Max", 2, 1, (0, 9), trim="Pro")
    assert directory.route(routes, [b"plan:YU7:Max"], [encode(moved)]) == [
        Route(partition_for(b"YU7/Max", 8), id_taken=False, checked=True)]


def test_a_shard_keeps_every_plan_of_a_stream_in_its_changelog() -> None:
    events: list[Event] = [f.placed("O1", 0), f.planned("plan:YU7", 1, 0.5, (0, 20)),
                           f.planned("plan:YU7", 2, 3, (0, 30))]
    shard, changelog = Shard(0, OrderBank()), dict[bytes, bytes]()
    for offset, event in enumerate(events):
        builder = FrameBuilder("in")
        builder.add(0, offset, event.order_id.encode(), encode(event))
        assert shard.apply(unpack(builder.build()), offset) == []
        changelog.update(shard.changelog())
    assert any(key.startswith(b"p:0:") for key in changelog)
    restored = restore_shard(0, changelog.items(), BankSettings())
    assert canonical(restored.bank.snapshot()) == canonical(fold(events).snapshot())
    assert [plan.seq for plan in restored.bank.plans["plan:YU7"].plans] == [1, 2]
    assert restored.bank.apply(events[1]) is Verdict.DUPLICATE  # its id survives the restore
