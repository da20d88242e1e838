"""The runtime (orderbank.engine.stream.runtime) without a broker: a publish that raises is skipped, said on the
shard's vitals, and the publisher starts over, so the next publish brings every record up to date; lane
snapshots are written in the background, as the lanes stood, while frames are folded."""

from __future__ import annotations

import asyncio
import time
from typing import Any, NoReturn

import faust
import orjson
import pytest

from orderbank.engine.kafka.sink import Outbox
from orderbank.engine.settings import Settings
from orderbank.engine.stream import runtime as runtime_module
from orderbank.engine.stream.frames import Frame, FrameBuilder, unpack
from orderbank.engine.stream.publish import Publisher
from orderbank.engine.stream.runtime import Runtime
from orderbank.engine.stream.schedule import Held, SnapshotBudget, snapshots_due
from orderbank.engine.stream.shards import Shard
from orderbank.projections import queue
from orderbank.projections.bank import OrderBank
from orderbank.projections.forecast import forecast


def frames(docs: list[dict[str, Any]], cut: int | None = None) -> list[Frame]:
    """The documents as frames of input partition 0: one, or two cut before the document at `cut`."""
    builders = [FrameBuilder("in")] if cut is None else [FrameBuilder("in"), FrameBuilder("in")]
    for offset, doc in enumerate(docs):
        builders[cut is not None and offset >= cut].add(0, offset, doc["order_id"].encode(), orjson.dumps(doc))
    return [unpack(builder.build()) for builder in builders]


def held_shard(runtime: Runtime, frame: Frame) -> Held:
    """Shard 0 of the runtime, held with a publisher of its settings, with `frame` folded as lanes offset 0."""
    shard = Shard(0, OrderBank(runtime.settings.bank))
    assert shard.apply(frame, 0) == []
    return Held(shard, runtime._publisher(0), SnapshotBudget(1.0))


def test_a_publish_that_raises_is_skipped_and_the_publisher_starts_over(
        launch_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime(faust.App("publish-test", autodiscover=False), Settings(ingest="inline"))
    held = held_shard(runtime, *frames(launch_docs))
    shard = held.shard
    positions = runtime.topics.positions.name
    assert runtime._publish(held, Outbox())  # some records published ...

    def failing(*_: Any) -> NoReturn:
        raise OverflowError("injected")

    monkeypatch.setattr(Publisher, "freeze", failing)
    assert runtime._freeze(held) is None  # ... then the lane snapshots raise
    assert held.vitals.publish_failed == 1 and held.vitals.publishing_fails

    monkeypatch.undo()
    outbox = Outbox()
    assert runtime._publish(held, outbox) and not held.vitals.publishing_fails
    republished = {key.decode() for key, _, _ in outbox.records[(positions, 0)]}
    assert republished == set(shard.bank.orders)  # a new publisher: every order again, not only the changes


class Written:
    """A sink that takes every outbox as written at once."""

    def __init__(self) -> None:
        self.outboxes: list[Outbox] = []

    async def submit(self, outbox: Outbox) -> asyncio.Future[None]:
        self.outboxes.append(outbox)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_lane_snapshots_are_written_a_page_at_a_time_as_they_stood_while_frames_are_folded(
        launch_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime(faust.App("snapshot-test", autodiscover=False), Settings(ingest="inline", snapshot_page_size=50))
    sink = Written()
    monkeypatch.setattr(runtime, "sink", sink)
    monkeypatch.setattr(runtime_module, "SNAPSHOT_STEP_S", 0.0)  # let frames in after every page
    first, later = frames(launch_docs, cut=2000)
    held = held_shard(runtime, first)
    shard = held.shard
    expected = runtime._publisher(0).lane_snapshots(shard.bank)
    assert len(expected) > 10  # pages and headers

    lanes = runtime._freeze(held)
    assert lanes is not None
    runtime._snapshot(held, lanes, shard.offset)
    await asyncio.sleep(0)
    assert held.snapshot is not None and not held.snapshot.done()  # a page in: the loop is free again ...
    assert not snapshots_due(held, time.monotonic() + 3600, runtime.settings)  # ... and no second one starts
    assert shard.apply(later, 1) == []  # a frame folded meanwhile
    await held.snapshot

    topic = runtime.topics.queue.name
    written = [(key, value) for outbox in sink.outboxes for key, value, _ in outbox.records[(topic, 0)]]
    assert written == [(key, value) for _, key, value in expected]  # the lanes as they stood when frozen
    assert shard.unpublished  # the frame folded since is not in them


def test_a_forecast_computed_again_is_not_counted_as_what_a_publish_costs(
        launch_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """How often a live shard publishes follows what its publishes cost; a lane's forecast is computed once a day
    and when a plan comes, so a slow one must not space the next publishes out."""
    runtime = Runtime(faust.App("refresh-test", autodiscover=False), Settings(ingest="inline"))
    held = held_shard(runtime, *frames(launch_docs))

    def slow(*args: Any) -> Any:
        time.sleep(1.0)
        return forecast(*args)

    monkeypatch.setattr(queue, "forecast", slow)
    outbox = Outbox()
    assert runtime._publish(held, outbox) and outbox.records[(runtime.topics.positions.name, 0)]
    assert all(lane.forecast is not None for lane in held.shard.bank.queue.lanes.values())
    assert held.publish_seconds < 0.5


async def test_a_live_shard_publishes_what_its_last_frames_changed_once_its_period_is_over(
        launch_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame folded before the publish period is over waits for it, not for the idle rule; one that a later
    frame published meanwhile is not published again."""
    runtime = Runtime(faust.App("deferred-test", autodiscover=False), Settings(ingest="inline"))
    sink = Written()
    monkeypatch.setattr(runtime, "sink", sink)
    first, later = frames(launch_docs, cut=2000)
    held = runtime.held[0] = held_shard(runtime, first)
    shard, positions = held.shard, runtime.topics.positions.name
    runtime._defer_publish(held, 0.05)
    runtime._defer_publish(held, 0.05)  # a frame while one waits: still one
    deferred = held.deferred
    assert deferred is not None and not sink.outboxes
    await deferred
    published = {key for outbox in sink.outboxes for key, _, _ in outbox.records[(positions, 0)]}
    assert published == {order_id.encode() for order_id in shard.bank.orders}  # the first frame's orders, all
    assert not shard.touched

    assert shard.apply(later, 1) == []
    runtime._defer_publish(held, 0.05)
    assert runtime._publish(held, Outbox())  # a frame published them meanwhile
    written = len(sink.outboxes)
    assert held.deferred is not None and held.deferred is not deferred
    await held.deferred
    assert len(sink.outboxes) == written
