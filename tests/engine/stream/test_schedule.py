"""The publish schedule (orderbank.engine.stream.schedule): when a shard publishes its lanes' snapshots."""

from __future__ import annotations

import pytest

from orderbank.engine.settings import Settings
from orderbank.engine.stream.publish import Publisher
from orderbank.engine.stream.schedule import (
    CATCH_UP_SHARE,
    CATCH_UP_SLOWDOWN,
    LIVE_PUBLISH_MIN_S,
    LIVE_PUBLISH_SHARE,
    LIVE_SNAPSHOT_SHARE,
    SNAPSHOT_SHARE,
    Held,
    SnapshotBudget,
    catch_up_publish_period,
    idle_publish_due,
    live_publish_period,
    snapshots_due,
)
from orderbank.engine.stream.shards import Shard
from orderbank.projections.bank import OrderBank


def test_idle_snapshots_take_at_most_their_share_of_the_time() -> None:
    settings = Settings(idle_after_s=0.5, snapshot_interval_s=10)
    held = Held(Shard(0, OrderBank()), Publisher(0), SnapshotBudget(cap=SNAPSHOT_SHARE * 10))
    held.shard.last_frame_at = 100.0
    assert not idle_publish_due(held, 100.4, settings)  # frames may still come
    assert idle_publish_due(held, 100.5, settings)  # idle, and the budget is full
    held.budget.spend(100.5, 0.3)  # a big lane: 0.3 s a snapshot
    held.budget.spend(101.0, 0.3)
    held.budget.spend(101.5, 0.3)
    held.snapshot_at = 101.5
    assert 0 < held.budget.left(101.5) < 0.3
    held.budget.spend(101.5, 0.3)  # a quiet stream kept it snapshotting: the budget runs out ...
    held.shard.last_frame_at = 102.0
    assert not idle_publish_due(held, 102.4, settings)
    refilled = 101.5 + -held.budget.seconds / SNAPSHOT_SHARE  # ... and refills at SNAPSHOT_SHARE of the clock
    assert not idle_publish_due(held, refilled - 0.01, settings)
    assert idle_publish_due(held, refilled + 0.01, settings)
    held.budget.spend(111.0, 5.0)  # one very costly snapshot
    held.snapshot_at = 111.0
    assert not idle_publish_due(held, 120.9, settings)
    assert idle_publish_due(held, 121.0, settings)  # never further apart than snapshot_interval_s
    held.caught_up = False  # frames were waiting: a pause, not the end
    held.budget = SnapshotBudget(cap=1.0)
    held.shard.last_frame_at = 130.0
    assert not idle_publish_due(held, 139.9, settings)
    assert idle_publish_due(held, 140.0, settings)  # unless it lasts snapshot_interval_s


def test_a_shard_catching_up_snapshots_its_lanes_ten_times_less_often() -> None:
    settings = Settings(snapshot_interval_s=10)
    held = Held(Shard(0, OrderBank()), Publisher(0), SnapshotBudget(cap=1.0), snapshot_at=100.0)
    assert snapshots_due(held, 100.1, settings, catching_up=False)  # caught up: while the budget lasts
    assert not snapshots_due(held, 100.1, settings, catching_up=True)
    assert not snapshots_due(held, 100.0 + 10 * CATCH_UP_SLOWDOWN - 0.1, settings, catching_up=True)
    assert snapshots_due(held, 100.0 + 10 * CATCH_UP_SLOWDOWN, settings, catching_up=True)


def test_a_shard_folding_a_live_stream_snapshots_its_lanes_once_a_period_or_rarer_when_they_cost() -> None:
    settings = Settings(snapshot_interval_s=10)
    held = Held(Shard(0, OrderBank()), Publisher(0), SnapshotBudget(cap=1.0), snapshot_at=100.0)
    assert not snapshots_due(held, 100.1, settings, live=True)  # the budget is for pauses, not for every frame
    assert snapshots_due(held, 110.0, settings, live=True)
    held.snapshot_seconds = 0.5  # a launch's lane
    assert not snapshots_due(held, 100.0 + 0.5 / LIVE_SNAPSHOT_SHARE - 0.1, settings, live=True)
    assert snapshots_due(held, 100.0 + 0.5 / LIVE_SNAPSHOT_SHARE, settings, live=True)


def test_a_live_shard_publishes_as_often_as_publishing_stays_cheap_and_at_least_every_interval() -> None:
    settings = Settings(publish_interval_s=1.0)
    held = Held(Shard(0, OrderBank()), Publisher(0), SnapshotBudget(cap=1.0))
    held.publish_seconds = 0.001  # a few changed positions
    assert live_publish_period(held, settings) == LIVE_PUBLISH_MIN_S
    held.publish_seconds = 0.05
    assert live_publish_period(held, settings) == 0.05 / LIVE_PUBLISH_SHARE
    held.publish_seconds = 1.5  # a whole pass over a launch's lane
    assert live_publish_period(held, settings) == settings.publish_interval_s


def test_a_shard_catching_up_publishes_every_interval_while_cheap_and_never_waits_without_bound() -> None:
    settings = Settings(publish_interval_s=1.0)
    held = Held(Shard(0, OrderBank()), Publisher(0), SnapshotBudget(cap=1.0))
    held.publish_seconds = 0.02  # what a second of a launch's placements changed
    assert catch_up_publish_period(held, settings) == settings.publish_interval_s
    held.publish_seconds = 0.2  # a whole pass over a lane (bounded-overtake's ordinals)
    assert catch_up_publish_period(held, settings) == 0.2 / CATCH_UP_SHARE
    held.publish_seconds = 3.0  # a rate the worker barely keeps up with: each publish holds more
    assert catch_up_publish_period(held, settings) == settings.publish_interval_s * CATCH_UP_SLOWDOWN
    held.publish_seconds, held.refresh_seconds = 0.02, 0.2  # the lane's forecast computed again: a midnight passed
    assert catch_up_publish_period(held, settings) == pytest.approx(0.22 / CATCH_UP_SHARE)
    assert live_publish_period(held, settings) == max(LIVE_PUBLISH_MIN_S, 0.02 / LIVE_PUBLISH_SHARE)
