"""Topics are checked, not assumed (real broker): a reader never creates a topic, and a topic that exists with
the wrong partition count or cleanup policy stops the worker and `watch` with a one-line explanation.

Found by an attack on 48cf5fe: with auto-creation on, `orderbank watch queue` before any worker created
`<prefix>.positions` with one partition, and the worker then crashed on its first frame at every restart.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orderbank.engine.dev.broker import Broker
from orderbank.engine.kafka.topics import Topics, TopicSpec, ensure
from orderbank.engine.settings import Settings
from tests.support.topics import unique_settings
from tests.support.workers import Worker, wait_until

pytestmark = pytest.mark.broker


async def _topics(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _create(settings: Settings, spec: TopicSpec, partitions: int, config: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(spec.name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


def watch(settings: Settings, what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orderbank.engine.cli", "watch", what, "--for", "1",
                           "--bootstrap", settings.bootstrap_servers, "--prefix", settings.topic_prefix],
                          capture_output=True, text=True, timeout=120)


def test_watch_before_any_worker_creates_no_topic(broker: Broker) -> None:
    settings = unique_settings(broker.bootstrap)
    done = watch(settings, "queue")
    assert done.returncode == 1 and f"topic {settings.topic_prefix}.positions does not exist yet" in done.stderr
    assert not {name for name in asyncio.run(_topics(settings)) if name.startswith(settings.topic_prefix)}


def test_a_topic_with_the_wrong_partition_count_stops_worker_and_watch(broker: Broker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap)
    spec = Topics(settings).positions
    asyncio.run(_create(settings, spec, 1, {"cleanup.policy": "compact"}))
    done = watch(settings, "queue")
    assert done.returncode == 1
    assert f"orderbank watch: topic {spec.name} has 1 partition(s), the engine needs {spec.partitions}" in done.stderr
    assert "Traceback" not in done.stderr
    worker = Worker(settings, tmp_path)
    with pytest.raises(AssertionError, match=f"exited with 1:(.|\n)*topic {spec.name} has 1 partition"):
        worker.start()


def test_a_compacted_input_topic_is_refused(broker: Broker) -> None:
    """Compaction keeps one event per order id: the system of record would lose all but each order's last."""
    settings = unique_settings(broker.bootstrap)
    events = Topics(settings).events
    asyncio.run(_create(settings, events, 2, {"cleanup.policy": "compact"}))
    with pytest.raises(RuntimeError, match=r"cleanup\.policy=compact, the engine needs delete"):
        asyncio.run(ensure(settings))
    created = wait_until(lambda: asyncio.run(_topics(settings)), 10, "topics")
    assert Topics(settings).lanes.name not in created  # nothing created past the first problem
