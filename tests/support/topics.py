"""Topics for the streaming tests: fresh settings per test, producing raw records, reading topics back.

Each test gets its own topic prefix and app id (`unique_settings`), so tests share one broker
(tests/conftest.py) without seeing each other's data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from orderbank.engine.kafka.topics import Topics, ensure, partitions_of
from orderbank.engine.settings import Settings
from orderbank.projections.pool import totals

SERVICE_TOKEN = "test-service-token-0123456789"
LOOKUP_KEY = "test-lookup-key-0123456789"


def unique_settings(bootstrap: str, **overrides: Any) -> Settings:
    """Settings of a test's own: its app id and topic prefix, quick timeouts and publishing, web credentials."""
    name = f"t{uuid.uuid4().hex[:10]}"
    return Settings(bootstrap_servers=bootstrap, app_id=name, topic_prefix=name, session_timeout_s=6.0,
                    publish_interval_s=0.5, idle_after_s=0.3, web_service_token=SERVICE_TOKEN,
                    web_lookup_key=LOOKUP_KEY, **overrides)


def secrets_env(settings: Settings) -> dict[str, str]:
    """The web credentials of `settings` as ORDERBANK_* variables (settings' dumps leave them out)."""
    pairs = (("WEB_SERVICE_TOKEN", settings.web_service_token), ("WEB_LOOKUP_KEY", settings.web_lookup_key))
    return {f"ORDERBANK_{name}": value.get_secret_value() for name, value in pairs if value is not None}


async def create_topic(bootstrap: str, name: str, partitions: int = 1, **client: Any) -> None:
    """Create a plain topic: the project's brokers never create one for a client that writes to it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def with_topics(bootstrap: str, **overrides: Any) -> Settings:
    """Fresh settings whose topics exist before the first worker starts, as a deployment creates them.

    A worker creates absent topics itself, but Faust may assign its group before the lanes topic
    exists ("Ignoring missing topic") and then hold no shard until the next rebalance.
    """
    settings = unique_settings(bootstrap, **overrides)
    asyncio.run(ensure(settings))
    return settings


async def _produce(settings: Settings, values: Iterable[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Send raw records (no validation) to the input topic; returns their (partition, offset)."""
    topic = Topics(settings).events
    await ensure(settings, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=settings.servers(), enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic.name, value, key=key) for key, value in values]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


def produce_raw(settings: Settings, values: Iterable[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    return asyncio.run(_produce(settings, values))


def key_of(line: bytes) -> bytes | None:
    """The key a producer gives a line: its order_id (none for a line without one to read)."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    order_id = doc.get("order_id") if isinstance(doc, dict) else None
    return order_id.encode() if isinstance(order_id, str) else None


def keyed(lines: Iterable[bytes]) -> list[tuple[bytes | None, bytes]]:
    """Records keyed by order_id, as producers must write them."""
    return [(key_of(line), line) for line in lines]


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def _read(settings: Settings, topic: str) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.servers(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(await partitions_of(settings, topic))]
        assert tps, f"topic {topic} does not exist"
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        out: list[Record] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                out += [Record(tp.partition, r.offset, r.key, r.value, dict(r.headers)) for r in records
                        if r.offset < ends[tp]]
        return out
    finally:
        await consumer.stop()


def read_topic(settings: Settings, topic: str) -> list[Record]:
    return asyncio.run(_read(settings, topic))


def latest(records: Iterable[Record]) -> dict[bytes, bytes]:
    """What a compacted topic means: the latest value per key, tombstoned keys removed."""
    out: dict[bytes, bytes] = {}
    for record in records:
        assert record.key is not None
        if record.value is None:
            out.pop(record.key, None)
        else:
            out[record.key] = record.value
    return out


def published(settings: Settings) -> dict[str, Any]:
    """The bank as the projection topics hold it, assembled into the shape of OrderBank.snapshot().

    Valid when one shard holds every lane (one clock); cancellations are read from that shard.
    """
    prefix = settings.topic_prefix
    queue = {tuple(orjson.loads(k)): orjson.loads(v)
             for k, v in latest(read_topic(settings, f"{prefix}.queue")).items()}
    lanes, policy, window, as_of = {}, None, None, None
    for key, header in queue.items():
        if key[0] != "lane":
            continue
        positions: dict[str, Any] = {}
        for page in range(header["pages"]):
            positions.update(queue[("page", key[1], page)]["positions"])
        lanes[key[1]] = {"lane": key[1], "open": header["open"], "throughput_per_day": header["throughput_per_day"],
                         "eta_basis": header["eta_basis"], "eta_as_of": header["eta_as_of"],
                         "eta_note": header["eta_note"], "positions": positions}
        policy, window, as_of = header["policy"], header["window_days"], header["as_of"]
    rows = sorted((orjson.loads(v) for v in latest(read_topic(settings, f"{prefix}.pool")).values()),
                  key=lambda r: (r["lane"], r["trim"], r["cohort"], r["currency"]))
    rates = {tuple(orjson.loads(k)): orjson.loads(v)
             for k, v in latest(read_topic(settings, f"{prefix}.cancellations")).items()}
    shards = {key[0] for key in rates}
    assert len(shards) == 1, f"cancellations come from shards {shards}: not one clock"
    windows = sorted((v for k, v in rates.items() if k[1] == "window"), key=lambda w: (w["window_days"], w["trim"]))
    cohorts = sorted((v for k, v in rates.items() if k[1] == "cohort"), key=lambda c: (c["cohort"], c["trim"]))
    overall = next(v for k, v in rates.items() if k[1] == "overall")
    return {"as_of": as_of, "queue": {"policy": policy, "window_days": window, "lanes": lanes},
            "pool": {"buckets": rows, "totals": totals(rows)},
            "cancellations": {"windows": windows, "cohorts": cohorts, "overall": overall}}

