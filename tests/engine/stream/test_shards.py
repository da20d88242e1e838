"""A shard (orderbank.engine.stream.shards) folds lanes frames as the fold does and restores from its changelog."""

from __future__ import annotations

from typing import Any

import orjson

from orderbank.engine.stream.frames import FrameBuilder, unpack
from orderbank.engine.stream.shards import Shard, restore_shard
from orderbank.projections.bank import BankSettings, OrderBank, canonical
from orderbank.projections.codec import Reason, Rejection
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import key_of


def frame_of(lines: list[bytes], start: int) -> bytes:
    """The lines in one frame, at input offsets from `start` over three input partitions."""
    builder = FrameBuilder("orderbank.events")
    for offset, line in enumerate(lines, start=start):
        builder.add(offset % 3, offset, key_of(line), line)
    return builder.build()


def test_shard_folds_frames_dead_letters_rejections_and_restores_from_its_changelog(
        launch_docs: list[dict[str, Any]]) -> None:
    settings = BankSettings()
    shard, changelog = Shard(1, OrderBank(settings)), dict[bytes, bytes]()
    raws = [orjson.dumps(d) for d in launch_docs]
    stray = {"type": "PaymentReceived", "event_id": "00000000-0000-4000-8000-000000000001", "order_id": "NOPE-1",
             "seq": 2, "occurred_at": launch_docs[0]["occurred_at"], "amount": {"minor": 1, "currency": "CNY"}}
    bad = [b"{not json", orjson.dumps(stray)]
    chunks = [raws[:1000], bad + raws[1000:2500], raws[2500:]]
    rejected: list[tuple[Any, Rejection]] = []
    for offset, chunk in enumerate(chunks):
        out = shard.apply(unpack(frame_of(chunk, offset * 10_000)), offset)
        assert out is not None
        rejected += out
        changelog.update(shard.changelog())
    assert shard.apply(unpack(frame_of(raws[:5], 0)), 1) is None  # an offset applied before
    assert [r.reason for _, r in rejected] == [Reason.MALFORMED_JSON, Reason.UNKNOWN_ORDER]
    assert rejected[0][0].value == b"{not json" and rejected[0][0].offset == 10_000
    assert_equals_the_fold(canonical(shard.bank.snapshot()), raws, settings)
    restored = restore_shard(1, changelog.items(), settings)
    assert restored.offset == 2 and restored.processed == shard.processed
    assert_equals_the_fold(canonical(restored.bank.snapshot()), raws, settings)
    assert restore_shard(2, changelog.items(), settings).bank.orders == {}  # another shard's records


def test_a_key_that_is_not_the_order_id_is_rejected(launch_docs: list[dict[str, Any]]) -> None:
    builder = FrameBuilder("in")
    builder.add(0, 0, b"someone-else", orjson.dumps(launch_docs[0]))
    shard = Shard(0, OrderBank())
    (rejected,) = shard.apply(unpack(builder.build()), 0) or []
    assert rejected[1].rule == "key_is_order_id" and shard.bank.orders == {}
