"""What `orderbank watch` prints for each kind of record: for people, times to the second, money in major units with
its currency, an ETA as its band or "no ETA yet", a dead letter's bytes escaped; for tools (`--json`), one compact
JSON object per line holding the record as the topic's contract has it. Records here are checked against the
topics' models first (orderbank.engine.stream.records), so they are the shapes a worker writes. A watch waits for a
topic no worker has created yet, and fails if it does not come within `--for`."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from orderbank.engine.cli.app import app
from orderbank.engine.cli.watch import LINES, Record, Watched, as_json, escaped
from orderbank.engine.dev.broker import Broker
from orderbank.engine.stream.records import DeadLetterHeaders, OverallRate, PoolRow, Position
from orderbank.projections.schema import CohortRate, WindowRate

AS_OF = "2025-07-03T09:12:00.661347Z"


def record(topic: str, key: bytes, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> Record:
    return ConsumerRecord(topic=topic, partition=2, offset=41, timestamp=1_751_533_920_123, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=len(key),
                          serialized_value_size=len(value or b""), headers=headers or [])


def position(**changes: Any) -> Record:
    doc = {"as_of": AS_OF, "bucket": [1024, 2047], "eta": "2025-10-12T09:00:00Z", "eta_basis": "blended",
           "eta_high": "2025-10-30T17:00:00Z", "eta_low": "2025-10-02T08:00:00Z", "lane": "YU7",
           "open_in_lane": 5678, "order_id": "YU7-000042", "position": 1234, "status": "open", **changes}
    Position.model_validate(doc)
    return record("orderbank.positions", b"YU7-000042", orjson.dumps(doc))


def test_a_position_shows_its_place_and_the_eta_band() -> None:
    show = LINES[Watched.QUEUE]
    assert show(position()) == ("2025-07-03 09:12:00 UTC  YU7-000042  YU7  position 1,234 of 5,678, "
                                "ETA 2025-10-02 .. 2025-10-30 (median 2025-10-12), basis blended")
    assert show(position(eta=None, eta_low=None, eta_high=None, eta_basis="none")) == (
        "2025-07-03 09:12:00 UTC  YU7-000042  YU7  position 1,234 of 5,678, no ETA yet")
    assert show(position(position=None, bucket=None, eta=None, eta_low=None, eta_high=None, eta_basis=None,
                         status="delivered")) == "2025-07-03 09:12:00 UTC  YU7-000042  YU7  delivered"


def test_a_pool_row_is_in_major_units_with_its_currency() -> None:
    row = {"lane": "YU7", "trim": "Max", "cohort": "2025-W26", "currency": "CNY", "open_orders": 1234,
           "deposits": 617_000_000, "balances": 2_000_000_000, "refunds_owed": 50_000, "refunds_paid": 0,
           "held": 2_617_050_000, "forfeited": 0, "realised": 329_900_000, "demanded_outstanding": 3_298_990_000,
           "overdue_orders": 3, "overdue_amount": 98_970_000}
    PoolRow.model_validate(row)
    line = LINES[Watched.POOL](record("orderbank.pool", b'["YU7","Max","2025-W26","CNY"]', orjson.dumps(row)))
    assert line == ("YU7 Max 2025-W26: 1,234 open, held 26,170,500 CNY (deposits 6,170,000, balances 20,000,000, "
                    "refunds owed 500), demanded unpaid 32,989,900 CNY, overdue 3 orders 989,700 CNY, realised "
                    "3,299,000 CNY")


def test_cancellation_figures_say_their_shard_window_or_cohort_and_trim() -> None:
    show = LINES[Watched.CANCELLATIONS]
    window = {"window_days": 28, "trim": "*", "placed": 1200, "cancelled": 230, "rate": 230 / 1200}
    cohort = {"cohort": "2025-W26", "trim": "Max", "placed": 900, "cancelled": 171, "delivered": 200, "open": 529,
              "share_cancelled": 0.19}
    overall = {"placed": 1200, "cancelled": 230, "rate": 230 / 1200}
    WindowRate.model_validate(window), CohortRate.model_validate(cohort), OverallRate.model_validate(overall)
    topic = "orderbank.cancellations"
    assert show(record(topic, b'[1,"window",28,"*"]', orjson.dumps(window))) == (
        "shard 1, last 28 days, all trims: 230 cancelled of 1,200 placed (19.2%)")
    assert show(record(topic, b'[1,"cohort","2025-W26","Max"]', orjson.dumps(cohort))) == (
        "shard 1, placed in 2025-W26, trim Max: 171 cancelled, 200 delivered, 529 open of 900 (19.0% cancelled)")
    assert show(record(topic, b'[1,"overall"]', orjson.dumps(overall))) == (
        "shard 1, overall: 230 cancelled of 1,200 placed (19.2%)")


def dead_letter(value: bytes) -> Record:
    said = {"orderbank.reason": "malformed_json", "orderbank.rule": "json",
            "orderbank.message": "not valid JSON: unexpected end of data", "orderbank.source.topic": "orderbank.events",
            "orderbank.source.partition": "3", "orderbank.source.offset": "1017", "orderbank.key": "YU7-000042"}
    DeadLetterHeaders.model_validate(said)
    return record("orderbank.deadletter", b"sha256:0f", value, [(k, v.encode()) for k, v in said.items()])


def test_a_dead_letter_shows_why_where_from_and_its_bytes_escaped() -> None:
    value = b'{"type": "Order\x1b[2J\nPlaced", "x": "\xff'  # a terminal's escape, a newline, a byte not UTF-8
    assert LINES[Watched.DEADLETTER](dead_letter(value)) == (
        "2025-07-03 09:12:00 UTC  malformed_json (rule json): not valid JSON: unexpected end of data; order -; from "
        "orderbank.events partition 3 offset 1017; 36 bytes: "
        '{"type": "Order\\x1b[2J\\nPlaced", "x": "\ufffd')
    doc = orjson.loads(as_json(dead_letter(value), raw=True))
    assert doc["value"] is None and base64.b64decode(doc["value_base64"]) == value  # not UTF-8: base64 only
    assert doc["headers"]["reason"] == "malformed_json" and doc["headers"]["source.offset"] == "1017"
    assert orjson.loads(as_json(dead_letter(b"{not json"), raw=True))["value"] == "{not json"


def test_json_lines_are_one_compact_object_each_holding_the_record() -> None:
    line = as_json(position())
    assert "\n" not in line and ": " not in line
    doc = orjson.loads(line)
    assert (doc["topic"], doc["partition"], doc["offset"], doc["key"]) == (
        "orderbank.positions", 2, 41, "YU7-000042")
    assert Position.model_validate(doc["value"]).position == 1234
    pool = orjson.loads(as_json(record("orderbank.pool", b'["YU7","Max","2025-W26","CNY"]', b'{"open_orders":1}')))
    assert pool["key"] == ["YU7", "Max", "2025-W26", "CNY"]
    assert orjson.loads(as_json(record("orderbank.queue", b'["page","YU7",3]', None)))["value"] is None


def test_escaped_text_cannot_steer_a_terminal_and_is_cut() -> None:
    assert escaped("a\x1b]0;title\x07b\tc\u202ed") == "a\\x1b]0;title\\x07b\\tc\\u202ed"
    assert escaped("x" * 250) == "x" * 200 + "... (250 characters)"
    assert escaped("订单 YU7") == "订单 YU7"


def test_order_only_filters_the_views_with_orders() -> None:
    result = CliRunner().invoke(app, ["watch", "pool", "--order", "YU7-000042"])
    assert result.exit_code == 2 and "--order works with queue and deadletter, not pool" in result.stderr


def test_a_watch_waits_for_its_topic_and_fails_if_it_never_comes_within_its_time(broker: Broker) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    result = CliRunner().invoke(app, ["watch", "pool", "--for", "2", "--bootstrap", broker.bootstrap,
                                      "--prefix", prefix])
    creates = "a worker creates it (`orderbank worker`, or `orderbank up`)"
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit) and not result.stdout
    assert result.stderr.splitlines() == [f"waiting for topic {prefix}.pool: {creates}",
                                          f"orderbank watch: topic {prefix}.pool does not exist yet: {creates}"]
