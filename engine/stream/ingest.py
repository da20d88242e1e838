"""Ingest: read the input topic in bulk and forward its events, as frames, to their lanes' shards.

Faust's consumer costs ~100 us per message, so the input topic (one event per message) is read by a
plain aiokafka consumer group (`<app_id>-ingest`) with `getmany`, as a service in a process of its
own beside the worker (orderbank.engine.stream.ingest_process) or inside its Faust app. Routing needs
an order's lane, which only its OrderPlaced says (a plan stream's: its first ProductionPlanned); the
`LaneDirectory` routes so that each event is judged by a bank that decides it as the fold of the
input would (`route`), from what it learnt of each input partition's records in order (`Routes`),
and, when given a partition, rebuilds that by reading the partition up to the committed offset.
Fetching goes on while earlier batches are written; each batch's offsets are committed, in order,
only after its frames are acknowledged (at-least-once; the reducer ignores redeliveries).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from mode import Service

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.kafka.sink import Outbox, Sink
from orderbank.engine.kafka.topics import Topics, ensure
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import FrameBuilder
from orderbank.projections.bank import BankSettings, EventIds
from orderbank.projections.codec import Rejection, decode_batch, fast_path
from orderbank.projections.events import Event
from orderbank.projections.orders import check
from orderbank.projections.plans import plan_rule

log = logging.getLogger(__name__)
BATCHES_IN_FLIGHT = 8
FETCH_MIN_BYTES, FETCH_WAIT_MS = 512 * 1024, 50
"""The broker holds the ingest's fetch until this much input is there, or this many ms passed: a live
stream is forwarded in at most ~20 frames a second per shard (each costs the shard a Faust message, a
changelog write and an ack) instead of one frame per few events (bench/latency.py: at 3,000 events/s, ~150
tiny frames a second left the shard hundreds of frames behind); a backlog fills the fetch at once."""


class Routes:
    """What routing knows of one input partition, learnt from its records in order: the shard of each
    order whose placement a bank may accept, and which event took each event id.

    Memory: ~150 bytes per event (its id in EventIds, and the order placed), measured over a launch."""

    def __init__(self) -> None:
        self.orders: dict[bytes, int] = {}  # order key -> the shard of its lane
        self.event_ids = EventIds()


class Route(NamedTuple):
    """Where an input message goes, and what its shard learns of it with it (orderbank.engine.stream.frames.Entry)."""

    shard: int
    id_taken: bool = False
    checked: bool = False


class LaneDirectory:
    """Which shard each input message goes to, so that the stream's verdicts are the fold's.

    An order's events all share its input partition, in log order. An order is routed to its lane's
    shard from its first placement that a bank may apply: one that decodes, is keyed by its
    order_id, takes its event id and passes the placement rules that need no bank state (seq 1, one
    currency). Whether it applies there (a full lane refuses it) only that shard's bank knows, and
    it judges every later event of the order. Everything else goes where the same bytes always go,
    to a bank that judges them as the fold does: input that does not decode or is keyed by another
    order to the shard of its bytes; an event whose id another event took (marked `id_taken`), or
    of an order not placed yet (`unknown_order`, or its placement rule), to the shard of its key. So
    the same bad bytes, sent again, meet the bank that counted them (`OrderBank.reject`).
    Event ids are known per input partition: an id reused by an order of another input partition
    is caught only by a shard that judges both events."""

    def __init__(self, bank: BankSettings, shards: int) -> None:
        self.bank, self.shards = bank, shards
        self.partitions: dict[int, Routes] = {}  # the input partitions adopted (rebuilt), to route
        self._lanes: dict[str, int] = {}  # lane -> shard

    def route(self, routes: Routes, keys: Sequence[bytes | None], values: Sequence[bytes]) -> list[Route]:
        """Where each message of an input partition goes, in order; `routes` learns from them."""
        out = []
        orders, event_ids = routes.orders, routes.event_ids
        for key, value, event in zip(keys, values, decode_batch(values), strict=True):
            if isinstance(event, Rejection) or key != event.order_id.encode():
                out.append(Route(self._of_bytes(value)))
            elif event_ids.taken_by_another(event):
                out.append(Route(partition_for(key, self.shards), True, fast_path(event)))
            else:
                shard = orders.get(key)
                if shard is None:
                    lane = self._first_lane(event)
                    shard = partition_for(key, self.shards) if lane is None else self._lane_shard(lane)
                    if lane is not None:
                        orders[key] = shard
                out.append(Route(shard, False, fast_path(event)))
        return out

    def _first_lane(self, event: Event) -> str | None:
        """The lane of a stream's first event that a bank may apply with no state of its own: an order's
        placement, or a plan stream's first plan (orderbank.projections.plans); None for any other."""
        if event.type == "OrderPlaced":
            return self.bank.lane_of(event) if check(None, event) is None else None
        if event.type == "ProductionPlanned":
            return self.bank.plan_lane(event.model, event.trim) if plan_rule(None, event, False) is None else None
        return None

    def _lane_shard(self, lane: str) -> int:
        shard = self._lanes.get(lane)
        if shard is None:
            shard = self._lanes[lane] = partition_for(lane.encode(), self.shards)
        return shard

    def _of_bytes(self, value: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(value, digest_size=4).digest()) % self.shards

    def adopt(self, partition: int, routes: Routes) -> None:
        """Route an input partition's messages from now on, knowing what `routes` learnt of it."""
        self.partitions[partition] = routes

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.partitions.pop(partition, None)


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
        done.partitions = sorted(self.directory.partitions)
        done.lag = {p: done.lag[p] for p in done.partitions if p in done.lag}  # not those revoked meanwhile
        return done

    def _consumer(self, group: str | None) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            **s.kafka_kwargs(), group_id=group, client_id=f"{s.app_id}-ingest-{s.worker_id}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed" if s.processing_guarantee == "exactly_once" else "read_uncommitted",
            max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=FETCH_WAIT_MS, fetch_min_bytes=FETCH_MIN_BYTES,
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
            if tp.partition in self.directory.partitions:
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
        directory, count = self.directory, 0
        for tp, records in batch.items():
            values = [record.value or b"" for record in records]  # a null value is dead-lettered as empty JSON
            routes = directory.route(directory.partitions[tp.partition], [r.key for r in records], values)
            for record, value, (shard, id_taken, checked) in zip(records, values, routes, strict=True):
                frame = frames.get(shard)
                if frame is None:
                    frame = frames[shard] = FrameBuilder(events_topic)
                frame.add(tp.partition, record.offset, record.key, value, id_taken, checked)
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
        """Learn what routing knows of these partitions' messages already forwarded, then adopt them."""
        assert self.consumer is not None
        ends = {tp: await self.consumer.committed(tp) or 0 for tp in partitions}
        learnt = {tp: Routes() for tp in partitions}
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
                        forwarded = [r for r in records if r.offset < ends[tp]]
                        self.directory.route(learnt[tp], [r.key for r in forwarded],
                                             [r.value or b"" for r in forwarded])
                        if records and records[-1].offset + 1 >= ends[tp]:
                            pending.discard(tp)
                            scanner.pause(tp)
            finally:
                await scanner.stop()
        for tp, routes in learnt.items():
            self.directory.adopt(tp.partition, routes)
        log.info("ingest: rebuilt the routes of %s in %.2fs", sorted(tp.partition for tp in ends),
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
        known = self.ingest.directory.partitions
        await self.ingest.rebuild([tp for tp in assigned if tp.partition not in known])
