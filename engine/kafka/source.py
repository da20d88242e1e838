"""A Kafka topic as a replay's history: the input topic read from its earliest offset (or from a
time) up to the end it had when the read began, partitions merged by record timestamp.

Each order's events share a partition (the key is order_id), so merging by timestamp keeps every
order's own sequence and gives the loader a log in time order, as a log file would.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orderbank.engine.kafka.security import KafkaSecurity
from orderbank.projections.errors import StreamError
from orderbank.replay.source import BLOCK_BYTES


@dataclass(frozen=True)
class KafkaSource:
    bootstrap: str
    topic: str
    since: datetime | None = None
    security: KafkaSecurity | None = None
    fetch_records: int = 20_000

    @property
    def name(self) -> str:
        return f"kafka:{self.topic}" + (f"@{self.since.isoformat()}" if self.since else "")

    def lines(self) -> Iterator[bytes]:
        loop = asyncio.new_event_loop()  # the replay is synchronous: aiokafka runs on a private loop
        try:
            yield from _merged(loop, self)
        finally:
            loop.close()

    def blocks(self) -> Iterator[memoryview]:
        block: list[bytes] = []
        size = 0
        for line in self.lines():
            block.append(line)
            size += len(line) + 1
            if size >= BLOCK_BYTES:
                yield memoryview(b"\n".join(block) + b"\n")
                block, size = [], 0
        if block:
            yield memoryview(b"\n".join(block) + b"\n")


def _merged(loop: asyncio.AbstractEventLoop, source: KafkaSource) -> Iterator[bytes]:
    """Every record value from the start point to the end offsets, smallest timestamp first."""
    consumer, ends, pending = loop.run_until_complete(_opened(source))
    try:
        buffers: dict[TopicPartition, deque[Any]] = {tp: deque() for tp in ends}
        heads: list[tuple[int, int, int, TopicPartition]] = []
        in_heads: set[TopicPartition] = set()
        while True:
            # Only when every partition still to read has a record at hand is the smallest head
            # timestamp the smallest of all that remain.
            while any(tp not in in_heads and not buffers[tp] for tp in pending):
                fetched = loop.run_until_complete(_fetch(consumer, source.fetch_records, ends, pending))
                for tp, records in fetched.items():
                    buffers[tp].extend(r for r in records if r.offset < ends[tp])
            for tp, buffer in buffers.items():
                if buffer and tp not in in_heads:
                    heapq.heappush(heads, (buffer[0].timestamp, tp.partition, buffer[0].offset, tp))
                    in_heads.add(tp)
            if not heads:
                return
            _, _, _, tp = heapq.heappop(heads)
            in_heads.discard(tp)
            record = buffers[tp].popleft()
            if record.value:
                yield record.value.strip()
    finally:
        loop.run_until_complete(consumer.stop())


async def _opened(source: KafkaSource) -> tuple[AIOKafkaConsumer, dict[TopicPartition, int], set[TopicPartition]]:
    """A consumer positioned at the start point of every partition; their end offsets; those with records."""
    kwargs: dict[str, Any] = source.security.aiokafka_kwargs() if source.security else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=source.bootstrap, **kwargs)
    await admin.start()
    try:
        (meta,) = await admin.describe_topics([source.topic])
    finally:
        await admin.close()
    if meta["error_code"]:
        raise StreamError(f"topic {source.topic!r} cannot be read at {source.bootstrap} "
                         f"(Kafka error code {meta['error_code']})")
    consumer = AIOKafkaConsumer(bootstrap_servers=source.bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", **kwargs)
    await consumer.start()
    tps = [TopicPartition(source.topic, p) for p in range(len(meta["partitions"]))]
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    starts = await _starts(consumer, tps, source.since)
    for tp in tps:
        consumer.seek(tp, starts[tp])
    return consumer, ends, {tp for tp in tps if starts[tp] < ends[tp]}


async def _fetch(consumer: AIOKafkaConsumer, most: int, ends: dict[TopicPartition, int],
                 pending: set[TopicPartition]) -> dict[TopicPartition, list[Any]]:
    """The next records; a partition read up to its end offset leaves `pending` and is paused."""
    fetched: dict[TopicPartition, list[Any]] = await consumer.getmany(timeout_ms=500, max_records=most)
    for tp, records in fetched.items():
        if records and records[-1].offset + 1 >= ends[tp]:
            pending.discard(tp)
            consumer.pause(tp)
    return fetched


async def _starts(consumer: AIOKafkaConsumer, tps: list[TopicPartition], since: datetime | None) -> dict[Any, int]:
    if since is None:
        return dict(await consumer.beginning_offsets(tps))
    found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
    ends = await consumer.end_offsets(tps)
    return {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in tps}
