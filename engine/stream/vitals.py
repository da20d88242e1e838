"""What /health says about a worker: each shard's frame counters and clocks, and the rule that calls it ok or degraded.

A worker is `degraded` (HTTP 503, the reasons in the body) when
- a shard has not advanced for `stall_after_s` while frames wait for it in Kafka (its lanes lag), or
- the shards agent crash-loops: it raised CRASH_LOOP times within `crash_window_s` (Faust restarts
  it each time, and the frame that raised is read again);
- a shard's last publish raised (its projection topics go stale while it applies frames);
and `ok` otherwise. `verdict` is the rule, a pure function of what `ShardState` and `Crashes` hold.
/health is open to anyone who reaches the port (docs/security.md), so it says what failed and how
often, never an exception's text: that, with its traceback, shard and offset, is in the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

CRASH_LOOP = 3
"""Agent crashes within `crash_window_s` that make a crash loop."""
OK, DEGRADED = "ok", "degraded"


@dataclass
class Vitals:
    """One shard's frame counters since this worker took it over."""

    applied: int = 0  # frames applied
    failed: int = 0  # frames whose processing raised (the agent restarts, the frame is read again)
    skipped: int = 0  # lanes messages that are no frame (FrameError): logged and stepped over
    rereads: int = 0  # seeks back to frames it had not applied
    publish_failed: int = 0  # publishes that raised
    publishing_fails: bool = False  # whether its last publish raised

    def as_dict(self) -> dict[str, object]:
        return {"applied": self.applied, "failed": self.failed, "skipped": self.skipped, "rereads": self.rereads,
                "publish_failed": self.publish_failed}


@dataclass
class Crashes:
    """The shards agent's crashes: how many, and when the latest ones were (monotonic seconds)."""

    total: int = 0
    times: deque[float] = field(default_factory=lambda: deque(maxlen=100))

    def add(self, at: float) -> None:
        self.total += 1
        self.times.append(at)

    def within(self, now: float, window_s: float) -> int:
        return sum(1 for at in self.times if now - at <= window_s)


@dataclass(frozen=True)
class ShardState:
    """What the rule reads of one shard."""

    partition: int
    lag: int  # frames in Kafka after its last applied one (0 while the partition's end is unknown)
    quiet_s: float  # seconds since it last applied a frame (or was restored)
    publishing_fails: bool = False


def verdict(shards: Iterable[ShardState], crashes: int, *, stall_after_s: float,
            crash_window_s: float) -> list[str]:
    """Why the worker is degraded (an empty list: it is ok); `crashes`: agent crashes within `crash_window_s`."""
    reasons = []
    for shard in shards:
        if shard.lag > 0 and shard.quiet_s >= stall_after_s:
            reasons.append(f"shard {shard.partition} has not advanced for {shard.quiet_s:.0f} s while "
                           f"{shard.lag} frames wait")
        if shard.publishing_fails:
            reasons.append(f"shard {shard.partition} cannot publish")
    if crashes >= CRASH_LOOP:
        reasons.append(f"the shards agent crashed {crashes} times in the last {crash_window_s:.0f} s")
    return reasons
