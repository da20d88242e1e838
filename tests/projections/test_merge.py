"""Shards' banks merged (orderbank.projections.merge): lanes on banks of their own, read at one clock, are the fold."""

from __future__ import annotations

from typing import Any

import orjson

from orderbank.projections.bank import BankSettings
from tests.support.equality import assert_equals_the_fold
from tests.support.ways import banks_by_lane, events_of, merged_at_the_latest_clock


def test_merging_per_lane_shards_at_the_latest_clock_gives_the_whole_fold(launch_docs: list[dict[str, Any]]) -> None:
    settings = BankSettings(lane_by="model_trim")
    lines = [orjson.dumps(doc) for doc in launch_docs]
    shards = banks_by_lane(events_of(lines), settings)
    # Three trim lanes and the model's plan (a lane of its own when lanes are by trim): four clocks to align.
    assert len(shards) == 4 and len({s.now_us for s in shards}) == 4
    assert_equals_the_fold(merged_at_the_latest_clock(shards, settings), lines, settings)
