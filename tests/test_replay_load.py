"""Columnar loading keeps the bank's rules: same rejections, same outcomes, fast path = exact path."""

from __future__ import annotations

import uuid
from dataclasses import fields
from pathlib import Path

import numpy as np
import orjson

from engine.logfile import write_docs
from projections.orders import Status
from replay.history import replay_history
from replay.load import load
from replay.orderlog import NEVER, OrderLog
from replay.source import FileSource, MemorySource
from replay.synth import generate, preset


def synthetic(orders: int = 400) -> list[dict[str, object]]:
    return list(generate(preset("yu7", orders=orders), seed=5))


def with_bad_lines(docs: list[dict[str, object]]) -> tuple[bytes, ...]:
    """The log with, after line 50, one line breaking each rule (each with a fresh event id: the
    bank would call a reused one a duplicate, which the loader documents it does not check)."""
    lines = [orjson.dumps(doc) for doc in docs]
    placed = {**docs[0], "event_id": str(uuid.UUID(int=1, version=4))}
    assert placed["type"] == "OrderPlaced"
    v1 = {**placed, "event_id": str(uuid.UUID(int=4, version=4)), "order_id": "OLD-1", "schema_version": 1,
          "currency": "CNY", "list_price_minor": 100, "deposit_minor": 10}
    del v1["list_price"], v1["deposit"], v1["trim_rank"]
    offset = {**placed, "event_id": str(uuid.UUID(int=5, version=4)), "order_id": "TZ-1",
              "placed_at": "2025-06-27T08:00:00+08:00"}
    bad = [
        b"{not json", b"[1, 2]", orjson.dumps({**placed, "type": "OrderShipped"}),
        orjson.dumps({**placed, "order_id": "X-1", "seq": "one"}),
        orjson.dumps({**docs[-1], "order_id": "NOBODY", "event_id": str(uuid.UUID(int=2, version=4))}),
        orjson.dumps({**placed, "order_id": "GAP-1", "seq": 3, "event_id": str(uuid.UUID(int=3, version=4))}),
        lines[1], orjson.dumps(v1), orjson.dumps(offset),
        orjson.dumps({**placed, "order_id": "BIG-1", "trim_rank": 101,
                      "event_id": str(uuid.UUID(int=6, version=4))}),
    ]
    return (*lines[:50], *bad, *lines[50:])


def columns(log: OrderLog) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in fields(log):
        value = getattr(log, f.name)
        if isinstance(value, np.ndarray):
            out[f.name] = value.tolist()
        elif f.name in ("payments", "refunds"):
            out[f.name] = [getattr(value, g.name).tolist() for g in fields(value)]
        elif f.name != "report":
            out[f.name] = value
    return out


def test_rejections_and_outcomes_match_the_bank() -> None:
    source = MemorySource(with_bad_lines(synthetic()))
    log = load(source)
    bank, _ = replay_history(source)
    assert log.report.rejected == dict(bank.rejections)
    assert set(log.report.rejected) == {"malformed_json", "not_an_object", "unknown_type", "invalid_field",
                                        "unknown_order", "seq_gap"}
    assert (log.report.applied, log.report.duplicates) == (bank.applied, bank.duplicates)
    assert log.report.examples[0]["line"] == 51 and log.report.examples[0]["reason"] == "malformed_json"
    status = {order_id: order.status for order_id, order in bank.orders.items()}
    assert log.order_id == list(bank.orders)
    assert [s is Status.DELIVERED for s in status.values()] == (log.delivered_us != NEVER).tolist()
    assert [s is Status.CANCELLED for s in status.values()] == (log.cancelled_us != NEVER).tolist()
    assert log.received.tolist() == [order.received for order in bank.orders.values()]
    old = log.order_id.index("OLD-1")
    assert (log.list_price[old], log.trim_rank[old]) == (100, 0)  # the v1 event was upcast
    tz = log.order_id.index("TZ-1")
    assert log.placed_us[tz] == bank.orders["TZ-1"].placed_us  # +08:00 read as UTC


def test_fast_path_equals_exact_path() -> None:
    source = MemorySource(with_bad_lines(synthetic()))
    fast, exact = load(source), load(source, exact=True)
    assert columns(fast) == columns(exact)
    assert fast.report.rejected == exact.report.rejected
    assert fast.report.exact_lines < 20 < exact.report.exact_lines


def test_gzip_log_loads_like_plain(tmp_path: Path) -> None:
    docs = synthetic(200)
    write_docs(tmp_path / "log.jsonl", docs)
    write_docs(tmp_path / "log.jsonl.gz", docs)
    plain, packed = load(FileSource(tmp_path / "log.jsonl")), load(FileSource(tmp_path / "log.jsonl.gz"))
    assert columns(plain) == columns(packed)
    assert plain.report.applied == len(docs) and plain.report.exact_lines == 0


def test_a_bad_timestamp_in_canonical_shape_falls_back_to_the_exact_path() -> None:
    docs = synthetic(50)
    docs[3] = {**docs[3], "occurred_at": "2025-02-30T10:00:00.000000Z"}  # 30 February
    log = load(MemorySource(tuple(orjson.dumps(doc) for doc in docs)))
    assert log.report.rejected.get("invalid_field") == 1
    assert log.report.exact_lines == len(docs)


def test_folded_bank_agrees_with_the_columns_day_by_day() -> None:
    source = MemorySource(tuple(orjson.dumps(doc) for doc in synthetic(600)))
    log = load(source)
    bank, history = replay_history(source)
    assert log.orders == len(bank.orders)
    assert len(history.days) == log.days
    assert history.rows["backlog"][-1] == sum(len(lane.open) for lane in bank.queue.lanes.values())
