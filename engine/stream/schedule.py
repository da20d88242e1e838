"""When a shard publishes: positions every publish period, lane snapshots on a time budget, catch-up and idle rules.

Every ETA moves with the clock, so a lane's snapshot is rewritten whole; these rules bound the share of a worker's
time that publishing takes while a launch's backlog is folded and while a quiet live stream trickles in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from orderbank.engine.settings import Settings
from orderbank.engine.stream.publish import Publisher
from orderbank.engine.stream.shards import Shard
from orderbank.engine.stream.vitals import Vitals

CATCH_UP_SLOWDOWN = 10  # publish period multiplier while a shard has a backlog: snapshots, and at most positions
CATCH_UP_SHARE = 0.05  # the most of its time publishing positions may take then
SNAPSHOT_SHARE = 0.1
"""Most of a worker's time that lane snapshots may take. A lane's snapshot is formatted again whenever its
front moved (~0.15 s for 180,000 open orders); a shard that goes idle after every few events (a quiet live
stream) would otherwise rewrite it after every few events."""
LIVE_PUBLISH_SHARE = 0.2  # most of a live shard's time that publishing positions and figures may take ...
LIVE_PUBLISH_MIN_S = 0.05  # ... publishing at most this often
LIVE_SNAPSHOT_SHARE = 0.01
"""Most of a worker's time that lane snapshots may take while a live stream keeps it busy (`snapshots_due`)."""


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
    refresh_seconds: float = 0.0  # what computing its lanes' forecasts again for it took (a midnight passed)
    snapshot_at: float = 0.0  # monotonic time of its last lane snapshots (at first, of its restore)
    snapshot_seconds: float = 0.0  # what they took
    snapshot: asyncio.Task[None] | None = None  # the lane snapshots being written (orderbank.engine.stream.runtime)
    deferred: asyncio.Task[None] | None = None  # a live shard's publish waiting for its period to end
    caught_up: bool = True  # whether its last frame left no frame waiting in Kafka
    written_wall: float | None = None  # wall-clock time the last frame's outputs were acknowledged
    published_wall: float | None = None  # ... and the last lane snapshots
    sought: tuple[int, float] | None = None  # the lanes offset read again from, and when (monotonic)
    vitals: Vitals = field(default_factory=Vitals)  # its frame counters and last failure, for /health


def snapshots_due(held: Held, now: float, settings: Settings, *, catching_up: bool = False,
                  live: bool = False) -> bool:
    """Whether a publish takes the lane snapshots too. An idle shard: while its budget lasts, and in
    any case `snapshot_interval_s` after the last ones. A shard catching up: `CATCH_UP_SLOWDOWN` times
    less often, since the frames waiting will move every position of the snapshot before it is
    written (a launch's lane: ~0.5 s and 20 MB each), and the catch-up ends with one anyway. A shard
    folding a live stream (frames keep coming, none waits): `snapshot_interval_s` after the last ones,
    or `1 / LIVE_SNAPSHOT_SHARE` times what they took if longer: they are written a page at a time between
    frames, but every page of a lane whose front moved is formatted again, and that time is the live stream's;
    the stream's first pause snapshots the lanes (the idle rule). Never while the last ones are still being
    written."""
    if held.snapshot is not None and not held.snapshot.done():
        return False
    if catching_up:
        return now - held.snapshot_at >= settings.snapshot_interval_s * CATCH_UP_SLOWDOWN
    if live:
        return now - held.snapshot_at >= max(settings.snapshot_interval_s, held.snapshot_seconds / LIVE_SNAPSHOT_SHARE)
    return held.budget.left(now) > 0 or now - held.snapshot_at >= settings.snapshot_interval_s


def live_publish_period(held: Held, settings: Settings) -> float:
    """How long after its last publish a shard folding a live stream publishes again: as soon as publishing
    takes at most LIVE_PUBLISH_SHARE of its time (every LIVE_PUBLISH_MIN_S at most), and at least every
    `publish_interval_s`. A positions publish costs what changed since the last one (orderbank.engine.stream
    .publish), so at a launch's peak (3,000 events/s) a shard publishes every few frames and a live page
    follows within a fraction of a second, while the interval bounds a publish that costs more."""
    return min(settings.publish_interval_s, max(LIVE_PUBLISH_MIN_S, held.publish_seconds / LIVE_PUBLISH_SHARE))


def catch_up_publish_period(held: Held, settings: Settings) -> float:
    """How long after its last publish a shard with a backlog publishes again: once a `publish_interval_s`
    while publishing takes at most CATCH_UP_SHARE of its time, less often when it costs more (a policy whose
    publish passes over the whole lane), but at least every `CATCH_UP_SLOWDOWN` intervals. A positions publish
    costs about what changed since the last one, so at a rate the worker barely keeps up with, waiting longer
    does not make it a smaller share: the period would grow without end, and the pages with it.
    The forecasts computed again for it count too: a catch-up's clock passes a midnight between any two
    publishes (a launch's months in a minute), and a refresh of a launch's lane takes 0.2-0.6 s, more than
    the positions of a second's events (`live_publish_period` leaves them out: a live stream passes a
    midnight once a day)."""
    interval = settings.publish_interval_s
    spent = held.publish_seconds + held.refresh_seconds
    return min(interval * CATCH_UP_SLOWDOWN, max(interval, spent / CATCH_UP_SHARE))


def idle_publish_due(held: Held, now: float, settings: Settings) -> bool:
    """Whether a shard with unpublished changes is to be published in full, lane snapshots included:
    once no frame came for `idle_after_s` and its snapshots are due. A shard whose last frame left
    frames waiting is catching up, not idle: a pause in their delivery (the stall watchdog's
    business) is waited out for `snapshot_interval_s` first."""
    quiet = settings.idle_after_s if held.caught_up else settings.snapshot_interval_s
    return now - held.shard.last_frame_at >= quiet and snapshots_due(held, now, settings)

