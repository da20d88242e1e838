"""End to end through Apache Kafka: a generated launch of > 50,000 events, one worker, and the fold.

Once the worker is caught up and idle, the HTTP views and the projection topics must equal the
in-process fold of the same log, canonical JSON byte for byte (positions: the bucket rule).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from orderbank.engine.dev.broker import Broker
from orderbank.engine.kafka.producer import EventProducer
from orderbank.engine.stream.publish import Buckets
from orderbank.engine.stream.views import order_view
from orderbank.projections.bank import canonical
from orderbank.projections.codec import Reason, Rejection
from orderbank.projections.orders import Status
from orderbank.replay.synth import generate, preset
from tests.support.equality import assert_equals_the_fold, fold_lines
from tests.support.gauges import business, samples_of, what_the_bank_says
from tests.support.topics import latest, published, read_topic, unique_settings
from tests.support.workers import Worker, caught_up

pytestmark = pytest.mark.broker
ORDERS, SEED = 23_000, 11


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orderbank.engine.cli", *args],
                          capture_output=True, text=True, timeout=300, check=True)


def test_views_and_projection_topics_equal_the_fold_of_a_launch(broker: Broker, tmp_path: Path) -> None:
    lines = [orjson.dumps(doc) for doc in generate(preset("small", ORDERS), SEED)]
    assert len(lines) >= 50_000
    log = tmp_path / "launch.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    settings = unique_settings(broker.bootstrap)
    where = ("--bootstrap", broker.bootstrap, "--prefix", settings.topic_prefix)
    worker = Worker(settings, tmp_path).start()
    try:
        assert f"sent {len(lines):,} events" in cli("produce", str(log), *where).stdout
        caught_up([worker])
        expected = fold_lines(lines)
        snapshot = expected.snapshot()

        assert_equals_the_fold(worker.snapshot(), lines)
        for name in ("queue", "pool", "cancellations"):
            assert worker.get(f"/{name}") == (200, canonical(snapshot[name]))
        assert worker.get("/queue/YU7") == (200, canonical(expected.queue.lane_snapshot("YU7", expected.now_us)))
        assert_equals_the_fold(canonical(published(settings)), lines)

        positions = {k.decode(): orjson.loads(v) for k, v in
                     latest(read_topic(settings, f"{settings.topic_prefix}.positions")).items()}
        assert positions.keys() == expected.orders.keys()
        buckets = Buckets(settings.position_bucket_ratio)
        for order_id, order in expected.orders.items():
            record = positions[order_id]
            assert record["status"] == order.status.value
            exact = expected.position_of(order_id)
            if order.status is Status.OPEN:
                assert exact is not None and tuple(record["bucket"]) == buckets.of(exact.position)
                assert record["bucket"][0] <= exact.position <= record["bucket"][1]
            else:
                assert exact is None and record["position"] is None

        for order_id in sorted(expected.orders)[::997]:
            assert worker.get(f"/orders/{order_id}") == (200, canonical(order_view(expected, order_id)))
        status, body = worker.get("/orders/YU7-000001")
        assert orjson.loads(body)["position"] == expected.position_of("YU7-000001").position  # type: ignore[union-attr]
        assert worker.get("/orders/NOPE-1")[0] == 404
        status, body = worker.get("/orders/bad%20id")
        assert status == 400 and orjson.loads(body) == {"error": "order_id must be 1-64 of A-Z a-z 0-9 _ . : - "
                                                                 "starting alphanumeric"}
        assert worker.get("/shards/parts?at=soon")[0] == 400

        status, metrics = worker.get("/metrics")
        assert status == 200 and f"orderbank_events_applied_total {float(len(lines))}".encode() in metrics
        assert business(samples_of(metrics)) == what_the_bank_says(expected)

        first_open = next(o for o, order in expected.orders.items() if order.status is Status.OPEN)
        watched = cli("watch", "queue", "--order", first_open, "--for", "3", *where).stdout
        assert first_open in watched and "position" in watched
    finally:
        worker.stop()


def test_the_producer_api_validates_keys_by_order_id_and_numbers_events(broker: Broker) -> None:
    settings = unique_settings(broker.bootstrap)
    docs = [doc for doc in generate(preset("small", 40), 2) if doc["order_id"] == "YU7-000001"]
    assert len(docs) >= 3

    async def send() -> list[Rejection | None]:
        async with EventProducer(settings) as producer:
            out = [await producer.send({k: v for k, v in doc.items() if k != "seq"}, assign_seq=True)
                   for doc in docs]
            out.append(await producer.send(b'{"type": "OrderPlaced"}'))
            await producer.flush()
            return out

    outcomes = asyncio.run(send())
    assert outcomes[:-1] == [None] * len(docs)
    assert isinstance(outcomes[-1], Rejection) and outcomes[-1].reason is Reason.INVALID_FIELD
    records = read_topic(settings, f"{settings.topic_prefix}.events")
    assert {r.key for r in records} == {b"YU7-000001"} and len({r.partition for r in records}) == 1
    assert [orjson.loads(r.value or b"")["seq"] for r in records] == list(range(1, len(docs) + 1))
