"""The stream engine's pure parts: restore, merge, shards and their changelog, frames, routing, settings."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.kafka.transport import FETCH_MAX_WAIT_MS, Transport
from orderbank.engine.settings import Settings, SettingsError
from orderbank.engine.stream.app import create_app
from orderbank.engine.stream.frames import FrameBuilder, FrameError, unpack
from orderbank.engine.stream.ingest import LaneDirectory
from orderbank.engine.stream.recovery import RECOVERY_STALLED_AFTER_S, RecoveryWatch
from orderbank.engine.stream.shards import Shard, restore_shard
from orderbank.projections.bank import BankSettings, OrderBank, canonical, fold
from orderbank.projections.codec import Reason, Rejection, decode_obj
from orderbank.projections.events import Event
from orderbank.projections.merge import merge, part
from orderbank.projections.plans import PlanStream
from orderbank.projections.policies import parse_policy
from orderbank.projections.restore import order_from_doc, restore
from orderbank.replay.synth import generate, preset

POLICIES = ["fifo", "high-trim-first", "paid-first", "bounded-overtake:k=40"]


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return list(generate(preset("small", 1500), 7))


def events_of(docs: list[dict[str, Any]]) -> list[Event]:
    out = []
    for doc in docs:
        event = decode_obj(doc)
        assert not isinstance(event, Rejection)
        out.append(event)
    return out


def roundtrip_orders(bank: OrderBank) -> list[Any]:
    """The orders as the changelog stores them (JSON) and reads them back."""
    return [order_from_doc(orjson.loads(msgspec.json.encode(order))) for order in bank.orders.values()]


def roundtrip_plans(bank: OrderBank) -> list[PlanStream]:
    """The plan streams as the changelog stores them and reads them back."""
    return [msgspec.json.decode(msgspec.json.encode(stream), type=PlanStream) for stream in bank.plans.values()]


@pytest.mark.parametrize(("policy", "lane_by"), list(itertools.product(POLICIES, ["model", "model_trim"])))
def test_restore_from_orders_equals_the_fold_and_keeps_folding_alike(docs: list[dict[str, Any]], policy: str,
                                                                     lane_by: str) -> None:
    settings = BankSettings(policy=parse_policy(policy), lane_by=lane_by)  # type: ignore[arg-type]
    events = events_of(docs)
    half = len(events) // 2
    bank = fold(events[:half], settings)
    restored = restore(roundtrip_orders(bank), bank.now_us, settings, {e.event_id.int for e in events[:half]},
                       roundtrip_plans(bank))
    assert canonical(restored.snapshot()) == canonical(bank.snapshot())
    for event in events[half:]:
        restored.apply(event)
    assert canonical(restored.snapshot()) == canonical(fold(events, settings).snapshot())
    assert restored.apply(events[0]) is not None and restored.duplicates == 1  # ids survive: still a duplicate


def test_merging_per_lane_shards_at_the_latest_clock_gives_the_whole_fold(docs: list[dict[str, Any]]) -> None:
    settings = BankSettings(lane_by="model_trim")
    events = events_of(docs)
    lane_of = {e.order_id: settings.lane_of(e) if e.type == "OrderPlaced" else settings.plan_lane(e.model, e.trim)
               for e in events if e.type in ("OrderPlaced", "ProductionPlanned")}
    by_lane: dict[str, list[Event]] = {}
    for event in events:
        by_lane.setdefault(lane_of[event.order_id], []).append(event)
    shards = [fold(lane_events, settings) for lane_events in by_lane.values()]
    # Three trim lanes and the model's plan (a lane of its own when lanes are by trim): four clocks to align.
    assert len(shards) == 4 and len({s.now_us for s in shards}) == 4
    at = max(s.now_us for s in shards)
    parts = [orjson.loads(orjson.dumps(part(s, at))) for s in shards]  # as they travel between workers
    assert canonical(merge(parts, at, settings)) == canonical(fold(events, settings).snapshot())


def frame_of(docs: list[dict[str, Any]], start: int = 0, raw: list[bytes] | None = None) -> bytes:
    builder = FrameBuilder("orderbank.events")
    for offset, value in enumerate(raw if raw is not None else [orjson.dumps(d) for d in docs], start=start):
        key = orjson.loads(value)["order_id"].encode() if value.startswith(b"{\"") else None
        builder.add(offset % 3, offset, key, value)
    return builder.build()


def test_frames_keep_bytes_keys_and_coordinates() -> None:
    builder = FrameBuilder("in")
    builder.add(2, 7, None, b"\xff not json")
    builder.add(0, 9, b"k", b"{}")
    frame = unpack(builder.build())
    assert frame.topic == "in"
    assert [(e.partition, e.offset, e.key, e.value) for e in frame.entries] == [(2, 7, None, b"\xff not json"),
                                                                               (0, 9, b"k", b"{}")]
    for corrupt in (b"nope", builder.build()[:-1], builder.build() + b"x"):
        with pytest.raises(FrameError):
            unpack(corrupt)


def test_shard_folds_frames_dead_letters_rejections_and_restores_from_its_changelog(
        docs: list[dict[str, Any]]) -> None:
    settings = BankSettings()
    shard, changelog = Shard(1, OrderBank(settings)), dict[bytes, bytes]()
    raws = [orjson.dumps(d) for d in docs]
    stray = {"type": "PaymentReceived", "event_id": "00000000-0000-4000-8000-000000000001", "order_id": "NOPE-1",
             "seq": 2, "occurred_at": docs[0]["occurred_at"], "amount": {"minor": 1, "currency": "CNY"}}
    bad = [b"{not json", orjson.dumps(stray)]
    chunks = [raws[:1000], bad + raws[1000:2500], raws[2500:]]
    rejected: list[tuple[Any, Rejection]] = []
    for offset, chunk in enumerate(chunks):
        out = shard.apply(unpack(frame_of([], offset * 10_000, chunk)), offset)
        assert out is not None
        rejected += out
        changelog.update(shard.changelog())
    assert shard.apply(unpack(frame_of([], 0, raws[:5])), 1) is None  # an offset applied before
    assert [r.reason for _, r in rejected] == [Reason.MALFORMED_JSON, Reason.UNKNOWN_ORDER]
    assert rejected[0][0].value == b"{not json" and rejected[0][0].offset == 10_000
    expected = fold(events_of(docs), settings)
    assert canonical(shard.bank.snapshot()) == canonical(expected.snapshot())
    restored = restore_shard(1, changelog.items(), settings)
    assert restored.offset == 2 and restored.processed == shard.processed
    assert canonical(restored.bank.snapshot()) == canonical(expected.snapshot())
    assert restore_shard(2, changelog.items(), settings).bank.orders == {}  # another shard's records


def test_a_key_that_is_not_the_order_id_is_rejected(docs: list[dict[str, Any]]) -> None:
    builder = FrameBuilder("in")
    builder.add(0, 0, b"someone-else", orjson.dumps(docs[0]))
    shard = Shard(0, OrderBank())
    (rejected,) = shard.apply(unpack(builder.build()), 0) or []
    assert rejected[1].rule == "key_is_order_id" and shard.bank.orders == {}


def test_lanes_route_every_event_of_an_order_to_its_placements_shard(docs: list[dict[str, Any]]) -> None:
    directory = LaneDirectory(BankSettings(lane_by="model_trim"), 4)
    directory.learn(0, [])
    directory.learn(1, [])
    expected = {d["order_id"]: partition_for(f"{d['model']}/{d['trim']}".encode(), 4)
                for d in docs if d["type"] == "OrderPlaced"}
    expected |= {d["order_id"]: partition_for(d["model"].encode(), 4) for d in docs if d["type"] == "ProductionPlanned"}
    for doc in docs:
        key = doc["order_id"].encode()
        assert directory.shard_of(0, key, orjson.dumps(doc)) == expected[doc["order_id"]]
    stray = orjson.dumps({**docs[0], "type": "PaymentReceived"})
    assert directory.shard_of(1, b"never-placed", stray) == partition_for(b"never-placed", 4)
    directory.forget([0])
    assert directory.orders == {1: {}}
    with pytest.raises(KeyError):  # a partition not adopted (revoked, or not rebuilt yet) is not routed
        directory.shard_of(0, b"YU7-1", stray)


def test_settings_come_from_the_environment_and_name_the_bad_field() -> None:
    settings = Settings.from_env({"ORDERBANK_WEB_PORT": "7001", "ORDERBANK_POLICY": "paid-first"}, app_id="x")
    assert (settings.web_port, settings.policy, settings.app_id, settings.web_host) == (7001, "paid-first", "x",
                                                                                        "127.0.0.1")
    with pytest.raises(SettingsError, match=r"web_port.*ORDERBANK_WEB_PORT"):
        Settings.from_env({"ORDERBANK_WEB_PORT": "70000"})
    with pytest.raises(SettingsError, match="policy"):
        Settings.from_env({}, policy="bounded-overtake:k=x")
    with pytest.raises(SettingsError, match="bootstrap_servers"):
        Settings.from_env({"ORDERBANK_BOOTSTRAP_SERVERS": "nohost"})


def test_a_misspelt_variable_is_an_error_not_a_default() -> None:
    with pytest.raises(SettingsError, match=r"ORDERBANK_SHARD_PARTITION \(did you mean ORDERBANK_SHARD_PARTITIONS\?\)"):
        Settings.from_env({"ORDERBANK_SHARD_PARTITION": "8"})
    with pytest.raises(SettingsError, match=r"ORDERBANK_KAFKA_USER \(did you mean ORDERBANK_KAFKA_USERNAME\?\)"):
        Settings.from_env({"ORDERBANK_KAFKA_USER": "alice"})
    with pytest.raises(SettingsError, match=r"unknown variable ORDERBANK_XYZ \(known: ORDERBANK_APP_ID, "):
        Settings.from_env({"ORDERBANK_XYZ": "1"})
    # The broker's cache directory is not a worker setting but is ours; an empty variable counts as unset.
    assert Settings.from_env({"ORDERBANK_CACHE": "/tmp/x", "ORDERBANK_XYZ": "", "OTHER": "1"}) == Settings()


async def test_the_worker_consumer_waits_briefly_on_fetches(tmp_path: Path) -> None:
    """Faust's own 1.5 s fetch wait starved a busy shard behind fetches of idle partitions (kafka/transport.py)."""
    app = create_app(Settings(data_dir=tmp_path))
    assert isinstance(app.transport, Transport)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS <= 100
    finally:
        await consumer.stop()


def test_a_recovering_changelog_partition_is_stalled_only_after_its_offset_stood_still_long_enough() -> None:
    watch, a, b = RecoveryWatch(), "changelog-0", "changelog-1"
    remaining, offsets = {a: 100, b: 50}, {a: -1, b: 10}
    assert watch.stalled(remaining, offsets, now=0.0) == []  # first seen
    offsets[b] = 20  # b makes progress, a does not
    assert watch.stalled(remaining, offsets, now=RECOVERY_STALLED_AFTER_S - 0.1) == []
    assert watch.stalled(remaining, offsets, now=RECOVERY_STALLED_AFTER_S) == [a]
    watch.retried(a, RECOVERY_STALLED_AFTER_S)  # read again: it gets the whole time anew
    assert watch.stalled(remaining, offsets, now=RECOVERY_STALLED_AFTER_S + 1) == []
    assert watch.stalled(remaining, offsets, now=2 * RECOVERY_STALLED_AFTER_S + 0.1) == [a, b]
    remaining[a] = 0  # a is recovered: never stalled, and forgotten
    assert watch.stalled(remaining, offsets, now=3 * RECOVERY_STALLED_AFTER_S) == [b]
    assert a not in watch.seen
