"""Every Kafka topic of the engine: its name, partitions, configuration and purpose, in one place.

Flow: producers -> `events` (one event per message, key order_id) -> ingest routes by lane ->
`lanes` (one message = a frame of many events of one shard) -> the shard agent folds them into
its OrderBank -> `bank` changelog (recovery), `deadletter` (rejected input) and the compacted
projection topics `positions`, `queue`, `pool`, `cancellations`. `ensure` creates what is absent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from orderbank.engine.settings import Settings
from orderbank.projections.errors import StreamError

TOPIC_ALREADY_EXISTS = 36
KEEP_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1"}
# Only closed segments are compacted: small ones let the cleaner keep up with a launch, so a
# recovering worker reads about one record per order instead of one per change.
FRAME_BYTES_MAX = str(8 * 1024 * 1024)
"""max.message.bytes of the topics the worker writes in bulk: the largest record batch the broker takes
(the engine's sink writes batches of up to 4 MiB within each topic's limit, orderbank.engine.kafka.sink)."""
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000",
             "segment.bytes": str(32 * 1024 * 1024), "max.message.bytes": FRAME_BYTES_MAX}
BANK_TABLE = "bank"
"""The Faust table (changelog-backed) that recovers the shards; Faust names its changelog."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    doc: str
    config: Mapping[str, str] = field(default_factory=dict)


class Topics:
    """The topic names and specs for one settings object."""

    def __init__(self, settings: Settings) -> None:
        prefix, shards = settings.topic_prefix, settings.shard_partitions
        self.events = TopicSpec(
            f"{prefix}.events", settings.input_partitions,
            "input: one event per message, key order_id; the system of record, kept forever", KEEP_FOREVER)
        # Internal topics are named after the app: two apps reading one input must not share them.
        self.lanes = TopicSpec(
            f"{settings.app_id}-lanes", shards,
            "internal repartition by lane: frames of events with their source coordinates",
            {"cleanup.policy": "delete", "retention.ms": str(7 * 86_400_000), "max.message.bytes": FRAME_BYTES_MAX})
        self.changelog = TopicSpec(
            f"{settings.app_id}-{BANK_TABLE}-changelog", shards,
            "changelog of the bank table: one record per changed order, plus one per shard", COMPACTED)
        # Projection topics are partitioned like the lanes topic: shard p alone writes partition p.
        self.positions = TopicSpec(
            f"{prefix}.positions", shards,
            "queue position of each order (key order_id), published by the bounded rule", COMPACTED)
        self.queue = TopicSpec(
            f"{prefix}.queue", shards,
            "exact lane snapshots: a header per lane and pages of positions", COMPACTED)
        self.pool = TopicSpec(
            f"{prefix}.pool", shards, "prepayment pool rows, key [lane, trim, cohort, currency]", COMPACTED)
        self.cancellations = TopicSpec(
            f"{prefix}.cancellations", shards,
            "cancellation rates, key [shard, 'window', days, trim] | [shard, 'cohort', week, trim] | "
            "[shard, 'overall']", COMPACTED)
        self.deadletter = TopicSpec(
            f"{prefix}.deadletter", 1,
            "rejected input: original key and bytes; reason and source topic/partition/offset in headers",
            {**KEEP_FOREVER, "max.message.bytes": FRAME_BYTES_MAX})

    def all(self) -> list[TopicSpec]:
        return [self.events, self.lanes, self.changelog, self.positions, self.queue, self.pool,
                self.cancellations, self.deadletter]


async def ensure(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Safe to race."""
    wanted = specs if specs is not None else Topics(settings).all()
    async with _admin(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [s for s in wanted if s.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics([
            NewTopic(s.name, s.partitions, settings.replication_factor, topic_configs=dict(s.config))
            for s in missing])
        created = []
        for name, code, *_ in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise StreamError(f"could not create topic {name!r}: Kafka error code {code}")
            if code == 0:
                created.append(name)
        return created


async def partitions_of(settings: Settings, topic: str) -> int:
    """How many partitions a topic has on the broker (0 if it does not exist)."""
    async with _admin(settings) as admin:
        (meta,) = await admin.describe_topics([topic])
        return 0 if meta["error_code"] else len(meta["partitions"])


async def message_limits(settings: Settings, names: list[str]) -> dict[str, int]:
    """Each existing topic's `max.message.bytes`: the largest record batch the broker takes."""
    async with _admin(settings) as admin:
        responses = await admin.describe_configs([
            ConfigResource(ConfigResourceType.TOPIC, name, configs={"max.message.bytes": None}) for name in names])
    return {name: int(value) for response in responses for error, _, _, name, entries in response.resources
            if not error for key, value, *_ in entries if key == "max.message.bytes"}


@asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**settings.kafka_kwargs(), client_id=f"{settings.app_id}-admin")
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()
