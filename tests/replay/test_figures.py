"""Figures on hand-built logs whose answers are worked out by hand: waits, pool, fairness."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from orderbank.projections.codec import encode
from orderbank.projections.events import (
    Money,
    OrderCancelled,
    OrderPlaced,
    PaymentDemanded,
    PaymentReceived,
    RefundPaid,
    VehicleDelivered,
)
from orderbank.replay.estimates import estimate_from
from orderbank.replay.fairness import count_inversions, fairness
from orderbank.replay.figures import figures
from orderbank.replay.history import replay_history
from orderbank.replay.load import load
from orderbank.replay.outcome import as_happened
from orderbank.replay.source import MemorySource

DAY0 = datetime(2025, 6, 26, tzinfo=UTC)
NEVER = np.iinfo(np.int64).max


def at(day: float) -> datetime:
    return DAY0 + timedelta(days=day)


def cny(minor: int) -> Money:
    return Money(minor=minor, currency="CNY")


def envelope(order_id: str, seq: int, day: float) -> dict[str, Any]:
    return {"event_id": uuid.UUID(int=hash((order_id, seq)) % 2**128, version=4), "order_id": order_id,
            "seq": seq, "occurred_at": at(day)}


def placed(order_id: str, day: float, trim: str = "Max", rank: int = 2) -> OrderPlaced:
    return OrderPlaced(**envelope(order_id, 1, day), customer_id="c", model="YU7", trim=trim, trim_rank=rank,
                       list_price=cny(1000), deposit=cny(100), placed_at=at(day))


def hand_log() -> MemorySource:
    """A: placed day 0.5, balance demanded day 8, paid day 9, delivered day 10.5.
    B: placed day 1.5, prepays day 2, delivered day 3.5 (never asked).
    C: placed day 0.6, cancels day 5.5 (deposit refunded), refund paid day 6.5."""
    events = [
        placed("A", 0.5), placed("C", 0.6, "Standard", 0), placed("B", 1.5),
        PaymentReceived(**envelope("B", 2, 2.5), amount=cny(900)),
        VehicleDelivered(**envelope("B", 3, 3.5), delivered_at=at(3.5), vin="LXMCAR00000000001"),
        OrderCancelled(**envelope("C", 2, 5.5), refund=cny(100)),
        RefundPaid(**envelope("C", 3, 6.5), amount=cny(100)),
        PaymentDemanded(**envelope("A", 2, 8.5), amount=cny(900), due_at=at(15.5)),
        PaymentReceived(**envelope("A", 3, 9.5), amount=cny(900)),
        VehicleDelivered(**envelope("A", 4, 10.5), delivered_at=at(10.5), vin="LXMCAR00000000002"),
    ]
    return MemorySource(tuple(encode(event) for event in events))


def test_waits_pool_and_cancellations_by_hand() -> None:
    log = load(hand_log())
    estimates = estimate_from(log)
    assert estimates.lead_us == 2 * 86_400_000_000  # A: demanded day 8.5, delivered day 10.5
    result = figures(log, as_happened(log, estimates.lead_us), log.ordinal())
    s = result.scalars
    assert s["wait_mean"] == pytest.approx(6.0) and s["wait_p50"] == pytest.approx(6.0)  # waits 10 and 2 days
    assert s["delivered"] == 2 and s["revenue"] == 20.0
    assert s["cancelled"] == 1 and s["cancel_rate"] == pytest.approx(1 / 3) and s["revenue_lost"] == 10.0
    assert s["trim.Standard.cancel_rate"] == 1.0 and s["trim.Max.cancel_rate"] == 0.0
    # held at the end of days 0..10, major units: deposits in, B's prepayment in, B delivered,
    # C's deposit owed until refunded, A's balance in, A delivered
    assert result.series["pool"] == [2, 3, 12, 2, 2, 2, 1, 1, 1, 10, 0]
    assert result.series["backlog"] == [2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0]
    assert s["pool_peak"] == 12 and s["pool_mean"] == pytest.approx(36 / 11)


def test_the_bank_fold_samples_the_same_days() -> None:
    source = hand_log()
    log = load(source)
    series = figures(log, as_happened(log, 0), log.ordinal()).series
    _, history = replay_history(source)
    assert history.rows["pool"] == series["pool"]
    assert history.rows["backlog"] == series["backlog"]
    assert history.rows["delivered"] == series["delivered"]
    assert history.rows["cancelled"] == series["cancelled"]


def test_overtakes_by_hand() -> None:
    # In order sequence: 0 allocated at 50, 1 at 10, 2 cancelled at 30, 3 allocated at 20, 4 never left.
    exit_us = np.array([50, 10, 30, 20, NEVER], dtype=np.int64)
    served = np.array([True, True, False, True, False])
    f = fairness(exit_us, served)
    # 1 passes 0; 3 passes 0 and 2 (2 still waited at 20); 4 is placed last, so passes nobody.
    assert f.overtakes == 3
    assert f.largest_overtake == 3  # 3 jumped 0
    assert f.overtaken == 2 and f.share_overtaken == pytest.approx(2 / 5)
    # service sequence 1, 3, 0: pairs (1,0) and (3,0) reversed of three
    assert f.served_inversions == 2 and f.kendall_tau == pytest.approx(1 - 4 / 3)


def test_first_come_first_served_has_no_overtakes() -> None:
    exit_us = np.array([5, 6, 7, 9, NEVER], dtype=np.int64)
    f = fairness(exit_us, np.array([True, True, False, True, False]))
    assert (f.overtakes, f.largest_overtake, f.overtaken, f.kendall_tau) == (0, 0, 0, 1.0)


def test_inversions_equal_counting_every_pair() -> None:
    rng = np.random.default_rng(5)
    for trial in range(400):
        n = int(rng.integers(0, 30))
        values = rng.integers(0, int(rng.choice([2, 9, 2**40])), n).astype(np.int64)
        values[rng.random(n) < 0.2] = NEVER
        counted = None if trial % 2 else rng.random(n) < 0.5
        pairs = sum(1 for j in range(n) for i in range(j)
                    if values[i] > values[j] and (counted is None or counted[j]))
        assert count_inversions(values, counted) == pairs
