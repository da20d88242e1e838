"""Replaying straight from a Kafka topic gives the same comparison as replaying the log file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.engine.dev.broker import Broker
from orderbank.engine.kafka.source import KafkaSource
from orderbank.replay.compare import ReplaySettings, compare
from orderbank.replay.source import FileSource
from orderbank.replay.synth import generate, preset
from tests.support.topics import create_topic


async def _produce(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for line in lines:
            # The record timestamp is the event's time, as a producer streaming history sets it.
            doc = orjson.loads(line)
            at = int(datetime.fromisoformat(doc["occurred_at"]).timestamp() * 1000)
            await producer.send(topic, line, key=doc["order_id"].encode(), timestamp_ms=at)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.broker
def test_a_topic_replays_like_its_log_file(broker: Broker, tmp_path: Path) -> None:
    lines = [orjson.dumps(doc) for doc in generate(preset("small", 600), 3)]
    log = tmp_path / "launch.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    topic = f"replay-{tmp_path.name}"

    asyncio.run(create_topic(broker.bootstrap, topic, partitions=3))
    asyncio.run(_produce(broker.bootstrap, topic, lines))
    source = KafkaSource(broker.bootstrap, topic)
    assert sorted(source.lines()) == sorted(lines)
    assert list(source.lines()) == list(source.lines())  # re-readable, same order
    settings = ReplaySettings(policies=("fifo", "high-trim-first"), replications=1, fold_history=True)
    from_topic, from_file = compare(source, settings), compare(FileSource(log), settings)
    for summary in (from_topic, from_file):
        summary["log"].pop("name")
    assert orjson.dumps(from_topic, option=orjson.OPT_SORT_KEYS) == orjson.dumps(from_file, option=orjson.OPT_SORT_KEYS)
    later = datetime(2025, 8, 1, tzinfo=UTC)
    tail = list(KafkaSource(broker.bootstrap, topic, since=later).lines())
    assert 0 < len(tail) < len(lines)
    assert all(orjson.loads(line)["occurred_at"] >= "2025-07-31" for line in tail)


@pytest.mark.broker
def test_the_command_replays_a_topic(broker: Broker, tmp_path: Path) -> None:
    lines = [orjson.dumps(doc) for doc in generate(preset("small", 300), 4)]
    topic = f"cli-{tmp_path.name}"
    asyncio.run(create_topic(broker.bootstrap, topic))
    asyncio.run(_produce(broker.bootstrap, topic, lines))
    result = CliRunner().invoke(app, ["replay", "--topic", topic, "--bootstrap", broker.bootstrap, "--policy", "fifo",
                                      "--replications", "1", "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    summary = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    assert summary["log"]["name"] == f"kafka:{topic}" and summary["log"]["orders"] == 300


def test_the_command_wants_a_log_or_a_topic() -> None:
    result = CliRunner().invoke(app, ["replay"])
    assert result.exit_code != 0 and "give either LOG or --topic" in result.output
