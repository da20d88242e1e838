"""Shared fixtures. `broker`: one real Apache Kafka (orderbank.engine.dev.broker) for the whole test session;
`launch_docs`: a small generated launch for the tests of the pure parts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orderbank.engine.dev.broker import Broker, BrokerSettings
from orderbank.replay.synth import generate, preset


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the `broker` fixture, even through another fixture, is marked `broker`."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A KRaft single node started by the project itself."""
    kafka = Broker(BrokerSettings(state_dir=tmp_path_factory.mktemp("kafka")))
    kafka.start(timeout=120)
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def launch_docs() -> list[dict[str, Any]]:
    """1,500 orders' events (~3,500) as documents; tests read them, never change them."""
    return list(generate(preset("small", 1500), 7))
