"""Shared fixtures. `broker`: one real Apache Kafka (orderbank.engine.dev.broker) for the whole test session, kept
in a per-user cache of its own (`broker_cache`) as `orderbank broker start` keeps its broker, so commands run with
ORDERBANK_CACHE pointing there find it; `sasl_broker`: one with a SASL_SSL listener too; `fresh_cache`: a cache
with no broker in it; `launch_docs`: a small generated launch for the tests of the pure parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderbank.engine.dev.broker import Broker, BrokerSettings, ensure_jars, local_brokers
from orderbank.replay.synth import generate, preset


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the `broker` fixture, even through another fixture, is marked `broker`."""
    for item in items:
        if {"broker", "sasl_broker"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A KRaft single node started by the project itself, where `orderbank broker start` would keep it."""
    # Its jars come from the user's cache (no download), its state goes where a cache keeps its local broker's.
    kafka = Broker(BrokerSettings(state_dir=local_brokers(tmp_path_factory.mktemp("cache"))[0].state))
    kafka.start(timeout=120)
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def broker_cache(broker: Broker) -> Path:
    """The per-user cache (for ORDERBANK_CACHE) in which `broker` runs as the local broker."""
    return broker.dir.parent


@pytest.fixture(scope="session")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker that also listens for SASL_SSL clients (SCRAM-SHA-512 over TLS, docs/security.md)."""
    with Broker(BrokerSettings(state_dir=tmp_path_factory.mktemp("sasl-ssl") / "broker", sasl_ssl=True)) as kafka:
        yield kafka


@pytest.fixture
def fresh_cache(tmp_path: Path) -> Path:
    """A per-user cache of a test's own (for ORDERBANK_CACHE): no broker runs from it, whatever runs from the user's,
    and it shares the user's Kafka jars (no download)."""
    jars = ensure_jars().parent
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / jars.name).symlink_to(jars)
    return cache


@pytest.fixture(scope="session")
def launch_docs() -> list[dict[str, Any]]:
    """1,500 orders' events (~3,500) as documents; tests read them, never change them."""
    return list(generate(preset("small", 1500), 7))
