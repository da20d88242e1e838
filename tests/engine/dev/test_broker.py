"""The broker launcher starts a real Kafka that clients can use and restarts it without loss."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Collection
from pathlib import Path

import pytest

from orderbank.engine.dev import broker as broker_module
from orderbank.engine.dev.broker import Broker, BrokerSettings, start_background, status, stop_background
from orderbank.engine.dev.ports import free_ports
from tests.support.topics import create_topic

pytestmark = pytest.mark.broker  # Java 17 and Maven are requirements: without them these fail, not skip


async def _topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    if topic not in await _topics(bootstrap):
        await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, topic: str) -> bytes | None:
    from aiokafka import AIOKafkaConsumer

    # No group: nothing to coordinate, so reading back needs no group join.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=20)
        return msg.value  # type: ignore[no-any-return]
    finally:
        await consumer.stop()


def _settings(tmp_path: Path) -> BrokerSettings:
    return BrokerSettings(state_dir=tmp_path / "broker")


def _gone(pid: int, within: float = 10.0) -> bool:
    """The process has exited (and, if it is our child, been reaped) within `within` seconds: a JVM
    whose /proc entry already looks dead may still be tearing down for a moment."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(ChildProcessError):  # reap it if it is our (zombie) child
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_start_produce_consume_stop(tmp_path: Path) -> None:
    broker = Broker(_settings(tmp_path))
    with broker:
        pid = broker.pid
        assert pid is not None
        host, port = broker.bootstrap.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=2).close()
        topic = f"t-{uuid.uuid4().hex[:8]}"
        asyncio.run(_produce(broker.bootstrap, topic, b"hello"))
        assert asyncio.run(_consume_one(broker.bootstrap, topic)) == b"hello"
    assert broker.pid is None and _gone(pid)


def test_restart_and_crash_keep_data(tmp_path: Path) -> None:
    with Broker(_settings(tmp_path)) as broker:
        bootstrap, topic = broker.bootstrap, "orders"
        asyncio.run(_produce(bootstrap, topic, b"kept"))
        assert broker.restart() == bootstrap  # same port: clients can reconnect as-is
        assert asyncio.run(_consume_one(bootstrap, topic)) == b"kept"
        old_pid = broker.pid
        assert old_pid is not None
        broker.kill()  # unclean: Kafka must recover its log on the next start
        assert _gone(old_pid)
        assert broker.restart() == bootstrap
        assert asyncio.run(_consume_one(bootstrap, topic)) == b"kept"


def test_background_start_status_stop(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    bootstrap = start_background(settings)
    try:
        st = status(settings)
        assert st.running and st.bootstrap == bootstrap and st.pid is not None
    finally:
        assert stop_background(settings)
    assert not status(settings).running and _gone(st.pid)
    assert not stop_background(settings)  # stopping twice is harmless


def test_a_fresh_broker_picks_again_when_another_process_took_its_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        squatted = squatter.getsockname()[1]
        picks: list[list[int]] = []
        real = free_ports

        def first_pick_squatted(host: str, count: int, taken: Collection[int] = ()) -> list[int]:
            ports = real(host, count, taken)
            picks.append([squatted, *ports[1:]] if not picks else ports)
            return picks[-1]

        monkeypatch.setattr(broker_module, "free_ports", first_pick_squatted)
        with Broker(_settings(tmp_path)) as broker:
            assert len(picks) == 2 and picks[0][0] == squatted
            assert broker.bootstrap == f"127.0.0.1:{picks[1][0]}"
            topic = f"t-{uuid.uuid4().hex[:8]}"
            asyncio.run(_produce(broker.bootstrap, topic, b"on the second pick"))
            assert asyncio.run(_consume_one(broker.bootstrap, topic)) == b"on the second pick"


async def _first_assignments(bootstrap: str, topic: str, members: int) -> list[set[int]]:
    """Start `members` consumers of one group a second apart (as workers started together come up); the
    partitions each was first given."""
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    firsts: list[set[int]] = [set() for _ in range(members)]

    class Record(ConsumerRebalanceListener):  # type: ignore[misc]
        def __init__(self, member: int) -> None:
            self.member = member

        async def on_partitions_revoked(self, revoked: object) -> None:
            return None

        async def on_partitions_assigned(self, assigned: Collection[object]) -> None:
            if assigned and not firsts[self.member]:
                firsts[self.member] = {tp.partition for tp in assigned}  # type: ignore[attr-defined]

    consumers = [AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="together") for _ in range(members)]
    for member, consumer in enumerate(consumers):
        consumer.subscribe([topic], listener=Record(member))

    async def start(member: int) -> None:
        await asyncio.sleep(member)
        await consumers[member].start()

    try:
        await asyncio.gather(*(start(member) for member in range(members)))
        deadline = time.monotonic() + 30
        while not all(firsts) and time.monotonic() < deadline:
            await asyncio.gather(*(consumer.getmany(timeout_ms=200) for consumer in consumers))
        return firsts
    finally:
        await asyncio.gather(*(consumer.stop() for consumer in consumers))


def test_with_a_join_delay_consumers_started_together_share_the_first_assignment(tmp_path: Path) -> None:
    with Broker(BrokerSettings(state_dir=tmp_path / "broker", join_delay_ms=3000)) as broker:
        asyncio.run(create_topic(broker.bootstrap, "shared", partitions=4))
        firsts = asyncio.run(_first_assignments(broker.bootstrap, "shared", 2))
    # Neither was given all four partitions first, to lose half of them at the next rebalance.
    assert sorted(len(first) for first in firsts) == [2, 2] and firsts[0] | firsts[1] == {0, 1, 2, 3}
