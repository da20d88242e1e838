"""The worker's stream processing inside the Faust app: the shard agent, its table and its outputs.

`install(app, settings)` wires, on one Faust app:
- the ingest (orderbank.engine.stream.ingest) that turns input messages into frames on the lanes topic, in a process
  of its own (orderbank.engine.stream.ingest_process) or as a service of the app;
- the `shards` agent on the lanes topic: one Faust event per frame, so Faust's per-message cost
  is paid once per thousand events. It folds each frame into its shard's OrderBank
  (orderbank.engine.stream.shards), then writes, in one acknowledged flush before the frame is acked: the
  rejected entries to the dead-letter topic, the changed orders to the `bank` table's changelog,
  and (every publish period, ten times longer while frames wait) the projection records chosen
  by orderbank.engine.stream.publish, in full (lane snapshots too) when the frame leaves the shard caught up and
  the snapshots' share of the time allows;
- the `bank` table: Faust owns its changelog topic, recovery and standby replicas; after each
  recovery the worker restores the shards it was given from the table (orderbank.projections.restore);
- the order guard: a shard applies its frames strictly in lanes-offset order, from the offset its
  changelog says it reached, and reads a partition again from there when a frame arrives early.
  Faust's stream drops, and acks, messages that arrive while its flow control is off or that
  were fetched in an older rebalance generation, so its committed offsets can pass frames that
  were never applied; the shard's own offset, not the group's commit, says where to resume;
- a timer that publishes a shard in full (lane snapshots included) once it has gone idle, and one
  that reads a shard's partition again when frames wait in Kafka but none has come for a while;
- a watchdog that, while Faust recovers the table, reads again a changelog partition whose records
  were fetched but never reached the recovery (RecoveryWatch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from faust.types import TP
from mode import Service

from orderbank.engine.kafka.sink import Outbox, Sink
from orderbank.engine.kafka.topics import BANK_TABLE, Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import Entry, FrameError, unpack
from orderbank.engine.stream.ingest import Ingest, Progress, partition_for
from orderbank.engine.stream.ingest_process import IngestProcess
from orderbank.engine.stream.metrics import Metrics
from orderbank.engine.stream.publish import CANCELLATIONS, POOL, POSITIONS, QUEUE, Publisher
from orderbank.engine.stream.shards import Shard, restore_shard
from orderbank.projections.codec import Rejection

log = logging.getLogger(__name__)
FRAMES_IN_FLIGHT = 8
CATCH_UP_SLOWDOWN = 10  # publish and snapshot period multiplier while a shard has a backlog ...
CATCH_UP_SHARE = 0.05  # ... and the most of its time publishing positions may take then
RESEEK_AFTER_S = 2.0  # seek again if the frames sought have not come (a rebalance may have moved the position)
STALLED_AFTER_S = 3.0  # no frame for this long while Kafka holds unapplied ones: read the partition again
RECOVERY_STALLED_AFTER_S = 10.0  # a recovering changelog partition whose applied offset stood still this long
SNAPSHOT_SHARE = 0.1
"""Most of a worker's time that lane snapshots may take. Every ETA moves with the clock, so a lane's
snapshot is rewritten whole (~0.3 s for 150,000 open orders); a shard that goes idle after every
few events (a quiet live stream) would otherwise rewrite it after every few events."""


@dataclass
class SnapshotBudget:
    """The lane-snapshot time a shard may still spend: it refills at SNAPSHOT_SHARE of the clock up to
    `cap` seconds, and each snapshot spends what it took. A shard snapshots when caught up or idle
    while some is left, so a quiet live stream's snapshots take at most SNAPSHOT_SHARE of the time,
    and the snapshot that ends a catch-up is not held back by one taken a moment before."""

    cap: float
    seconds: float = field(init=False)
    at: float = 0.0  # monotonic time of the last spending

    def __post_init__(self) -> None:
        self.seconds = self.cap

    def left(self, now: float) -> float:
        return min(self.cap, self.seconds + SNAPSHOT_SHARE * (now - self.at))

    def spend(self, now: float, cost: float) -> None:
        self.seconds, self.at = self.left(now) - cost, now


@dataclass
class Held:
    """A shard this worker owns, with its publisher and clocks (monotonic seconds)."""

    shard: Shard
    publisher: Publisher
    budget: SnapshotBudget
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    published_at: float = 0.0
    publish_seconds: float = 0.0  # what the last publish of positions and figures took
    snapshot_at: float = 0.0  # monotonic time of its last lane snapshots (at first, of its restore)
    caught_up: bool = True  # whether its last frame left no frame waiting in Kafka
    publishing: int | None = None  # the frame whose outputs, a full publish, are being written
    written_wall: float | None = None  # wall-clock time the last frame's outputs were acknowledged
    published_wall: float | None = None  # ... and the last full publish
    sought: tuple[int, float] | None = None  # the lanes offset read again from, and when (monotonic)


def snapshots_due(held: Held, now: float, settings: Settings, *, catching_up: bool = False) -> bool:
    """Whether a publish takes the lane snapshots too. A caught-up (or idle) shard: while its budget
    lasts, and in any case `snapshot_interval_s` after the last ones. A shard catching up:
    `CATCH_UP_SLOWDOWN` times less often, since the frames waiting will move every position of the
    snapshot before it is written (a launch's lane: ~0.5 s and 20 MB each), and the catch-up ends
    with one anyway."""
    if catching_up:
        return now - held.snapshot_at >= settings.snapshot_interval_s * CATCH_UP_SLOWDOWN
    return held.budget.left(now) > 0 or now - held.snapshot_at >= settings.snapshot_interval_s


def idle_publish_due(held: Held, now: float, settings: Settings) -> bool:
    """Whether a shard with unpublished changes is to be published in full, lane snapshots included:
    once no frame came for `idle_after_s` and its snapshots are due. A shard whose last frame left
    frames waiting is catching up, not idle: a pause in their delivery (the stall watchdog's
    business) is waited out for `snapshot_interval_s` first."""
    quiet = settings.idle_after_s if held.caught_up else settings.snapshot_interval_s
    return now - held.shard.last_frame_at >= quiet and snapshots_due(held, now, settings)


@dataclass
class RecoveryWatch:
    """Which changelog partitions Faust's table recovery waits on in vain.

    Faust 0.15 sometimes loses a whole batch of changelog records between its consumer and the
    recovery when a worker takes over partitions (seen in CI and in 2 of 78 repeated takeovers of
    tests/test_stream_cluster.py on 2 cores, one loaded): the consumer's position is past the last record, the
    recovery has applied none of them and waits forever, and the worker never serves its new shards.
    A partition is stalled when recovery still needs its records and its applied offset has not
    moved for RECOVERY_STALLED_AFTER_S; the runtime then reads it again if the consumer is past it."""

    seen: dict[Any, tuple[int, float]] = field(default_factory=dict)  # tp -> (applied offset, since when)

    def stalled(self, remaining: Mapping[Any, int], offsets: Mapping[Any, int], now: float) -> list[Any]:
        for tp in list(self.seen):
            if remaining.get(tp, 0) <= 0:
                del self.seen[tp]
        out = []
        for tp, left in remaining.items():
            if left <= 0:
                continue
            offset = offsets[tp]
            seen = self.seen.get(tp)
            if seen is None or seen[0] != offset:
                self.seen[tp] = (offset, now)
            elif now - seen[1] >= RECOVERY_STALLED_AFTER_S:
                out.append(tp)
        return out

    def retried(self, tp: Any, now: float) -> None:
        """Give a partition read again the full time to make progress."""
        self.seen[tp] = (self.seen[tp][0], now)


def dead_letter_headers(topic: str, entry: Entry, rejection: Rejection) -> list[tuple[str, bytes]]:
    """Why and where from, as Kafka headers; the record's key and value stay the original bytes."""
    fields = {"reason": rejection.reason.value, "rule": rejection.rule, "field": rejection.field,
              "message": rejection.message, "order_id": rejection.order_id, "event_id": rejection.event_id,
              "source.topic": topic, "source.partition": str(entry.partition), "source.offset": str(entry.offset)}
    return [(f"orderbank.{name}", value.encode()) for name, value in fields.items() if value is not None]


class RecoveryWatchdog(Service):
    """Runs RecoveryWatch while the app recovers its table. A service the app starts with itself:
    Faust starts timers and `app.service`s only once the first recovery is over."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(STALLED_AFTER_S / 2)
            if self.runtime.app.in_recovery:
                await self.runtime.resume_stalled_recovery()
            else:  # the next recovery starts its clocks anew
                self.runtime.recovery_watch.seen.clear()


class Runtime:
    """The shards this worker owns and the services that feed and drain them."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app, self.settings, self.topics = app, settings, Topics(settings)
        self.metrics = Metrics()
        self.sink = Sink(settings)
        self.ingest: Ingest | IngestProcess = (
            IngestProcess(settings, on_fatal=app.crash) if settings.ingest == "process"
            else Ingest(settings, self.sink, on_fatal=app.crash))
        self.held: dict[int, Held] = {}
        self.table: Any = None
        self.recovery_watch = RecoveryWatch()
        self._outputs = {POSITIONS: self.topics.positions.name, QUEUE: self.topics.queue.name,
                         POOL: self.topics.pool.name, CANCELLATIONS: self.topics.cancellations.name}

    # -- ownership ---------------------------------------------------------------------------
    def adopt(self, actives: Iterable[Any]) -> None:
        """Restore the lanes partitions newly given to this worker from the recovered table."""
        lanes = self.topics.lanes.name
        mine = {tp.partition for tp in actives if tp.topic == lanes}
        self.drop(p for p in list(self.held) if p not in mine)
        for partition in sorted(mine - self.held.keys()):
            self._restore(partition)

    def _restore(self, partition: int) -> Held:
        started = time.perf_counter()
        shard = restore_shard(partition, self.table.items(), self.settings.bank)
        held = self.held[partition] = Held(
            shard, Publisher(partition, self.settings.position_bucket_ratio, self.settings.snapshot_page_size),
            SnapshotBudget(SNAPSHOT_SHARE * self.settings.snapshot_interval_s), snapshot_at=time.monotonic())
        log.info("shard %d: restored %d orders in %.2fs", partition, len(shard.bank.orders),
                 time.perf_counter() - started)
        return held

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in list(partitions):
            if self.held.pop(partition, None) is not None:
                log.info("shard %d: handed over", partition)

    # -- processing --------------------------------------------------------------------------
    async def on_frame(self, partition: int, offset: int, raw: bytes) -> asyncio.Future[None] | None:
        """Fold one frame and submit its outputs; the future completes once they are durable."""
        # Recovery callbacks normally restore a shard before its first frame arrives.
        held = self.held.get(partition) or self._restore(partition)
        if offset > held.shard.offset + 1 and not await self._missing_frames_gone(held, offset):
            return None
        started = time.perf_counter()
        try:
            frame = unpack(raw)
        except FrameError as exc:
            log.error("shard %d: skipping lanes offset %d: %s", partition, offset, exc)
            return None
        async with held.lock:
            shard, bank = held.shard, held.shard.bank
            counts = (bank.applied, bank.duplicates)
            rejected = shard.apply(frame, offset)
            if rejected is None:
                return None
            outbox, deadletter = Outbox(), self.topics.deadletter
            for entry, rejection in rejected:
                outbox.add(deadletter.name, partition_for(entry.key, deadletter.partitions), entry.key,
                           entry.value, dead_letter_headers(frame.topic, entry, rejection))
                self.metrics.rejections.labels(rejection.reason.value).inc()
            outbox.extend(self.topics.changelog.name, partition, shard.changelog())
            now, lag = time.monotonic(), self._lag(partition, offset)
            held.caught_up = not lag
            # While frames wait, publish less often: later frames would move the same positions again
            # (a launch's lane of 300,000 orders takes ~1.5 s to publish). Caught up, publish in full
            # (lane snapshots too) as soon as their share of the time allows.
            period = (max(self.settings.publish_interval_s * CATCH_UP_SLOWDOWN, held.publish_seconds / CATCH_UP_SHARE)
                      if lag else self.settings.publish_interval_s)
            full = False
            if now - held.published_at >= period:
                full = snapshots_due(held, now, self.settings, catching_up=bool(lag))
                self._publish(held, outbox, snapshot=full)
            published = offset if full and not lag else None  # the offset whose whole state these outputs carry
            if published is not None:
                held.publishing = published
            written = await self.sink.submit(outbox)
        self.metrics.applied.inc(bank.applied - counts[0])
        self.metrics.duplicates.inc(bank.duplicates - counts[1])
        self.metrics.batch_events.observe(len(frame.entries))
        written.add_done_callback(lambda _: self._written(held, started, published))
        return written

    async def _missing_frames_gone(self, held: Held, offset: int) -> bool:
        """Whether the frames before `offset` that this shard has not applied no longer exist.

        Frames skipped on the way (see the module docstring) are read again instead: the early
        frame is left for the second pass. Only frames deleted by the lanes topic's retention are
        given up, loudly."""
        now = time.monotonic()
        if held.sought is not None and held.sought[0] > held.shard.offset and now - held.sought[1] < RESEEK_AFTER_S:
            return False  # already reading them again; frames fetched before the seek still drain
        log.warning("shard %d: frame %d came before frames %d..%d", held.shard.partition, offset,
                    held.shard.offset + 1, offset - 1)
        return await self._read_again(held, offset)

    async def resume_stalled_recovery(self) -> None:
        """Read a changelog partition again that the table's recovery waits on in vain (RecoveryWatch)."""
        recovery: Any = self.app.tables.recovery  # type: ignore[attr-defined]  # TableManager's, not in its protocol
        now = time.monotonic()
        for tp in self.recovery_watch.stalled(recovery.active_remaining(), recovery.active_offsets, now):
            offset, highwater = recovery.active_offsets[tp], recovery.active_highwaters[tp]
            try:
                position = await self.app.consumer.position(tp)
                if position is None or position <= highwater:
                    continue  # its records are still to come
                log.warning("recovery of %s stalled at offset %d of %d though the consumer is at %d: "
                            "reading it again", tp, offset, highwater, position)
                await self.app.consumer.seek_wait({tp: offset + 1})
            except (TimeoutError, KafkaError, IllegalStateError) as exc:  # revoked meanwhile: a new recovery
                log.warning("could not read %s again: %r", tp, exc)
                continue
            self.metrics.recovery_rereads.inc()
            self.recovery_watch.retried(tp, now)

    async def resume_stalled(self) -> None:
        """Read a shard's partition again from its next frame when Kafka holds frames it has not
        applied and none has come for a while: whatever held up Faust's delivery (a position left
        behind by a rebalance), the shard's offset says where to resume."""
        if self.app.rebalancing or self.app.in_recovery:
            return
        now, lanes = time.monotonic(), self.topics.lanes.name
        quiet = {TP(lanes, p): held for p, held in list(self.held.items())
                 if now - max(held.shard.last_frame_at, held.sought[1] if held.sought else 0.0) >= STALLED_AFTER_S}
        if not quiet:
            return
        try:
            ends = await self.app.consumer.highwaters(*quiet)
        except (TimeoutError, KafkaError) as exc:  # the broker is away: nothing can be read meanwhile anyway
            log.warning("could not read the lanes end offsets: %r", exc)
            return
        for tp, held in quiet.items():
            if ends.get(tp, 0) > held.shard.offset + 1 and self.held.get(tp.partition) is held:
                log.warning("shard %d: frames up to %d wait in Kafka but none came for %.0fs", tp.partition,
                            ends[tp] - 1, now - held.shard.last_frame_at)
                await self._read_again(held, None)

    async def _read_again(self, held: Held, offset: int | None) -> bool:
        """Seek the shard's partition to its next frame; True if that frame is gone (retention) and
        the frame at `offset`, if one came, is the next that exists."""
        expected, tp = held.shard.offset + 1, TP(self.topics.lanes.name, held.shard.partition)
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp, 0)
        if earliest > expected:
            log.error("shard %d: lanes offsets %d..%d were deleted by retention before being applied",
                      held.shard.partition, expected, earliest - 1)
            if offset is not None and offset <= earliest:
                return True
            expected = earliest
        self.metrics.rereads.inc()
        try:
            await self.app.consumer.seek_wait({tp: expected})
        except (TimeoutError, IllegalStateError) as exc:  # revoked meanwhile: its new owner reads them
            log.warning("shard %d: could not seek back to %d: %r", held.shard.partition, expected, exc)
            return False
        log.info("shard %d: reading again from lanes offset %d", held.shard.partition, expected)
        held.sought = (expected, time.monotonic())
        return False

    def _lag(self, partition: int, offset: int) -> int:
        """Frames of this shard in Kafka after `offset` (as far as the consumer has seen)."""
        highwater = self.app.consumer.highwater(TP(self.topics.lanes.name, partition))
        lag = max(0, (highwater or 0) - offset - 1)
        self.metrics.lag.labels(self.topics.lanes.name, str(partition)).set(lag)
        return lag

    def _written(self, held: Held, started: float, published: int | None) -> None:
        """A frame's outputs are durable; `published`: its offset, when they were a full publish."""
        held.written_wall = time.time()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        if published is not None and held.publishing == published:
            held.publishing = None
            if held.shard.offset == published:  # and no frame came since
                held.shard.unpublished, held.published_wall = False, held.written_wall

    def _publish(self, held: Held, outbox: Outbox, *, snapshot: bool) -> None:
        shard, publisher, now = held.shard, held.publisher, time.monotonic()
        records = publisher.positions(shard.bank, shard.touched) + publisher.figures(shard.bank)
        shard.touched = set()
        held.publish_seconds = time.monotonic() - now
        if snapshot:
            started = time.monotonic()
            records += publisher.lane_snapshots(shard.bank)
            held.snapshot_at = started
            held.budget.spend(started, time.monotonic() - started)
        by_projection: dict[str, list[tuple[bytes, bytes | None]]] = {}
        for projection, key, value in records:
            by_projection.setdefault(projection, []).append((key, value))
        for projection, pairs in by_projection.items():
            outbox.extend(self._outputs[projection], shard.partition, pairs)
            self.metrics.published.labels(projection).inc(len(pairs))
        held.published_at = now

    async def publish_idle(self) -> None:
        """Publish in full every shard that has unpublished changes and no frame for a while."""
        for held in list(self.held.values()):
            shard = held.shard
            # A frame's full publish being written publishes that frame's state: no need to repeat it.
            if (shard.unpublished and held.publishing != shard.offset
                    and idle_publish_due(held, time.monotonic(), self.settings)):
                async with held.lock:
                    outbox, offset = Outbox(), shard.offset
                    self._publish(held, outbox, snapshot=True)
                    written = await self.sink.submit(outbox)
                await written
                held.published_wall = time.time()
                shard.unpublished = shard.offset != offset  # frames that came meanwhile are published next

    def ingest_progress(self) -> Progress:
        """The ingest's state, its counts since the last call added to the metrics."""
        progress = self.ingest.progress()
        self.metrics.ingested.inc(progress.forwarded)
        for seconds in progress.write_seconds:
            self.metrics.forward_seconds.observe(seconds)
        for partition, lag in progress.lag.items():
            self.metrics.lag.labels(self.topics.events.name, str(partition)).set(lag)
        return progress

    def render_metrics(self) -> bytes:
        self.ingest_progress()
        return self.metrics.render()

    def health(self) -> dict[str, Any]:
        ingest = self.ingest_progress()
        return {"status": "ok", "worker": self.settings.worker_id,
                "shards": {str(p): {**h.shard.health(), "written_at": h.written_wall, "published_at": h.published_wall}
                           for p, h in sorted(self.held.items())},
                "ingest": {"partitions": ingest.partitions, "lag": sum(ingest.lag.values()),
                           "first_fetch_at": ingest.first_fetch_at}}


