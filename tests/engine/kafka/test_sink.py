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


def test_a_write_while_the_sink_starts_waits_for_it(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted worker's first frame came while its sink still checked the topics: the agent crashed on an
    unset queue, and frames were lost (the SIGKILL fault test, 3 runs of 3)."""
    import orderbank.engine.kafka.sink as sink_module

    slow_checks = asyncio.Event()

    async def slow_ensure(settings: Settings) -> list[str]:
        created = await ensure(settings)
        slow_checks.set()
        await asyncio.sleep(1.0)  # the topic checks of a busy broker
        return created

    monkeypatch.setattr(sink_module, "ensure", slow_ensure)
    settings = unique_settings(broker.bootstrap)

    async def race() -> None:
        sink = Sink(settings)
        starting = asyncio.ensure_future(sink.start())
        await slow_checks.wait()
        outbox = Outbox()
        outbox.add(Topics(settings).positions.name, 0, b"k", b"v")
        try:
            await sink.write(outbox)  # raised AssertionError before the sink waited for its own start
        finally:
            await starting
            await sink.stop()

    asyncio.run(race())
    assert [(r.key, r.value) for r in read_topic(settings, Topics(settings).positions.name)] == [(b"k", b"v")]
