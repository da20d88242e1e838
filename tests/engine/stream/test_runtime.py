"""The runtime (orderbank.engine.stream.runtime) without a broker: a publish that raises is skipped, said on the
shard's vitals, and the publisher starts over, so the next publish brings every record up to date."""

from __future__ import annotations

from typing import Any, NoReturn

import faust
import orjson
import pytest

from orderbank.engine.kafka.sink import Outbox
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import FrameBuilder, unpack
from orderbank.engine.stream.publish import Publisher
from orderbank.engine.stream.runtime import Runtime
from orderbank.engine.stream.schedule import Held, SnapshotBudget
from orderbank.engine.stream.shards import Shard
from orderbank.projections.bank import OrderBank


def test_a_publish_that_raises_is_skipped_and_the_publisher_starts_over(
        launch_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime(faust.App("publish-test", autodiscover=False), Settings(ingest="inline"))
    builder = FrameBuilder("in")
    for offset, doc in enumerate(launch_docs):
        builder.add(0, offset, doc["order_id"].encode(), orjson.dumps(doc))
    shard = Shard(0, OrderBank(runtime.settings.bank))
    assert shard.apply(unpack(builder.build()), 0) == []
    held = Held(shard, Publisher(0), SnapshotBudget(1.0))
    positions = runtime.topics.positions.name
    assert runtime._publish(held, Outbox(), snapshot=False)  # some records published ...

    def failing(*_: Any) -> NoReturn:
        raise OverflowError("injected")

    monkeypatch.setattr(Publisher, "lane_snapshots", failing)
    outbox = Outbox()
    assert not runtime._publish(held, outbox, snapshot=True)  # ... then one that raises: nothing of it is written
    assert outbox.count == 0 and held.vitals.publish_failed == 1
    assert held.vitals.publishing_fails

    monkeypatch.undo()
    assert runtime._publish(held, outbox, snapshot=True) and not held.vitals.publishing_fails
    republished = {key.decode() for key, _, _ in outbox.records[(positions, 0)]}
    assert republished == set(shard.bank.orders)  # a new publisher: every order again, not only the changes
