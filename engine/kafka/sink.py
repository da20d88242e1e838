"""Bulk writes to Kafka: one idempotent producer, records packed into per-partition batches.

aiokafka's `send()` costs a future and a lookup per message; an `Outbox` instead collects records
per topic partition and the sink appends them straight into batch builders. Outboxes are
submitted to one sender task, which hands their batches to the producer strictly in submission
order (so a shard's changelog records never overtake each other) without waiting for the
broker; `submit()` returns a future that completes once every record of that outbox is
acknowledged. A caller that acks input only after that future never commits past lost output.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from mode import Service

from orderbank.engine.kafka.topics import Topics, ensure, message_limits
from orderbank.engine.settings import Settings
from orderbank.projections.errors import StreamError

log = logging.getLogger(__name__)
Headers = Sequence[tuple[str, bytes]]
MAX_BATCH_BYTES = 1024 * 1024  # of the producer's own batches (the producer API's sends)
BULK_BATCH_BYTES = 4 * 1024 * 1024
"""The sink's record batches, within each topic's max.message.bytes. An idempotent producer has one
request in flight per broker, with one batch per partition: a publish of 150,000 positions and a
lane snapshot (~35 MB) took 0.6 s to write in 1 MiB batches, ~0.3 s in 4 MiB ones."""
BROKER_DEFAULT_LIMIT = 1_048_588  # max.message.bytes of a topic that says nothing else
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def producer_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """The idempotent producer settings shared by the engine and the producer API."""
    return {**settings.kafka_kwargs(), "client_id": client_id, "acks": "all",
            "enable_idempotence": True, "linger_ms": 5, "max_batch_size": MAX_BATCH_BYTES,
            "max_request_size": MAX_REQUEST_BYTES, "request_timeout_ms": 30_000}


class Outbox:
    """Records to write together: add them, then `await sink.submit(outbox)`."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, Headers]]] = {}
        self.count = 0

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            headers: Headers = ()) -> None:
        self.records.setdefault((topic, partition), []).append((key, value, headers))
        self.count += 1

    def extend(self, topic: str, partition: int, pairs: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Add many records without headers at once (a None value is a tombstone)."""
        self.records.setdefault((topic, partition), []).extend([(key, value, ()) for key, value in pairs])
        self.count += len(pairs)


class Sink(Service):
    """The worker's producer and its ordered sender; started with the app or on first use."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._queue: asyncio.Queue[tuple[Outbox, asyncio.Future[None]]] | None = None
        self.batch_bytes: dict[str, int] = {}  # topic -> the size of the batches it takes
        self.failed: BaseException | None = None  # once a write is lost, nothing later may land
        # mode's maybe_start returns as soon as a start has begun: a frame arriving while this sink still
        # checks its topics (a restarted worker) would find no queue; it waits for this instead.
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        s = self.settings
        self._producer = AIOKafkaProducer(**producer_config(s, f"{s.app_id}-{s.worker_id}"))
        await self._producer.start()
        names = [spec.name for spec in Topics(s).all()]
        try:
            await ensure(s)  # so that the limits read are those of the engine's own topic configs
            limits = await message_limits(s, names)
        except KafkaError as exc:  # e.g. no DescribeConfigs right: the broker's default is safe
            log.warning("cannot read the topics' max.message.bytes (%r); writing batches of %d bytes at most",
                        exc, BROKER_DEFAULT_LIMIT)
            limits = {}
        # A batch's header comes on top of its records: keep a margin under the limit.
        self.batch_bytes = {name: min(BULK_BATCH_BYTES, limits.get(name, BROKER_DEFAULT_LIMIT) - 4096)
                             for name in names}
        self._queue = asyncio.Queue()
        self.add_future(self._sender(self._producer, self._queue))
        self._ready.set()

    async def started_up(self) -> None:
        """Start the sink if nobody has, and wait until it can take writes."""
        await self.maybe_start()
        await self._ready.wait()

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def partitions_for(self, topic: str) -> int:
        await self.started_up()
        assert self._producer is not None
        return len(await self._producer.partitions_for(topic))

    async def submit(self, outbox: Outbox) -> asyncio.Future[None]:
        """Queue an outbox for writing; the future completes when all of it is acknowledged."""
        await self.started_up()
        assert self._queue is not None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((outbox, done))
        return done

    async def write(self, outbox: Outbox) -> None:
        """Submit and wait for the acknowledgements."""
        await (await self.submit(outbox))

    async def _sender(self, producer: AIOKafkaProducer, queue: asyncio.Queue[tuple[Outbox, asyncio.Future[None]]],
                      ) -> None:
        while True:
            outbox, done = await queue.get()
            if self.failed is not None:
                done.set_exception(self.failed)
                continue
            try:
                acks = [await producer.send_batch(batch, topic, partition=partition)
                        for topic, partition, batch in _batches(outbox, self.batch_bytes)]
            except Exception as exc:  # the caller learns through its future, not this task
                self.failed = exc
                done.set_exception(exc)
                continue
            asyncio.gather(*acks).add_done_callback(functools.partial(self._settle, done))

    def _settle(self, done: asyncio.Future[None], acked: asyncio.Future[Any]) -> None:
        if acked.cancelled():
            self.failed = self.failed or asyncio.CancelledError("a write was cancelled")
            done.cancel()
        elif (exc := acked.exception()) is not None:
            self.failed = self.failed or exc
            done.set_exception(exc)
        else:
            done.set_result(None)


def _batches(outbox: Outbox, sizes: dict[str, int]) -> list[tuple[str, int, BatchBuilder]]:
    out = []
    for (topic, partition), items in outbox.records.items():
        size = sizes.get(topic, MAX_BATCH_BYTES)
        batch = BatchBuilder(size, 0)  # 0: no compression
        for key, value, headers in items:
            if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                out.append((topic, partition, batch))
                batch = BatchBuilder(size, 0)  # 0: no compression
                if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                    raise StreamError(f"a record of {len(value or b'')} bytes does not fit a batch of {topic}")
        out.append((topic, partition, batch))
    return out
