"""Several workers, restarts and redeliveries: the projections still equal the fold.

- Two workers in one group share the input partitions and the shards; each answers for the
  whole bank (merging the other's shards); when one stops the other takes its shards over.
- A worker stopped mid-stream restores its shards from the bank table's changelog on restart
  and carries on; events delivered a second time change nothing.
- A recovery that loses its changelog records (as Faust sometimes does on a takeover) reads them
  again instead of waiting forever.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from orderbank.engine.dev.broker import Broker
from orderbank.replay.synth import generate, preset
from tests.support.equality import assert_equals_the_fold, fold_lines
from tests.support.topics import keyed, produce_raw, read_topic, unique_settings
from tests.support.workers import Worker, caught_up, processed, wait_for

pytestmark = pytest.mark.broker


def launch(orders: int, seed: int) -> list[bytes]:
    return [orjson.dumps(doc) for doc in generate(preset("small", orders), seed)]


def metric(worker: Worker, name: str) -> float:
    _, metrics = worker.get("/metrics")
    (line,) = [ln for ln in metrics.decode().splitlines() if ln.startswith(f"{name} ")]
    return float(line.split()[1])


def owned(worker: Worker) -> int:
    health = worker.health()
    return len(health["shards"]) if health else 0


def reads(worker: Worker) -> int:
    """Input partitions the worker's ingest reads (its consumer group rebalances apart from Faust's)."""
    health = worker.health()
    return len(health["ingest"]["partitions"]) if health else 0


def test_two_workers_share_the_shards_and_the_survivor_takes_over(broker: Broker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap, lane_by="model_trim")  # three lanes, on shards 0, 1 and 2
    lines = launch(6000, 21)
    first, rest = lines[:len(lines) // 2], lines[len(lines) // 2:]
    a, b = Worker(settings, tmp_path, "a").start(), Worker(settings, tmp_path, "b").start()
    try:
        wait_for([a, b], lambda: owned(a) == owned(b) == 2, 180, "the shards to be split between the workers")
        wait_for([a, b], lambda: reads(a) == reads(b) == 2, 180, "the input to be split between the workers")
        produce_raw(settings, keyed(first))
        caught_up([a, b])
        expected = fold_lines(first, settings.bank)
        for worker in (a, b):
            assert_equals_the_fold(worker.snapshot(), first, settings.bank)
        health = b.health()
        assert health is not None
        lanes_of_b = {lane for shard in health["shards"].values() for lane in shard["lanes"]}
        order_of_b = next(o for o, order in expected.orders.items() if order.lane in lanes_of_b)
        status, body = a.get(f"/orders/{order_of_b}")  # asked of the worker that does not hold it
        assert status == 200 and (status, body) == b.get(f"/orders/{order_of_b}")
        assert orjson.loads(body)["position"] == getattr(expected.position_of(order_of_b), "position", None)

        a.stop()
        wait_for([a, b], lambda: owned(b) == 4, 180, "the survivor to take every shard")
        produce_raw(settings, keyed(rest))
        caught_up([b])
        assert_equals_the_fold(b.snapshot(), lines, settings.bank)
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_worker_stopped_mid_stream_recovers_from_its_changelog_and_redeliveries_change_nothing(
        broker: Broker, tmp_path: Path, guarantee: str) -> None:
    settings = unique_settings(broker.bootstrap, processing_guarantee=guarantee)
    lines = launch(8000, 31)
    first = len(lines) * 2 // 5
    rest = tmp_path / "rest.jsonl"
    rest.write_bytes(b"\n".join(lines[first:]) + b"\n")
    worker = Worker(settings, tmp_path, "w").start()
    try:
        produce_raw(settings, keyed(lines[:first]))
        caught_up([worker])
        feeding = subprocess.Popen(
            [sys.executable, "-m", "orderbank.engine.cli", "produce", str(rest), "--rate", "3000",
             "--bootstrap", broker.bootstrap, "--prefix", settings.topic_prefix],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for([worker], lambda: processed([worker]) > first + 1500, 60, "the worker to be mid-stream")
        worker.stop()
        worker.start()
        assert feeding.wait(120) == 0
        caught_up([worker])
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
        # This process read only what came after the stop: the rest of the bank came from the changelog.
        assert metric(worker, "orderbank_ingested_events_total") < len(lines) - first - 1500

        def duplicates() -> int:
            health = worker.health()
            assert health is not None
            return sum(s["duplicates"] for s in health["shards"].values())

        before = duplicates()
        produce_raw(settings, keyed(lines[:3000]))
        caught_up([worker])
        assert duplicates() - before == 3000
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
        assert read_topic(settings, f"{settings.topic_prefix}.deadletter") == []
    finally:
        worker.stop()


def test_a_recovery_that_loses_its_changelog_records_reads_them_again(broker: Broker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap)
    lines = launch(3000, 41)
    worker = Worker(settings, tmp_path, "w").start()
    try:
        produce_raw(settings, keyed(lines))
        caught_up([worker])
        worker.stop()
        # Its recovery now drops each changelog partition's records once.
        worker.preload = "tests.support.changelog_loss"
        worker.start()
        caught_up([worker], timeout=90)
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
        assert metric(worker, "orderbank_recovery_rereads_total") >= 1
        assert "changelog_loss: dropped" in worker.log_tail(10_000)
    finally:
        worker.stop()
