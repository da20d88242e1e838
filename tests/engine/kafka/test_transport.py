"""The worker's Kafka transport (orderbank.engine.kafka.transport): its consumer's fetches."""

from __future__ import annotations

from pathlib import Path

from orderbank.engine.kafka.transport import FETCH_MAX_WAIT_MS, Transport
from orderbank.engine.settings import Settings
from orderbank.engine.stream.app import create_app


async def test_the_worker_consumer_waits_briefly_on_fetches(tmp_path: Path) -> None:
    """Faust's own 1.5 s fetch wait starved a busy shard behind fetches of idle partitions (kafka/transport.py)."""
    app = create_app(Settings(data_dir=tmp_path))
    assert isinstance(app.transport, Transport)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS <= 100
    finally:
        await consumer.stop()
