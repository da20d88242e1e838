"""A worker's shards at run time: fold each frame, write its outputs in one flush, keep frames in order.

The order guard: a shard applies its frames strictly in lanes-offset order, from the offset its changelog says
it reached, and reads a partition again from there when a frame arrives early. Faust's stream drops, and acks,
messages that arrive while its flow control is off or that were fetched in an older rebalance generation, so
its committed offsets can pass frames that were never applied; the shard's own offset, not the group's commit,
says where to resume. A frame's outputs (dead letters, changelog records, the projection records that
orderbank.engine.stream.publish chooses) are written in one acknowledged flush before the frame is acked.

No frame stops a shard: an event that raises is dead-lettered by the shard (orderbank.engine.stream.shards),
a publish that raises is skipped (the publisher starts over), and a lanes message that is no frame is stepped
over. Whatever else raises while a frame is folded crashes the shards agent, which Faust restarts; the frame,
never acknowledged, is read again. Each shard's counters and clocks say on /health whether it advances
(orderbank.engine.stream.vitals).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from faust.types import TP

from orderbank.engine.kafka.partitioning import partition_for
from orderbank.engine.kafka.sink import Outbox, Sink
from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import Entry, Frame, FrameError, unpack
from orderbank.engine.stream.ingest import Ingest, IngestProgress
from orderbank.engine.stream.ingest_process import IngestProcess
from orderbank.engine.stream.metrics import Metrics
from orderbank.engine.stream.publish import CANCELLATIONS, POOL, POSITIONS, QUEUE, FrozenLane, Publisher, Record
from orderbank.engine.stream.schedule import (
    SNAPSHOT_SHARE,
    Held,
    SnapshotBudget,
    catch_up_publish_period,
    idle_publish_due,
    live_publish_period,
    snapshots_due,
)
from orderbank.engine.stream.shards import restore_shard
from orderbank.engine.stream.vitals import DEGRADED, OK, Crashes, ShardState, verdict
from orderbank.projections.codec import Rejection

log = logging.getLogger(__name__)
RESEEK_AFTER_S = 2.0  # seek again if the frames sought have not come (a rebalance may have moved the position)
STALLED_AFTER_S = 3.0  # no frame for this long while Kafka holds unapplied ones: read the partition again
LIVE_LAG_FRAMES = 4  # frames waiting behind the one folded that still count as a live stream, not a backlog
SNAPSHOT_STEP_S = 0.01  # how long lane snapshots are built before frames waiting may be folded


def dead_letter_key(entry: Entry) -> bytes:
    """A dead letter's key: the same input bytes, the same key, so a re-sent rejection is recognisable
    (and lands in the same partition) wherever it came from."""
    return f"sha256:{hashlib.sha256(entry.value).hexdigest()}".encode()


def dead_letter_headers(topic: str, entry: Entry, rejection: Rejection) -> list[tuple[str, bytes]]:
    """Why and where from, as Kafka headers, with the original key; the record's value stays the original bytes."""
    fields = {"reason": rejection.reason.value, "rule": rejection.rule, "field": rejection.field,
              "message": rejection.message, "order_id": rejection.order_id, "event_id": rejection.event_id,
              "source.topic": topic, "source.partition": str(entry.partition), "source.offset": str(entry.offset)}
    # backslashreplace: a lone surrogate in a message (an exception's text) must not make the frame raise
    headers = [(f"orderbank.{name}", value.encode("utf-8", "backslashreplace"))
               for name, value in fields.items() if value is not None]
    return headers if entry.key is None else [*headers, ("orderbank.key", entry.key)]


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
        self.crashes = Crashes()
        self.table: Any = None
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
        held = self.held[partition] = Held(shard, self._publisher(partition),
                                           SnapshotBudget(SNAPSHOT_SHARE * self.settings.snapshot_interval_s),
                                           snapshot_at=time.monotonic())
        log.info("shard %d: restored %d orders in %.2fs", partition, len(shard.bank.orders),
                 time.perf_counter() - started)
        return held

    def _publisher(self, partition: int) -> Publisher:
        return Publisher(partition, self.settings.position_bucket_ratio, self.settings.snapshot_page_size)

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in list(partitions):
            held = self.held.pop(partition, None)
            if held is not None:
                for task in (held.snapshot, held.deferred):  # its new owner writes them
                    if task is not None:
                        task.cancel()
                log.info("shard %d: handed over", partition)

    # -- processing --------------------------------------------------------------------------
    async def on_frame(self, partition: int, offset: int, raw: bytes) -> asyncio.Future[None] | None:
        """Fold one frame and submit its outputs; the future completes once they are durable."""
        # Recovery callbacks normally restore a shard before its first frame arrives.
        held = self.held.get(partition) or self._restore(partition)
        if offset > held.shard.offset + 1 and not await self._missing_frames_gone(held, offset):
            return None
        try:
            return await self._fold(held, offset, raw)
        except Exception as exc:
            # The agent crashes and Faust restarts it (counted by `agent_crashed`); the frame is read again.
            held.vitals.failed += 1
            self.metrics.frames.labels(str(partition), "failed").inc()
            log.error("shard %d: the frame at lanes offset %d raised %r", partition, offset, exc)
            raise

    async def _fold(self, held: Held, offset: int, raw: bytes) -> asyncio.Future[None] | None:
        if offset <= held.shard.offset:
            return None  # a redelivery
        started, partition = time.perf_counter(), held.shard.partition
        try:
            frame, outcome = unpack(raw), "applied"
        except FrameError as exc:
            # Not a frame this code wrote: folded as a frame without events, so the shard moves past it.
            log.error("shard %d: skipping lanes offset %d: %s", partition, offset, exc)
            frame, outcome = Frame("", []), "skipped"
        async with held.lock:
            shard = held.shard
            counts = (shard.bank.applied, shard.bank.duplicates)
            rejected = shard.apply(frame, offset)
            if rejected is None:
                return None
            outbox, deadletter = Outbox(), self.topics.deadletter
            for entry, rejection in rejected:
                key = dead_letter_key(entry)
                outbox.add(deadletter.name, partition_for(key, deadletter.partitions), key,
                           entry.value, dead_letter_headers(frame.topic, entry, rejection))
                self.metrics.rejections.labels(rejection.reason.value).inc()
            outbox.extend(self.topics.changelog.name, partition, shard.changelog())
            now, lag = time.monotonic(), self._lag(partition, offset)
            held.caught_up = not lag
            # While a backlog waits, publish less often: later frames would move the same positions again. A
            # live stream leaves a frame or two fetched behind the one folded: not a backlog; it publishes as
            # soon as publishing is cheap enough, its lane snapshots wait for their period or the stream's first
            # pause and are written while the next frames are folded (orderbank.engine.stream.schedule:
            # catch_up_publish_period, live_publish_period, snapshots_due).
            backlog = lag > LIVE_LAG_FRAMES
            period = (catch_up_publish_period if backlog else live_publish_period)(held, self.settings)
            lanes = None
            if now - held.published_at < period:
                if not backlog:
                    self._defer_publish(held, held.published_at + period - now)
            elif (self._publish(held, outbox)
                    and snapshots_due(held, now, self.settings, catching_up=backlog, live=not backlog)):
                lanes = self._freeze(held)
            written = await self.sink.submit(outbox)
            if lanes is not None:
                # The offset whose whole state these outputs and the snapshots carry, if no frame waits.
                self._snapshot(held, lanes, None if lag else offset)
        bank = shard.bank  # a new one if an event raised (orderbank.engine.stream.shards)
        self.metrics.applied.inc(bank.applied - counts[0])
        self.metrics.duplicates.inc(bank.duplicates - counts[1])
        self.metrics.batch_events.observe(len(frame.entries))
        self.metrics.frames.labels(str(partition), outcome).inc()
        if outcome == "applied":
            held.vitals.applied += 1
        else:
            held.vitals.skipped += 1
        written.add_done_callback(lambda _: self._written(held, started))
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
        held.vitals.rereads += 1
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

    def _written(self, held: Held, started: float) -> None:
        """A frame's outputs are durable."""
        held.written_wall = time.time()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _publish(self, held: Held, outbox: Outbox) -> bool:
        """Add the shard's position records and figures to `outbox`; False if building them raised
        (`_publish_failed`)."""
        shard, now = held.shard, time.monotonic()
        held.published_at = now
        try:
            # A lane's forecast is computed again once a day and when a plan comes (0.05-0.5 s): not what each
            # publish costs, which sets how often a live shard publishes (a launch's first plan would otherwise
            # hold its first positions back for half a second), but counted while a backlog waits
            # (orderbank.engine.stream.schedule.catch_up_publish_period).
            shard.bank.queue.refresh(shard.bank.now_us)
            started = time.monotonic()
            records = held.publisher.positions(shard.bank, shard.touched) + held.publisher.figures(shard.bank)
        except Exception:
            self._publish_failed(held, now)
            return False
        held.publish_seconds, held.refresh_seconds = time.monotonic() - started, started - now
        held.vitals.publishing_fails = False
        shard.touched = set()
        self._add(outbox, held, records)
        return True

    def _defer_publish(self, held: Held, delay: float) -> None:
        """Publish what a live shard's frames changed `delay` from now, unless a frame publishes it first: the
        last frames before a lull (the end of a burst) would otherwise wait for the idle rule (`idle_after_s`)."""
        if held.deferred is None or held.deferred.done():
            held.deferred = asyncio.ensure_future(self._publish_after(held, delay))

    async def _publish_after(self, held: Held, delay: float) -> None:
        await asyncio.sleep(delay)
        async with held.lock:
            if held.shard.touched and self.held.get(held.shard.partition) is held:  # no frame published them since
                outbox = Outbox()
                if self._publish(held, outbox):
                    await self.sink.submit(outbox)

    def _freeze(self, held: Held) -> list[FrozenLane] | None:
        """The shard's lanes as they stand, for `_snapshot`; None if that raised (`_publish_failed`)."""
        now = time.monotonic()
        held.snapshot_at = now
        try:
            lanes = held.publisher.freeze(held.shard.bank)
        except Exception:
            self._publish_failed(held, now)
            return None
        held.snapshot_seconds = time.monotonic() - now
        return lanes

    def _snapshot(self, held: Held, lanes: list[FrozenLane], offset: int | None) -> None:
        """Write the lanes' snapshots in the background: `offset`, if given, is the frame whose whole state they
        and the outputs submitted before them carry (the shard is published once they are durable, if no frame
        came since)."""
        held.snapshot = asyncio.ensure_future(self._write_snapshots(held, lanes, offset))

    async def _write_snapshots(self, held: Held, lanes: list[FrozenLane], offset: int | None) -> None:
        """Build the snapshots' records a few milliseconds at a time, letting frames be folded in between (a
        launch's lane: ~0.15 s of formatting when every page moved), then write them. Their share of the
        worker's time is bounded by when they are taken (orderbank.engine.stream.schedule)."""
        publisher, started, records = held.publisher, held.snapshot_at, []
        spent, step = held.snapshot_seconds, time.monotonic()
        try:
            for page in publisher.snapshot_steps(lanes):
                records += page
                if time.monotonic() - step >= SNAPSHOT_STEP_S:
                    spent += time.monotonic() - step
                    await asyncio.sleep(0)
                    step = time.monotonic()
        except Exception:
            self._publish_failed(held, started)
            return
        held.snapshot_seconds = spent + time.monotonic() - step
        held.budget.spend(started, held.snapshot_seconds)
        outbox = Outbox()
        self._add(outbox, held, records)
        try:
            await (await self.sink.submit(outbox))
        except Exception as exc:  # the sink is failed: the frames' acks stop the worker
            log.error("shard %d: writing its lane snapshots failed: %r", held.shard.partition, exc)
            return
        held.published_wall = time.time()
        if offset is not None and held.shard.offset == offset:  # and no frame came since
            held.shard.unpublished = False

    def _publish_failed(self, held: Held, started: float) -> None:
        """Building a shard's projection records raised. That is logged and counted (/health says the shard cannot
        publish), the frame's other outputs are written all the same, and the publisher starts over: it
        remembered records that will not be written, so it republishes everything the next time."""
        log.exception("shard %d: publishing raised; it will publish everything again", held.shard.partition)
        held.vitals.publish_failed += 1
        held.vitals.publishing_fails = True
        held.publisher = self._publisher(held.shard.partition)
        self.metrics.publish_failures.inc()
        # What the failure took is spent as snapshot time: retries take at most SNAPSHOT_SHARE of the clock.
        held.snapshot_at = started
        held.budget.spend(started, time.monotonic() - started)

    def _add(self, outbox: Outbox, held: Held, records: list[Record]) -> None:
        """Add projection records to `outbox`, each to its topic, in the shard's partition."""
        by_projection: dict[str, list[tuple[bytes, bytes | None]]] = {}
        for projection, key, value in records:
            by_projection.setdefault(projection, []).append((key, value))
        for projection, pairs in by_projection.items():
            outbox.extend(self._outputs[projection], held.shard.partition, pairs)
            self.metrics.published.labels(projection).inc(len(pairs))

    async def publish_idle(self) -> None:
        """Publish in full every shard that has unpublished changes and no frame for a while."""
        for held in list(self.held.values()):
            if held.shard.unpublished and idle_publish_due(held, time.monotonic(), self.settings):
                async with held.lock:
                    outbox, offset = Outbox(), held.shard.offset
                    if not self._publish(held, outbox) or (lanes := self._freeze(held)) is None:
                        continue
                    await self.sink.submit(outbox)
                    self._snapshot(held, lanes, offset)

    def ingest_progress(self) -> IngestProgress:
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
        self.shard_states()
        self.metrics.observe_banks(held.shard.bank for held in list(self.held.values()))
        return self.metrics.render()

    def agent_crashed(self) -> None:
        """The shards agent raised (Faust logs it and restarts the agent): /health counts the restarts."""
        self.crashes.add(time.monotonic())
        self.metrics.agent_crashes.inc()

    def shard_states(self) -> list[ShardState]:
        """Each shard's lanes lag and quiet time (also set on their gauges), for the health rule."""
        now, lanes, states = time.monotonic(), self.topics.lanes.name, []
        for partition, held in sorted(self.held.items()):
            # The end of the partition as the consumer last fetched it: the frames waiting are known
            # whether or not the shard applies any (the gauge `_lag` sets moves only with frames).
            end = self.app.consumer.highwater(TP(lanes, partition))
            lag = max(0, (end or 0) - held.shard.offset - 1)
            quiet = now - held.shard.last_frame_at
            self.metrics.lag.labels(lanes, str(partition)).set(lag)
            self.metrics.quiet.labels(str(partition)).set(quiet)
            states.append(ShardState(partition, lag, quiet, held.vitals.publishing_fails))
        return states

    def health(self) -> dict[str, Any]:
        """The worker's state for /health: `status` ok or degraded (`reasons` say why), and per shard
        its offset, counters, lanes lag and frames."""
        ingest, settings = self.ingest_progress(), self.settings
        states = {state.partition: state for state in self.shard_states()}
        # A rebalance or the table's recovery holds every shard back: that is waited out, not a stall.
        waiting = self.app.rebalancing or self.app.in_recovery
        crashes = self.crashes.within(time.monotonic(), settings.crash_window_s)
        reasons = verdict([replace(s, lag=0) if waiting else s for s in states.values()], crashes,
                          stall_after_s=settings.stall_after_s, crash_window_s=settings.crash_window_s)
        return {"status": DEGRADED if reasons else OK, "reasons": reasons, "worker": settings.worker_id,
                "shards": {str(p): {**h.shard.health(), "written_at": h.written_wall, "published_at": h.published_wall,
                                    "lag": states[p].lag, "quiet_s": round(states[p].quiet_s, 3),
                                    "frames": h.vitals.as_dict()}
                           for p, h in sorted(self.held.items())},
                "agent": {"crashes": self.crashes.total, "recent_crashes": crashes},
                "ingest": {"partitions": ingest.partitions, "lag": sum(ingest.lag.values()),
                           "first_fetch_at": ingest.first_fetch_at}}
