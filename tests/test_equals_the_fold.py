"""The contract of every way of producing the projections: the snapshot is the fold of the log, byte for byte.

One suite, run over each way (tests.support.ways): the plain fold, a bank restored from its orders'
states, per-lane banks merged, a worker's shards applying frames then restored from their
changelog and merged, and a worker on a real Kafka broker (marked `broker`). The same logs and
policies for each; what "equal" means is tests.support.equality.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from orderbank.engine.settings import Settings
from orderbank.projections.codec import encode
from orderbank.replay.synth import generate, preset
from tests.support import factories as f
from tests.support.equality import assert_equals_the_fold, fold_lines
from tests.support.ways import IN_PROCESS, Way, through_kafka

SETTINGS = [Settings(policy="fifo"), Settings(policy="bounded-overtake:k=3", lane_by="model_trim"),
            Settings(policy="paid-first", lane_by="model_trim")]


@pytest.fixture(params=[*IN_PROCESS, pytest.param("kafka", marks=pytest.mark.broker)])
def way(request: pytest.FixtureRequest, tmp_path: Path) -> Way:
    if request.param == "kafka":
        return through_kafka(request.getfixturevalue("broker").bootstrap, tmp_path)
    return IN_PROCESS[request.param]


def a_launch() -> list[bytes]:
    return [orjson.dumps(doc) for doc in generate(preset("small", 1500), 13)]


def a_troubled_log() -> list[bytes]:
    """Three lanes' orders paid, transferred, cancelled, refunded and delivered, with duplicates and
    lines the fold must reject (malformed, unknown order, illegal transition, seq gap) among them."""
    first = [f.placed("A", 0), f.placed("B", 0.1, trim="Max", rank=2), f.placed("C", 0.2, trim="Pro", rank=1),
             f.placed("D", 0.3), f.placed("E", 1, trim="Max", rank=2), f.placed("F", 1.5, trim="Pro", rank=1),
             f.transferred("A", 2, 1), f.transferred("A", 3, 2, to="c3"), f.demanded("A", 4, 3, 24_500_000),
             f.received("A", 5, 4, 24_500_000), f.demanded("B", 2, 3, 24_500_000),
             f.received("B", 3, 5, 10_000_000)]
    then = [f.cancelled("C", 2, 6, refund=500_000), f.refunded("C", 3, 7, 300_000), f.cancelled("D", 2, 6.5),
            f.delivered("E", 2, 8), f.placed("G", 9), f.received("G", 2, 10, 24_500_000)]
    duplicates = [f.received("A", 5, 4, 24_500_000),  # redelivered
                  f.received("B", 3, 5, 10_000_000).model_copy(update={"event_id": f.eid("B", 3, "retry")})]
    rejected = [f.received("Z", 2, 4, 100), f.delivered("C", 4, 9), f.received("F", 3, 9, 1), f.refunded("D", 3, 8, 1)]
    malformed = b'{"type": "OrderPlaced", "order_id": '
    return ([encode(e) for e in first] + [malformed, encode(rejected[0])] + [encode(e) for e in then]
            + [encode(e) for e in duplicates + rejected[1:]])


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.policy} by {s.lane_by}")
def test_a_launch_equals_the_fold(way: Way, settings: Settings) -> None:
    lines = a_launch()
    assert_equals_the_fold(way(lines, settings), lines, settings.bank)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.policy} by {s.lane_by}")
def test_a_log_with_rejections_duplicates_transfers_and_cancellations_equals_the_fold(
        way: Way, settings: Settings) -> None:
    lines = a_troubled_log()
    bank = fold_lines(lines, settings.bank)
    assert (bank.applied, bank.duplicates) == (len(lines) - 7, 2)
    assert dict(bank.rejections) == {"unknown_order": 1, "illegal_transition": 2, "seq_gap": 1}
    assert len(bank.queue.lanes) == (3 if settings.lane_by == "model_trim" else 1)
    assert_equals_the_fold(way(lines, settings), lines, settings.bank)
