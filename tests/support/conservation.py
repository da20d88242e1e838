"""Conservation through Kafka: every input offset applied exactly once or dead-lettered, as the fold decides."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orderbank.engine.kafka.topics import Topics
from orderbank.engine.settings import Settings
from orderbank.engine.stream.shards import saved_of, saved_plan_of
from orderbank.projections.bank import OrderBank
from orderbank.projections.codec import Rejection, decode
from tests.support.topics import Record, latest, read_topic
from tests.support.workers import Worker, wait_for


@dataclass(frozen=True)
class Conservation:
    """What became of every input offset, and the workers' own counters."""

    events: int  # input records, all partitions
    applied: int  # distinct input offsets whose event is in the bank (changelog event ids)
    rejected: int  # distinct input offsets dead-lettered
    dead_letters: int  # dead-letter records, repeats of a redelivered bad event included
    counted_applied: int  # the shards' counters
    counted_duplicates: int
    counted_rejected: int


def _by_partition(records: Iterable[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for record in records:
        out.setdefault(record.partition, []).append(record)
    return out


def conserved(settings: Settings, workers: Iterable[Worker]) -> Conservation:
    """Check, per input topic partition, that every offset was applied exactly once or dead-lettered.

    The verdict each input record deserves comes from folding the input topic itself (an order's
    events share a partition, so its partition order is its log order). The worker's verdicts are
    read from Kafka: the applied event ids of every order and plan stream in the bank changelog, and the source
    coordinates in the dead-letter headers. A bad event redelivered after a crash may be
    dead-lettered twice: coordinates are compared as sets, repeats only counted.
    """
    topics = Topics(settings)
    inputs = _by_partition(read_topic(settings, topics.events.name))
    bank, at = OrderBank(settings.bank), dict[int, tuple[int, int]]()
    want: dict[str, set[tuple[int, int]]] = {"applied": set(), "rejected": set(), "duplicate": set()}
    for partition, records in sorted(inputs.items()):
        assert [r.offset for r in records] == list(range(len(records))), f"input partition {partition} has gaps"
        for r in records:
            event = decode(r.value or b"")
            if isinstance(event, Rejection) or r.key != event.order_id.encode():
                want["rejected"].add((partition, r.offset))
                continue
            at.setdefault(event.event_id.int, (partition, r.offset))
            outcome = bank.apply(event)
            verdict = "rejected" if isinstance(outcome, Rejection) else outcome.value
            want[verdict].add((partition, r.offset))

    changelog = latest(read_topic(settings, topics.changelog.name)).items()
    applied_ids = [*(i for key, value in changelog if key.startswith(b"o:") for i in saved_of(value).event_ids()),
                   *(i for key, value in changelog if key.startswith(b"p:") for i in saved_plan_of(value).event_ids())]
    assert len(applied_ids) == len(set(applied_ids)), "an event is applied twice in the bank"
    applied = {at[i] for i in applied_ids}
    letters = read_topic(settings, topics.deadletter.name)
    assert {r.headers["orderbank.source.topic"] for r in letters} <= {topics.events.name.encode()}
    rejected = {(int(r.headers["orderbank.source.partition"]), int(r.headers["orderbank.source.offset"]))
                for r in letters}
    for partition, records in sorted(inputs.items()):
        def mine(coordinates: set[tuple[int, int]], p: int = partition) -> set[int]:
            return {offset for q, offset in coordinates if q == p}

        differences = []
        for what, got in (("applied", applied), ("rejected", rejected)):
            lost, extra = sorted(mine(want[what]) - mine(got)), sorted(mine(got) - mine(want[what]))
            if lost or extra:
                differences.append(f"{what}: {len(lost)} missing {lost[:5]}, {len(extra)} extra {extra[:5]}")
        reasons = Counter(r.headers["orderbank.reason"].decode() for r in letters)
        assert not differences, f"partition {partition} differs from the fold: {differences}; dead letters {reasons}"
        assert not mine(applied) & mine(rejected)
        assert mine(applied) | mine(rejected) | mine(want["duplicate"]) == set(range(len(records))), (
            f"partition {partition}: input offsets neither applied nor dead-lettered")

    def owned_once() -> list[dict[str, Any]] | None:
        """Each shard's health, when every shard is held by exactly one worker (after a rebalance a
        worker may report a shard it is handing over, or not the one it is taking, for a moment)."""
        held = [(p, s) for w in workers for p, s in (w.health() or {"shards": {}})["shards"].items()]
        return [s for _, s in held] if sorted(int(p) for p, _ in held) == list(range(settings.shard_partitions)) \
            else None

    shards = wait_for(workers, owned_once, 60, "each shard held by one worker")
    counted = Conservation(
        events=sum(len(r) for r in inputs.values()), applied=len(applied), rejected=len(rejected),
        dead_letters=len(letters), counted_applied=sum(s["applied"] for s in shards),
        counted_duplicates=sum(s["duplicates"] for s in shards),
        counted_rejected=sum(sum(s["rejected"].values()) for s in shards))
    assert counted.counted_applied == counted.applied == bank.applied, counted
    # Redelivered bad events are rejected (and dead-lettered) again; the counters see every delivery.
    assert counted.counted_rejected >= counted.rejected and counted.dead_letters >= counted.rejected
    assert sum(s["processed"] for s in shards) == (
        counted.counted_applied + counted.counted_duplicates + counted.counted_rejected) >= counted.events
    return counted
