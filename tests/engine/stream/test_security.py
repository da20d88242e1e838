"""The engine through a SASL_SSL listener: a worker configured only by ORDERBANK_KAFKA_* variables folds a log
like the pure fold does, a wrong password stops a worker at once with a clear message, and no topic, dead
letter or log line holds the password.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from orderbank.engine.dev.broker import Broker
from orderbank.engine.dev.ports import free_port
from orderbank.engine.kafka.producer import EventProducer
from orderbank.engine.kafka.security import KafkaSecurity
from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.app import APP
from orderbank.replay.synth import generate, preset
from tests import REPO_ROOT
from tests.support.equality import assert_equals_the_fold
from tests.support.sasl import listener_env
from tests.support.topics import read_topic, unique_settings
from tests.support.workers import Worker, wait_until

pytestmark = pytest.mark.broker
WRONG = "wrong-Zq8-worker-password"
BAD_EVENT = b'{"type": "OrderPlaced", "order_id": "YU7-BAD", "seq": 1, "model": '  # truncated JSON


async def send(settings: Settings, lines: list[bytes]) -> None:
    """The good lines through the producer API, then one malformed record straight into the input topic."""
    async with EventProducer(settings) as producer:
        for line in lines:
            assert await producer.send(line) is None
        await producer.flush()
    raw = AIOKafkaProducer(**settings.kafka_kwargs(), acks="all")
    await raw.start()
    try:
        await raw.send_and_wait(Topics(settings).events.name, BAD_EVENT, key=b"YU7-BAD")
    finally:
        await raw.stop()


def test_a_worker_through_sasl_ssl_equals_the_fold_and_stores_no_credentials(
        sasl_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = sasl_broker.sasl_ssl
    for name, value in listener_env(listener).items():  # the worker child inherits them
        monkeypatch.setenv(name, value)
    settings = unique_settings(listener.bootstrap)
    assert settings.security.security_protocol == "SASL_SSL" and listener.password not in repr(settings)
    lines = [orjson.dumps(doc) for doc in generate(preset("small", 1500), 5)]
    assert len(lines) >= 3000
    worker = Worker(settings, tmp_path).start()
    try:
        asyncio.run(send(settings, lines))

        def settled() -> bool:
            shards = (worker.health() or {"shards": {}})["shards"].values()
            return len(shards) == settings.shard_partitions and all(s["published"] for s in shards) and \
                sum(s["processed"] for s in shards) == len(lines) + 1

        wait_until(settled, 120, "the worker to fold every event", every=0.3)
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
    finally:
        worker.stop()

    # Read back through the broker's PLAINTEXT listener: same data, no credentials needed.
    plain = settings.model_copy(update={"bootstrap_servers": sasl_broker.bootstrap, "security": KafkaSecurity()})
    topics = Topics(plain)
    (dead,) = read_topic(plain, topics.deadletter.name)
    assert (dead.headers["orderbank.key"], dead.value, dead.headers["orderbank.reason"]) == (
        b"YU7-BAD", BAD_EVENT, b"malformed_json")
    secret = listener.password.encode()
    for spec in topics.all():
        for record in read_topic(plain, spec.name):
            stored = [record.key or b"", record.value or b"", *record.headers.values(),
                      *(name.encode() for name in record.headers)]
            assert not any(secret in part for part in stored), f"the password is in a record of {spec.name}"
    assert listener.password not in (tmp_path / f"{worker.name}.log").read_text()


def test_a_worker_with_a_wrong_password_exits_at_once_with_a_clear_message(sasl_broker: Broker,
                                                                           tmp_path: Path) -> None:
    listener = sasl_broker.sasl_ssl
    env = {**os.environ, **listener_env(listener, password=WRONG), "ORDERBANK_BOOTSTRAP_SERVERS": listener.bootstrap,
           "ORDERBANK_APP_ID": "wrong-pw", "ORDERBANK_TOPIC_PREFIX": "wrong-pw",
           "ORDERBANK_WEB_PORT": str(free_port()), "ORDERBANK_DATA_DIR": str(tmp_path / "worker")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "faust", "-A", APP, "worker", "-l", "info"], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    elapsed, output = time.monotonic() - started, done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert elapsed < 30
    assert f"authentication failed at {listener.bootstrap} for user '{listener.username}'" in output
    assert "ORDERBANK_KAFKA_PASSWORD" in output
    assert WRONG not in output and listener.password not in output
