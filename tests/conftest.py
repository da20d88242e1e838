"""Shared fixtures. `broker`: one real Apache Kafka (orderbank.engine.dev.broker) for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbank.engine.dev.broker import Broker, BrokerSettings


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A KRaft single node started by the project itself; tests using it are marked `broker`."""
    kafka = Broker(BrokerSettings(state_dir=tmp_path_factory.mktemp("kafka")))
    kafka.start(timeout=120)
    try:
        yield kafka
    finally:
        kafka.stop()
