"""Which partition a key goes to: Kafka's default partitioner, shared by the ingest, the runtime and the views."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(key: bytes | None, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), so Faust's router finds the same partition."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions if key is not None else 0
