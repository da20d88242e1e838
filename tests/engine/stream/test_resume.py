"""A shard resumes from its own changelog offset, not from where its consumer group's commit says.

Faust's stream drops, and acks, lanes messages that arrive while its flow control is off or that
were fetched in an older rebalance generation, so the group's committed offset can pass frames no
shard applied (this lost events after SIGKILLs and rebalances). These tests put a real broker in
that state on purpose: frames written straight to the lanes topic, as the ingest writes them, none
applied yet, and the worker group's offset committed past some or all of them. A worker started
on it must still apply every frame, in order, and say that it read frames again. Only frames the
topic no longer holds (retention) are given up, with an error naming them.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from orderbank.engine.dev.broker import Broker
from orderbank.engine.kafka.sink import Outbox, Sink
from orderbank.engine.kafka.topics import Topics, ensure
from orderbank.engine.settings import Settings
from orderbank.engine.stream.frames import unpack
from orderbank.replay.synth import generate, preset
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import unique_settings
from tests.support.ways import frames_of
from tests.support.workers import Worker, caught_up

pytestmark = pytest.mark.broker


async def _write_and_commit(settings: Settings, frames: dict[int, list[bytes]], committed: str) -> None:
    await ensure(settings)
    lanes = Topics(settings).lanes.name
    sink = Sink(settings)
    outbox = Outbox()
    for shard, values in frames.items():
        for value in values:
            outbox.add(lanes, shard, str(shard).encode(), value)
    await sink.write(outbox)
    await sink.stop()
    # What Faust's acks of dropped messages leave behind: the worker group's commit past frames
    # that no shard applied.
    group = AIOKafkaConsumer(bootstrap_servers=settings.servers(), group_id=settings.app_id,
                             enable_auto_commit=False)
    await group.start()
    try:
        offsets = {TopicPartition(lanes, shard): len(values) if committed == "all" else len(values) // 2
                   for shard, values in frames.items()}
        group.assign(list(offsets))
        await group.commit(offsets)
    finally:
        await group.stop()


@pytest.mark.parametrize("committed", ["half", "all"])
def test_frames_the_group_committed_but_no_shard_applied_are_read_again(
        broker: Broker, tmp_path: Path, committed: str) -> None:
    settings = unique_settings(broker.bootstrap, lane_by="model_trim")  # three lanes on shards 0, 1 and 2
    lines = [orjson.dumps(doc) for doc in generate(preset("small", 600), 53)]
    frames = frames_of(lines, settings)
    # and the model's plan (which plans no trim lane) alone on the fourth
    sizes = sorted(len(values) for values in frames.values())
    assert len(frames) == 4 and sizes[0] == 1 and sizes[1] >= 4
    asyncio.run(_write_and_commit(settings, frames, committed))

    worker = Worker(settings, tmp_path, "w").start()
    try:
        caught_up([worker], timeout=90)
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
        status, metrics = worker.get("/metrics")
        rereads = re.search(rb"^orderbank_lanes_rereads_total (\S+)$", metrics, re.MULTILINE)
        skipped = sum(1 for values in frames.values() if (len(values) if committed == "all" else len(values) // 2))
        assert status == 200 and rereads is not None and float(rereads.group(1)) >= skipped  # a shard the commit passed
    finally:
        worker.stop()


async def _delete_before(settings: Settings, shard: int, offset: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.servers())
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(Topics(settings).lanes.name, shard): RecordsToDelete(offset)})
    finally:
        await admin.close()


def test_frames_deleted_by_retention_before_any_shard_applied_them_are_given_up_loudly(
        broker: Broker, tmp_path: Path) -> None:
    settings = unique_settings(broker.bootstrap, lane_by="model_trim")
    lines = [orjson.dumps(doc) for doc in generate(preset("small", 600), 59)]
    frames = frames_of(lines, settings)
    shard = max(frames, key=lambda p: (len(frames[p]), p))
    deleted = len(frames[shard]) // 2
    asyncio.run(_write_and_commit(settings, frames, "half"))
    asyncio.run(_delete_before(settings, shard, deleted))  # as lanes retention would, the shard behind
    gone = {entry.value for frame in frames[shard][:deleted] for entry in unpack(frame).entries}

    worker = Worker(settings, tmp_path, "w").start()
    try:
        caught_up([worker], timeout=90)
        # The rest is applied as if the deleted events never came: later events of their orders are rejected.
        kept = [line for line in lines if line not in gone]
        assert_equals_the_fold(worker.snapshot(), kept, settings.bank)
        assert f"shard {shard}: lanes offsets 0..{deleted - 1} were deleted by retention" in worker.log_tail(400)
    finally:
        worker.stop()
