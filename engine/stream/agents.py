"""The Faust wiring of a worker: the shard agent, its table, timers and services, around a `Runtime`.

`install(app, settings)` wires, on one Faust app:
- the ingest (orderbank.engine.stream.ingest) that turns input messages into frames on the lanes topic, in a process
  of its own (orderbank.engine.stream.ingest_process) or as a service of the app;
- the `shards` agent on the lanes topic: one Faust event per frame, so Faust's per-message cost is paid once per
  thousand events, folded by the runtime (orderbank.engine.stream.runtime) and acked once its outputs are durable;
  when it raises, Faust restarts it, and the runtime counts the crash for /health;
- the `bank` table: Faust owns its changelog topic, recovery and standby replicas; after each recovery the worker
  restores the shards it was given from the table (orderbank.projections.restore);
- a timer that publishes a shard in full once it has gone idle (orderbank.engine.stream.schedule), and one that
  reads a shard's partition again when frames wait in Kafka but none has come for a while;
- a watchdog that, while Faust recovers the table, reads again a changelog partition whose records were fetched
  but never reached the recovery (orderbank.engine.stream.recovery).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from orderbank.engine.kafka.topics import BANK_TABLE
from orderbank.engine.settings import Settings
from orderbank.engine.stream.recovery import RecoveryWatchdog
from orderbank.engine.stream.runtime import STALLED_AFTER_S, Runtime

FRAMES_IN_FLIGHT = 8


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

        try:
            async for event in stream.events():
                written = await runtime.on_frame(event.message.partition, event.message.offset, event.value)
                await window.acquire()
                acking.add(asyncio.ensure_future(ack_when_written(event, written)))
                acking.difference_update([task for task in acking if task.done()])
        except Exception:
            # Faust logs it and restarts the agent on the same stream; the frame, not acknowledged, comes again.
            runtime.agent_crashed()
            raise

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
    app.add_dependency(RecoveryWatchdog(app, runtime.metrics))
    return runtime

