"""Bad input through Kafka lands on the dead-letter topic, reasons and original bytes intact, keyed
by a hash of its bytes so a re-sent rejection is recognisable; the good events around it are still
folded, a hostile producer's placements and event ids are judged as the fold judges them, and an
event that makes the reducer raise is dead-lettered too."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from orderbank.engine.dev.broker import Broker
from orderbank.engine.stream.views import order_view
from orderbank.projections.bank import canonical, fold_lines
from orderbank.replay.synth import generate, preset
from tests.support.cases import a_hostile_log
from tests.support.equality import assert_equals_the_fold
from tests.support.topics import keyed, produce_raw, read_topic, unique_settings
from tests.support.workers import Worker, caught_up

pytestmark = pytest.mark.broker


def bad_records(docs: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes, str]]:
    """(key, value, expected reason), each breaking a different rule."""
    last = {}
    for doc in docs:
        last[doc["order_id"]] = doc
    delivered = next(d for d in last.values() if d["type"] == "VehicleDelivered")
    placed = docs[0]

    def event(**changes: Any) -> bytes:
        return orjson.dumps({**placed, "event_id": "5d1e0c4e-6a3b-4d9a-9c55-0b9f1f2b7e11", **changes})

    after_delivery = {"type": "PaymentReceived", "event_id": "0d0a5c1e-2f44-4f38-8f0e-7d5c2b1a9e33",
                      "order_id": delivered["order_id"], "seq": delivered["seq"] + 1,
                      "occurred_at": delivered["occurred_at"], "amount": {"minor": 100, "currency": "CNY"}}
    return [
        (b"X-1", b'{"type": "OrderPlaced", "order_id": ', "malformed_json"),
        (b"X-2", b"\xff\xfe not even utf-8", "malformed_json"),
        (b"X-3", event(order_id="X-3", list_price={"minor": -5, "currency": "CNY"}), "invalid_field"),
        (b"X-4", event(order_id="X-4", type="OrderExploded"), "unknown_type"),
        (b"X-5", event(order_id="X-5", schema_version=9), "unsupported_version"),
        (delivered["order_id"].encode(), orjson.dumps(after_delivery), "illegal_transition"),
        (b"X-6", event(order_id="X-6", type="RefundPaid", seq=2, amount={"minor": 1, "currency": "CNY"},
                       customer_id=None), "invalid_field"),
        (b"X-7", orjson.dumps({**after_delivery, "order_id": "X-7",
                               "event_id": "1d0a5c1e-2f44-4f38-8f0e-7d5c2b1a9e33"}), "unknown_order"),
        (b"someone-else", event(order_id="X-8"), "invalid_field"),  # valid, but not keyed by its order_id
    ]


@pytest.mark.parametrize("ingest", ["process", "inline"])
def test_bad_input_is_dead_lettered_with_its_reason_and_bytes_and_good_events_still_apply(
        broker: Broker, tmp_path: Path, ingest: str) -> None:
    docs = list(generate(preset("small", 400), 5))
    good = [orjson.dumps(d) for d in docs]
    bad = bad_records(docs)
    settings = unique_settings(broker.bootstrap, ingest=ingest)
    worker = Worker(settings, tmp_path).start()
    try:
        coordinates = produce_raw(settings, keyed(good) + [(key, value) for key, value, _ in bad])
        caught_up([worker])

        letters = {(int(r.headers["orderbank.source.partition"]), int(r.headers["orderbank.source.offset"])): r
                   for r in read_topic(settings, f"{settings.topic_prefix}.deadletter")}
        assert len(letters) == len(bad)
        for (key, value, reason), where in zip(bad, coordinates[len(good):], strict=True):
            letter = letters[where]
            assert (letter.headers["orderbank.key"], letter.value) == (key, value)
            assert letter.key == f"sha256:{hashlib.sha256(value).hexdigest()}".encode()
            assert letter.headers["orderbank.reason"].decode() == reason
            assert letter.headers["orderbank.source.topic"].decode() == f"{settings.topic_prefix}.events"
            assert letter.headers["orderbank.message"] and letter.headers["orderbank.rule"]
        assert letters[coordinates[-1]].headers["orderbank.rule"] == b"key_is_order_id"

        # The fold of the log rejects the same lines, except the one whose only fault is its Kafka key.
        assert_equals_the_fold(worker.snapshot(), good + [value for _, value, _ in bad[:-1]], settings.bank)
        _, metrics = worker.get("/metrics")
        assert b'orderbank_rejections_total{reason="malformed_json"} 2.0' in metrics
        assert f"orderbank_ingested_events_total {len(good) + len(bad)}.0".encode() in metrics
    finally:
        worker.stop()


def test_an_event_that_raises_is_dead_lettered_as_internal_error_and_the_shard_goes_on(
        broker: Broker, tmp_path: Path) -> None:
    docs = list(generate(preset("small", 400), 5))
    lines = [orjson.dumps(d) for d in docs]
    bad = next(i for i, d in enumerate(docs) if d["type"] == "OrderCancelled")  # half-applied when it raises
    settings = unique_settings(broker.bootstrap)
    worker = Worker(settings, tmp_path, preload="tests.support.raising_event")
    (tmp_path / worker.name).mkdir()
    (tmp_path / worker.name / "raise-on-event").write_text(docs[bad]["event_id"])  # read by the preload
    worker.start()
    try:
        coordinates = produce_raw(settings, keyed(lines))
        caught_up([worker])

        letters = {(int(r.headers["orderbank.source.partition"]), int(r.headers["orderbank.source.offset"])): r
                   for r in read_topic(settings, f"{settings.topic_prefix}.deadletter")}
        others = lines[:bad] + lines[bad + 1:]
        # Besides it, the events the fold without it rejects: its order's refund, on an order still open.
        _, rejected = fold_lines(others, settings.bank)
        expected = [coordinates[bad]] + [coordinates[n - 1 if n <= bad else n] for n, _ in rejected]
        assert sorted(letters) == sorted(expected) and rejected
        letter = letters[coordinates[bad]]
        assert letter.value == lines[bad] and letter.headers["orderbank.key"] == docs[bad]["order_id"].encode()
        assert letter.headers["orderbank.reason"] == b"internal_error"
        assert letter.headers["orderbank.message"].startswith(b"RuntimeError: raising_event: injected")
        assert letter.headers["orderbank.event_id"] == docs[bad]["event_id"].encode()
        assert_equals_the_fold(worker.snapshot(), others, settings.bank)

        health = worker.health()
        assert health is not None and health["status"] == "ok" and health["agent"]["crashes"] == 0
        (shard,) = [s for s in health["shards"].values() if s["lanes"]]
        assert shard["rejected"]["internal_error"] == 1 and shard["frames"]["failed"] == 0
        assert worker.proc is not None and worker.proc.poll() is None  # never restarted
    finally:
        worker.stop()


def test_a_hostile_producer_is_judged_as_the_fold_judges_it_and_its_bad_lines_sent_again_are_not_counted_again(
        broker: Broker, tmp_path: Path) -> None:
    """A placement no bank applies naming another model, before an order's real one, once made a
    second lane of the order's model (/orders/X said 1 of 1, no ETA); an event id taken by another
    order was applied; a producer's re-run dead-lettered and counted every bad line again."""
    lines = a_hostile_log()
    settings = unique_settings(broker.bootstrap)
    worker = Worker(settings, tmp_path).start()
    try:
        produce_raw(settings, keyed(lines))
        caught_up([worker])
        bank, rejected = fold_lines(lines, settings.bank)
        assert_equals_the_fold(worker.snapshot(), lines, settings.bank)
        view = order_view(bank, "X")
        assert (view["position"], view["open_in_lane"]) == (4, 4)
        assert worker.get("/orders/X") == (200, canonical(view))

        bad = sorted({lines[number - 1] for number, _ in rejected})
        produce_raw(settings, keyed(bad))  # the producer runs again over its bad lines
        caught_up([worker])
        bank, rejected = fold_lines(lines + bad, settings.bank)
        assert len(rejected) == 6 and bank.duplicates == 3 + len(bad)
        shards = (worker.health() or {})["shards"].values()
        assert sum((Counter(s["rejected"]) for s in shards), Counter[str]()) == bank.rejections
        assert sum(s["duplicates"] for s in shards) == bank.duplicates
        letters = read_topic(settings, f"{settings.topic_prefix}.deadletter")
        assert sorted((r.value, r.headers["orderbank.reason"].decode()) for r in letters) == sorted(
            (lines[number - 1], rejection.reason.value) for number, rejection in rejected)
        assert all(r.key == f"sha256:{hashlib.sha256(r.value or b'').hexdigest()}".encode() for r in letters)
    finally:
        worker.stop()
