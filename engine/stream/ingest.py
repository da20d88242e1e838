"""Ingest: read the input topic in bulk and forward its events, as frames, to their lanes' shards.

Faust's consumer costs ~100 us per message, so the input topic (one event per message) is read by a
plain aiokafka consumer group (`<app_id>-ingest`) with `getmany`, as a service in a process of its
own beside the worker (orderbank.engine.stream.ingest_process) or inside its Faust app. Routing needs an order's
lane, which only its OrderPlaced says: the `LaneDirectory` learns it from the placements it forwards
(a cheap byte search, then msgspec for placements only) and, when given a partition, rebuilds itself
by scanning that partition up to the committed offset. A plan stream goes where its first
ProductionPlanned's lane is (orderbank.projections.plans), learnt alike. Events are not validated here: the shard
decodes them once and dead-letters rejections. Fetching goes on while earlier batches are written;
each batch's offsets are committed, in order, only after its frames are acknowledged (at-least-once;
the reducer ignores redeliveries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.kafka.sink import Outbox, Sink
from orderbank.engine.kafka.topics import Topics, ensure
from orderbank.engine.kafka.transport import FETCH_MAX_WAIT_MS
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import FrameBuilder
from orderbank.projections.bank import BankSettings
from orderbank.projections.events import OrderPlaced

log = logging.getLogger(__name__)
PLACED = b'"OrderPlaced"'
PLANNED = b'"ProductionPlanned"'
BATCHES_IN_FLIGHT = 8


class _Placement(msgspec.Struct):
    """What routing reads of an event: its type, and a placement's or a plan's model and trim (any JSON:
    checked here)."""

    type: Any = None
    model: Any = None
    trim: Any = None


_PLACEMENT = msgspec.json.Decoder(_Placement)


class LaneDirectory:
    """Which shard each order of an input partition goes to, learnt from its first OrderPlaced."""

    def __init__(self, bank: BankSettings, shards: int) -> None:
        self.bank, self.shards = bank, shards
        self.orders: dict[int, dict[bytes, int]] = {}  # input partition -> order key -> shard
        self._lanes: dict[str, int] = {}  # lane -> shard

    def shard_of(self, partition: int, key: bytes | None, value: bytes) -> int:
        """The shard for this message; orders never placed go by key (their shard rejects them).
        Only partitions this worker has adopted (and rebuilt) may be routed."""
        known = self.orders[partition]
        if key is not None and (PLACED in value or PLANNED in value) and key not in known:
            shard = self._placement_shard(value)
            if shard is not None:
                known[key] = shard
        shard = known.get(key) if key is not None else None
        return partition_for(key, self.shards) if shard is None else shard

    def _placement_shard(self, value: bytes) -> int | None:
        try:
            placed = _PLACEMENT.decode(value)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None
        if not isinstance(placed.model, str):
            return None
        if placed.type == "OrderPlaced" and isinstance(placed.trim, str):
            # lane_of reads only model and trim; the placement is validated later, by its shard.
            lane = self.bank.lane_of(cast(OrderPlaced, placed))
        elif placed.type == "ProductionPlanned" and (placed.trim is None or isinstance(placed.trim, str)):
            lane = self.bank.plan_lane(placed.model, placed.trim)
        else:
            return None
        shard = self._lanes.get(lane)
        if shard is None:
            shard = self._lanes[lane] = partition_for(lane.encode(), self.shards)
        return shard

    def learn(self, partition: int, records: Iterable[Any]) -> None:
        """Adopt an input partition, knowing the lanes of the orders placed in these records."""
        self.orders[partition] = {}
        for record in records:
            self.shard_of(partition, record.key, record.value)

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.orders.pop(partition, None)


class IngestProgress(msgspec.Struct):
    """The ingest's figures for a worker's health view and metrics: its state, and what it did since
    the last report (events forwarded, seconds to write each fetched batch's frames)."""

    partitions: list[int] = msgspec.field(default_factory=list)  # input partitions it reads
    lag: dict[int, int] = msgspec.field(default_factory=dict)  # input partition -> messages not yet read
    first_fetch_at: float | None = None  # wall clock, for throughput figures
    forwarded: int = 0
    write_seconds: list[float] = msgspec.field(default_factory=list)

    def add(self, later: IngestProgress) -> None:
        """Take a later report's state, and add its counts to these."""
        self.partitions, self.lag, self.first_fetch_at = later.partitions, later.lag, later.first_fetch_at
        self.forwarded += later.forwarded
        self.write_seconds += later.write_seconds


class Ingest(Service):
    """The input topic's consumer group member of a worker (in the worker, or in a process beside it)."""

    def __init__(self, settings: Settings, sink: Sink, on_fatal: Callable[[BaseException], Awaitable[None]],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.sink, self.on_fatal = settings, sink, on_fatal
        self.topics = Topics(settings)
        self.directory = LaneDirectory(settings.bank, settings.shard_partitions)
        self.consumer: AIOKafkaConsumer | None = None
        self._window = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        self._committed: asyncio.Future[None] | None = None  # the latest batch's commit, chained in order
        self._progress = IngestProgress()

    def progress(self) -> IngestProgress:
        """Its state and what it did since the last call."""
        done, self._progress = self._progress, IngestProgress(lag=self._progress.lag,
                                                        first_fetch_at=self._progress.first_fetch_at)
        done.partitions = sorted(self.directory.orders)
        done.lag = {p: done.lag[p] for p in done.partitions if p in done.lag}  # not those revoked meanwhile
        return done

    def _consumer(self, group: str | None) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            **s.kafka_kwargs(), group_id=group, client_id=f"{s.app_id}-ingest-{s.worker_id}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed" if s.processing_guarantee == "exactly_once" else "read_uncommitted",
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.session_timeout_s * 1000 / 4))

    async def on_start(self) -> None:
        await ensure(self.settings)
        self.directory.shards = await self.sink.partitions_for(self.topics.lanes.name)
        self.consumer = self._consumer(f"{self.settings.app_id}-ingest")
        self.consumer.subscribe([self.topics.events.name], listener=_Rebalance(self))
        await self.consumer.start()
        self.add_future(self._run())

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def _run(self) -> None:
        assert self.consumer is not None
        try:
            while not self.should_stop:
                await self._window.acquire()
                batch = self._routable(await self.consumer.getmany(timeout_ms=200, max_records=20_000))
                if not batch:
                    self._window.release()
                    continue
                self._progress.first_fetch_at = self._progress.first_fetch_at or time.time()
                written = await self._forward(batch)  # routes without yielding: no rebalance in between
                self._committed = asyncio.ensure_future(self._commit(batch, written, self._committed))
        except Exception as exc:
            await self.on_fatal(exc)  # nothing was committed past the failure: a restart resumes there

    def _routable(self, batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, list[Any]]:
        """The records of partitions whose lanes are known; the others were revoked meanwhile (their
        new owner reads them) or are still being rebuilt (read again from where they started)."""
        assert self.consumer is not None
        out = {}
        for tp, records in batch.items():
            if tp.partition in self.directory.orders:
                out[tp] = records
            elif tp in self.consumer.assignment():
                self.consumer.seek(tp, records[0].offset)
        return out

    async def settled(self) -> None:
        """Wait until every fetched batch is written and committed (or has failed)."""
        if self._committed is not None:
            await asyncio.wait([self._committed])

    async def _forward(self, batch: dict[TopicPartition, list[Any]]) -> asyncio.Future[None]:
        """Submit a fetched batch as frames; the future completes once they are acknowledged."""
        assert self.consumer is not None
        outbox, frames = Outbox(), dict[int, FrameBuilder]()
        lanes_topic, events_topic, lag = self.topics.lanes.name, self.topics.events.name, self._progress.lag
        limit_events, limit_bytes = self.settings.frame_events, self.settings.frame_bytes
        shard_of, count = self.directory.shard_of, 0
        for tp, records in batch.items():
            for record in records:
                value = record.value or b""  # a null value is dead-lettered as empty, malformed JSON
                shard = shard_of(tp.partition, record.key, value)
                frame = frames.get(shard)
                if frame is None:
                    frame = frames[shard] = FrameBuilder(events_topic)
                frame.add(tp.partition, record.offset, record.key, value)
                if frame.count >= limit_events or frame.size >= limit_bytes:
                    _emit(outbox, lanes_topic, shard, frames.pop(shard))
            count += len(records)
            lag[tp.partition] = max(0, (self.consumer.highwater(tp) or 0) - records[-1].offset - 1)
        for shard, frame in frames.items():
            _emit(outbox, lanes_topic, shard, frame)
        self._progress.forwarded += count
        return await self.sink.submit(outbox)

    async def _commit(self, batch: dict[TopicPartition, list[Any]], written: asyncio.Future[None],
                      previous: asyncio.Future[None] | None) -> None:
        """Commit a batch's offsets once its frames are durable, after the batches fetched before it."""
        assert self.consumer is not None
        started = time.perf_counter()
        try:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await written
            except Exception as exc:
                await self.on_fatal(exc)
                return
            self._progress.write_seconds.append(time.perf_counter() - started)
            try:
                await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
            except (CommitFailedError, IllegalStateError) as exc:
                # Partitions moved meanwhile: their new owner re-reads them; the reducer drops the duplicates.
                # When the new owner is this consumer, its fetch position is already past the batch, so
                # read it again: otherwise its offsets stay uncommitted until more input arrives.
                log.warning("ingest commit skipped after a rebalance, re-reading the batch: %s", exc)
                for tp, records in batch.items():
                    if tp in self.consumer.assignment():
                        self.consumer.seek(tp, records[0].offset)
        finally:
            self._window.release()

    async def rebuild(self, partitions: list[TopicPartition]) -> None:
        """Learn the lanes of the orders already forwarded from these partitions, then adopt them."""
        assert self.consumer is not None
        ends = {tp: await self.consumer.committed(tp) or 0 for tp in partitions}
        seen: dict[TopicPartition, list[Any]] = {tp: [] for tp in partitions}
        started = time.perf_counter()
        if any(ends.values()):
            scanner = self._consumer(None)
            await scanner.start()
            try:
                pending = {tp for tp, end in ends.items() if end}
                scanner.assign(list(pending))
                await scanner.seek_to_beginning(*pending)
                while pending:
                    for tp, records in (await scanner.getmany(timeout_ms=500, max_records=50_000)).items():
                        seen[tp] += [r for r in records if r.offset < ends[tp]
                                     and (PLACED in (r.value or b"") or PLANNED in (r.value or b""))]
                        if records and records[-1].offset + 1 >= ends[tp]:
                            pending.discard(tp)
                            scanner.pause(tp)
            finally:
                await scanner.stop()
        for tp, placements in seen.items():
            self.directory.learn(tp.partition, placements)
        log.info("ingest: rebuilt order lanes of %s in %.2fs", sorted(tp.partition for tp in ends),
                 time.perf_counter() - started)


def _emit(outbox: Outbox, topic: str, shard: int, frame: FrameBuilder) -> None:
    outbox.add(topic, shard, str(shard).encode(), frame.build())


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.ingest.settled()  # let the batches in hand be written and committed first
        self.ingest.directory.forget(tp.partition for tp in revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        known = self.ingest.directory.orders
        await self.ingest.rebuild([tp for tp in assigned if tp.partition not in known])