def install(app: faust.App, settings: Settings) -> Runtime:
    """Add the table, the agent, the timer and the services to `app`; returns the runtime."""
    runtime = Runtime(app, settings)
    spec = runtime.topics.lanes
    lanes = app.topic(spec.name, partitions=spec.partitions, internal=True, config=dict(spec.config),
                      key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    # bytes keys and values make Faust use its raw codec for the changelog, in writes and in recovery.
    runtime.table = app.Table(BANK_TABLE, partitions=spec.partitions, key_type=bytes, value_type=bytes,
                              help="order states and shard counters, restored into OrderBanks")

    @app.agent(lanes, name="shards")
    async def shards(stream: Any) -> None:
        # Acks are manual: a frame is acked once its outputs are durable, while the next frames are
        # already being folded (at most FRAMES_IN_FLIGHT unacknowledged).
        stream = stream.noack()
        window = asyncio.Semaphore(FRAMES_IN_FLIGHT)
        acking: set[asyncio.Future[None]] = set()  # keeps the ack tasks referenced until they end

        async def ack_when_written(event: Any, written: asyncio.Future[None] | None) -> None:
            try:
                if written is not None:
                    await written
                await stream.ack(event)
            except Exception as exc:
                # Later outputs could land after a lost one: stop, and restart from the changelog.
                await app.crash(exc)
            finally:
                window.release()

        async for event in stream.events():
            written = await runtime.on_frame(event.message.partition, event.message.offset, event.value)
            await window.acquire()
            acking.add(asyncio.ensure_future(ack_when_written(event, written)))
            acking.difference_update([task for task in acking if task.done()])

    @runtime.table.on_recover  # type: ignore[untyped-decorator]
    async def restore_assigned() -> None:
        runtime.adopt(app.assignor.assigned_actives())

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def hand_over(sender: Any, revoked: set[Any], **_: Any) -> None:
        runtime.drop(tp.partition for tp in revoked if tp.topic == spec.name)

    @app.timer(interval=min(0.1, settings.idle_after_s))  # type: ignore[untyped-decorator]
    async def publish_idle() -> None:
        await runtime.publish_idle()

    @app.timer(interval=STALLED_AFTER_S / 2)  # type: ignore[untyped-decorator]
    async def resume_stalled() -> None:
        await runtime.resume_stalled()

    # Faust starts service instances too, though its annotation names classes only.
    app.service(runtime.sink)  # type: ignore[arg-type]
    app.service(runtime.ingest)  # type: ignore[arg-type]
    app.add_dependency(RecoveryWatchdog(runtime))
    return runtime
