"""The recovery watch (orderbank.engine.stream.recovery): when a recovering changelog partition is stalled."""

from __future__ import annotations

from orderbank.engine.stream.recovery import RECOVERY_STALLED_AFTER_S, RecoveryWatch


def test_a_recovering_changelog_partition_is_stalled_only_after_its_offset_stood_still_long_enough() -> None:
    watch, a, b = RecoveryWatch(), "changelog-0", "changelog-1"
    remaining, offsets = {a: 100, b: 50}, {a: -1, b: 10}
    assert watch.stalled(remaining, offsets, now=0.0) == []  # first seen
    offsets[b] = 20  # b makes progress, a does not
    assert watch.stalled(remaining, offsets, now=RECOVERY_STALLED_AFTER_S - 0.1) == []
    assert watch.stalled(remaining, offsets, now=RECOVERY_STALLED_AFTER_S) == [a]
    watch.retried(a, RECOVERY_STALLED_AFTER_S)  # read again: it gets the whole time anew
    assert watch.stalled(remaining, offsets, now=RECOVERY_STALLED_AFTER_S + 1) == []
    assert watch.stalled(remaining, offsets, now=2 * RECOVERY_STALLED_AFTER_S + 0.1) == [a, b]
    remaining[a] = 0  # a is recovered: never stalled, and forgotten
    assert watch.stalled(remaining, offsets, now=3 * RECOVERY_STALLED_AFTER_S) == [b]
    assert a not in watch.seen
