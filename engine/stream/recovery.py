"""A workaround for Faust's table recovery: read again a changelog partition whose records never reached it.

Faust 0.15 sometimes loses a whole batch of changelog records between its consumer and the table recovery
(its wait has no timeout), so a worker taking over shards would never serve them. `RecoveryWatch` tells
which partitions stall; `RecoveryWatchdog` runs it while the app recovers and seeks those partitions back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from mode import Service

from orderbank.engine.stream.metrics import Metrics

log = logging.getLogger(__name__)
RECOVERY_STALLED_AFTER_S = 10.0  # a recovering changelog partition whose applied offset stood still this long
CHECK_EVERY_S = 1.5


@dataclass
class RecoveryWatch:
    """Which changelog partitions Faust's table recovery waits on in vain.

    Faust 0.15 sometimes loses a whole batch of changelog records between its consumer and the
    recovery when a worker takes over partitions (seen in CI and in 2 of 78 repeated takeovers of
    tests/engine/stream/test_cluster.py on 2 cores, one loaded): the consumer's position is past the last record, the
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



class RecoveryWatchdog(Service):
    """Runs RecoveryWatch while the app recovers its table. A service the app starts with itself:
    Faust starts timers and `app.service`s only once the first recovery is over."""

    def __init__(self, app: faust.App, metrics: Metrics) -> None:
        super().__init__()
        self.app, self.metrics, self.watch = app, metrics, RecoveryWatch()

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(CHECK_EVERY_S)
            if self.app.in_recovery:
                await self.resume_stalled_recovery()
            else:  # the next recovery starts its clocks anew
                self.watch.seen.clear()

    async def resume_stalled_recovery(self) -> None:
        """Read a changelog partition again that the table's recovery waits on in vain."""
        recovery: Any = self.app.tables.recovery  # type: ignore[attr-defined]  # TableManager's, not in its protocol
        now = time.monotonic()
        for tp in self.watch.stalled(recovery.active_remaining(), recovery.active_offsets, now):
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
            self.watch.retried(tp, now)
