"""The business gauges of /metrics say what the bank says: open orders per lane, money held and overdue per currency
in major units, the 28-day cancellation window, dead letters by reason; summed over the banks of a worker's shards."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson
import pytest

from orderbank.engine.stream.metrics import Metrics
from orderbank.projections.bank import OrderBank, fold_lines
from orderbank.projections.codec import encode
from tests.support.factories import T0, placed
from tests.support.gauges import Samples, business, samples_of, what_the_bank_says


def gauges(metrics: Metrics) -> Samples:
    return samples_of(metrics.render())

@pytest.fixture(scope="module")
def bank(launch_docs: list[dict[str, Any]]) -> OrderBank:
    """Half a launch, then an order of another lane three weeks on (balances demanded before fall overdue), and
    inputs the bank dead-letters."""
    half = launch_docs[: len(launch_docs) // 2]
    later = (datetime.fromisoformat(half[-1]["occurred_at"]) - T0).total_seconds() / 86_400 + 21
    lines = [orjson.dumps(doc) for doc in half]
    lines += [encode(placed("SU7-000001", later, model="SU7")), b"{not json", b"[]",
              orjson.dumps({**half[0], "event_id": "7d0c1c1e-0000-4000-8000-000000000000", "seq": 1_000})]
    folded, _ = fold_lines(lines)
    return folded


def test_the_business_gauges_are_what_the_bank_says(bank: OrderBank) -> None:
    metrics = Metrics()
    metrics.observe_banks([bank])
    samples = gauges(metrics)
    assert business(samples) == what_the_bank_says(bank)
    assert samples[("orderbank_open_orders", (("lane", "SU7"),))] == 1
    assert samples[("orderbank_overdue_major_units", (("currency", "CNY"),))] > 0
    assert len([key for key in samples if key[0] == "orderbank_dead_letters"]) >= 2
    placed_28d, cancelled_28d = (samples[(f"orderbank_orders_{what}_28d", ())] for what in ("placed", "cancelled"))
    assert placed_28d and samples[("orderbank_cancellation_rate_28d", ())] == cancelled_28d / placed_28d


def test_a_worker_reports_the_sum_of_its_shards_and_only_theirs(bank: OrderBank) -> None:
    other, _ = fold_lines([encode(placed("XU9-000001", 1, model="XU9", price=1_000_000, deposit=20_000))])
    metrics = Metrics()
    metrics.observe_banks([bank, other])
    samples = gauges(metrics)
    alone = what_the_bank_says(bank)
    held = ("orderbank_pool_held_major_units", (("currency", "CNY"),))
    assert samples[held] == pytest.approx(alone[held] + 200)
    assert samples[("orderbank_open_orders", (("lane", "XU9"),))] == 1
    metrics.observe_banks([other])  # the other shards were handed over
    samples = gauges(metrics)
    assert business(samples) == what_the_bank_says(other)
    assert samples[("orderbank_cancellation_rate_28d", ())] == 0
    metrics.observe_banks([])
    assert business(gauges(metrics)) == {("orderbank_orders_placed_28d", ()): 0,
                                         ("orderbank_orders_cancelled_28d", ()): 0}
    assert math.isnan(gauges(metrics)[("orderbank_cancellation_rate_28d", ())])
