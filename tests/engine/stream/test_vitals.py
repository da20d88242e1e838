"""The health rule (orderbank.engine.stream.vitals): a worker is degraded when a shard stalls with frames waiting,
when the shards agent crash-loops or when a shard cannot publish, and ok otherwise."""

from __future__ import annotations

from orderbank.engine.stream.vitals import CRASH_LOOP, Crashes, ShardState, verdict

RULE = {"stall_after_s": 30.0, "crash_window_s": 60.0}


def test_a_shard_with_frames_waiting_that_does_not_advance_is_stalled() -> None:
    assert verdict([ShardState(0, lag=0, quiet_s=3600.0)], 0, **RULE) == []  # nothing waits: idle, not stalled
    assert verdict([ShardState(0, lag=12, quiet_s=29.9)], 0, **RULE) == []  # catching up, or a pause
    assert verdict([ShardState(0, lag=0, quiet_s=5), ShardState(3, lag=12, quiet_s=31.0)], 0, **RULE) == [
        "shard 3 has not advanced for 31 s while 12 frames wait"]


def test_a_shard_that_cannot_publish_degrades_the_worker() -> None:
    assert verdict([ShardState(1, lag=0, quiet_s=0.5, publishing_fails=True)], 0, **RULE) == [
        "shard 1 cannot publish"]


def test_repeated_agent_crashes_within_the_window_are_a_crash_loop() -> None:
    crashes = Crashes()
    for at in (0.0, 50.0, 100.0, 110.0):
        crashes.add(at)
    assert crashes.total == 4
    assert crashes.within(110.0, 60.0) == 3 == CRASH_LOOP  # 50, 100 and 110
    assert verdict([], crashes.within(110.0, 60.0), **RULE) == ["the shards agent crashed 3 times in the last 60 s"]
    assert verdict([], crashes.within(150.5, 60.0), **RULE) == []  # two left in the window: over
    assert verdict([ShardState(0, lag=1, quiet_s=1.0)], CRASH_LOOP - 1, **RULE) == []
