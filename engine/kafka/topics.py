"""Every Kafka topic of the engine: its name, partitions, configuration and purpose, in one place.

Flow: producers -> `events` (one event per message, key order_id) -> ingest routes by lane ->
`lanes` (one message = a frame of many events of one shard) -> the shard agent folds them into
its OrderBank -> `bank` changelog (recovery), `deadletter` (rejected input) and the compacted
projection topics `positions`, `queue`, `pool`, `cancellations`. `ensure` creates what is absent
and checks what exists (`check`): a topic with another partition count or cleanup policy than the
engine's would misroute or lose records, so it stops the worker with a one-line explanation.
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


class TopicMismatch(StreamError):
    """A topic exists with another partition count or cleanup policy than the engine's."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    doc: str
    config: Mapping[str, str] = field(default_factory=dict)
    # The input's partitioning is the producers' choice; every other topic is partitioned like the shards.
    fixed_partitions: bool = True

    def mismatch(self, partitions: int, cleanup_policy: str | None) -> str | None:
        """Why an existing topic of this name cannot serve, or None."""
        if self.fixed_partitions and partitions != self.partitions:
            return (f"topic {self.name} has {partitions} partition(s), the engine needs {self.partitions}: delete it "
                    f"(kafka-topics.sh --delete --topic {self.name}) or set another ORDERBANK_TOPIC_PREFIX / "
                    "ORDERBANK_APP_ID, or ORDERBANK_SHARD_PARTITIONS to match")
        wanted = self.config.get("cleanup.policy", "delete")
        if cleanup_policy is not None and set(cleanup_policy.split(",")) != {wanted}:
            return (f"topic {self.name} has cleanup.policy={cleanup_policy}, the engine needs {wanted}"
                    + (" (compaction would drop all but the last event of each order)" if wanted == "delete" else
                       " (without compaction a recovery or subscriber reads every change ever made)")
                    + f": fix it (kafka-configs.sh --alter --entity-type topics --entity-name {self.name} "
                      f"--add-config cleanup.policy={wanted}) or delete the topic")
        return None


class Topics:
    """The topic names and specs for one settings object."""

    def __init__(self, settings: Settings) -> None:
        prefix, shards = settings.topic_prefix, settings.shard_partitions
        self.events = TopicSpec(
            f"{prefix}.events", settings.input_partitions,
            "input: one event per message, key order_id; the system of record, kept forever", KEEP_FOREVER,
            fixed_partitions=False)
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
            "rejected input: original bytes keyed sha256:<hex>; original key, reason and source in headers",
            {**KEEP_FOREVER, "max.message.bytes": FRAME_BYTES_MAX}, fixed_partitions=False)

    def all(self) -> list[TopicSpec]:
        return [self.events, self.lanes, self.changelog, self.positions, self.queue, self.pool,
                self.cancellations, self.deadletter]


async def ensure(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet, check those that do; returns the names created. Safe to race."""
    wanted = specs if specs is not None else Topics(settings).all()
    async with _admin(settings) as admin:
        existing = set(await admin.list_topics())
        await _check(admin, [s for s in wanted if s.name in existing])
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
    """How many partitions a topic has on the broker (0 if it does not exist); creates nothing."""
    async with _admin(settings) as admin:
        if topic not in set(await admin.list_topics()):
            return 0
        (meta,) = await admin.describe_topics([topic])
        return 0 if meta["error_code"] else len(meta["partitions"])


async def check(settings: Settings, specs: list[TopicSpec]) -> list[TopicSpec]:
    """The specs whose topics exist, each checked (TopicMismatch); creates nothing, as a reader must not."""
    async with _admin(settings) as admin:
        existing = set(await admin.list_topics())
        present = [s for s in specs if s.name in existing]
        await _check(admin, present)
        return present


async def _check(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    # Only topics known to exist are described: a metadata request for a missing one may create it.
    described = await admin.describe_topics([s.name for s in specs])
    partitions = {meta["topic"]: len(meta["partitions"]) for meta in described if not meta["error_code"]}
    responses = await admin.describe_configs([
        ConfigResource(ConfigResourceType.TOPIC, s.name, configs={"cleanup.policy": None}) for s in specs])
    policies = {name: value for response in responses for error, _, _, name, entries in response.resources
                if not error for key, value, *_ in entries if key == "cleanup.policy"}
    for spec in specs:
        if spec.name in partitions:
            problem = spec.mismatch(partitions[spec.name], policies.get(spec.name))
            if problem is not None:
                raise TopicMismatch(problem)


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
