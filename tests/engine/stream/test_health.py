"""/health tells the truth: a shard that cannot advance makes the worker degraded (503, the reason in the body)
until it advances again, and a lanes message that is no frame is stepped over and counted, not a stall."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from orderbank.engine.dev.broker import Broker
from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.replay.synth import generate, preset
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import keyed, produce_raw, unique_settings
from tests.support.workers import Worker, caught_up, wait_for

pytestmark = pytest.mark.broker


def lines_of(orders: int, seed: int) -> list[bytes]:
    return [orjson.dumps(d) for d in generate(preset("small", orders), seed)]


def shard_of_the_launch(worker: Worker) -> tuple[str, dict[str, Any]]:
    """The shard holding the launch's lane (a small launch has one lane: one shard has every order)."""
    health = worker.health()
    assert health is not None
    (shard,) = [(p, s) for p, s in health["shards"].items() if s["lanes"]]
    return shard


def status(worker: Worker) -> tuple[int, dict[str, Any]]:
    code, body = worker.get("/health")
    return code, orjson.loads(body)


def test_a_shard_that_cannot_advance_makes_health_degraded_until_it_does(broker: Broker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap, stall_after_s=3.0, crash_window_s=10.0)
    first, second = lines_of(200, 3), lines_of(200, 4)
    worker = Worker(settings, tmp_path, preload="tests.support.stuck_shard").start()
    try:
        produce_raw(settings, keyed(first))
        caught_up([worker])
        partition, _ = shard_of_the_launch(worker)
        assert status(worker)[0] == 200

        stuck = tmp_path / worker.name / "stuck-shard"  # read by the preload
        stuck.write_text(partition)
        produce_raw(settings, keyed(second))
        stalled = f"shard {partition} has not advanced"

        def degraded() -> dict[str, Any] | None:
            code, health = status(worker)
            return health if code == 503 and any(r.startswith(stalled) for r in health["reasons"]) else None

        health = wait_for([worker], degraded, 60, "/health to say the shard stalled (503)")
        assert health["status"] == "degraded"
        shard = health["shards"][partition]
        assert shard["frames"]["failed"] >= 1 and b"stuck_shard: shard" not in orjson.dumps(health)  # in the log
        assert health["agent"]["crashes"] >= 1 and shard["lag"] > 0
        _, metrics = worker.get("/metrics")
        assert f'orderbank_frames_total{{outcome="failed",shard="{partition}"}}'.encode() in metrics

        stuck.unlink()
        caught_up([worker])
        wait_for([worker], lambda: status(worker)[0] == 200, 60, "/health to be ok again")
        assert status(worker)[1]["reasons"] == []
        assert_equals_the_fold(worker.snapshot(), first + second, settings.bank)
        assert worker.proc is not None and worker.proc.poll() is None  # the worker itself never restarted
    finally:
        worker.stop()


async def _write_to_lanes(settings: Settings, partition: int, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.servers())
    await producer.start()
    try:
        await producer.send_and_wait(Topics(settings).lanes.name, value, partition=partition)
    finally:
        await producer.stop()


def test_a_lanes_message_that_is_no_frame_is_skipped_and_counted(broker: Broker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap)
    first, second = lines_of(100, 5), lines_of(100, 6)
    worker = Worker(settings, tmp_path).start()
    try:
        produce_raw(settings, keyed(first))
        caught_up([worker])
        partition, _ = shard_of_the_launch(worker)
        asyncio.run(_write_to_lanes(settings, int(partition), b"not a frame"))
        produce_raw(settings, keyed(second))
        caught_up([worker])  # past it: the shard's offset is the partition's last

        code, health = status(worker)
        assert code == 200 and health["shards"][partition]["frames"]["skipped"] == 1
        _, metrics = worker.get("/metrics")
        assert f'orderbank_frames_total{{outcome="skipped",shard="{partition}"}} 1.0'.encode() in metrics
        assert_equals_the_fold(worker.snapshot(), first + second, settings.bank)
    finally:
        worker.stop()
