"""The sink's writes on a real broker: batches as large as each topic takes (its max.message.bytes)."""

from __future__ import annotations

import asyncio

import pytest

from orderbank.engine.dev.broker import Broker
from orderbank.engine.kafka.sink import BROKER_DEFAULT_LIMIT, BULK_BATCH_BYTES, Outbox, Sink, _batches
from orderbank.engine.kafka.topics import FRAME_BYTES_MAX, Topics, ensure, message_limits
from orderbank.engine.settings import Settings
from tests.support.topics import read_topic, unique_settings

pytestmark = pytest.mark.broker


def test_batches_are_as_large_as_each_topic_takes(broker: Broker) -> None:
    settings = unique_settings(broker.bootstrap)
    asyncio.run(write_both(settings))
    topics = Topics(settings)
    assert len(read_topic(settings, topics.positions.name)) == len(read_topic(settings, topics.events.name)) == 6000


async def write_both(settings: Settings) -> None:
    """6 MB to a topic made for bulk writes and 6 MB to one with the broker's default message size."""
    topics = Topics(settings)
    await ensure(settings)
    assert await message_limits(settings, [topics.positions.name, topics.events.name, "no-such-topic"]) == {
        topics.positions.name: int(FRAME_BYTES_MAX), topics.events.name: BROKER_DEFAULT_LIMIT}
    sink = Sink(settings)
    await sink.start()
    try:
        outbox, value = Outbox(), b"x" * 1000
        for i in range(6000):
            outbox.add(topics.positions.name, 0, f"p{i}".encode(), value)
            outbox.add(topics.events.name, 0, f"e{i}".encode(), value)
        batches = _batches(outbox, sink.batch_bytes)
        count = {name: sum(1 for topic, _, _ in batches if topic == name) for name in sink.batch_bytes}
        assert count[topics.positions.name] == 2  # 4 MiB batches where the topic takes 8 MiB messages
        assert count[topics.events.name] == 6  # where it takes the broker's default, 1 MiB
        assert sink.batch_bytes[topics.positions.name] == BULK_BATCH_BYTES
        await sink.write(outbox)  # the broker takes every batch
    finally:
        await sink.stop()
