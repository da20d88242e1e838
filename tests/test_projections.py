"""Every projection figure on small hand-computed cases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbank.projections.bank import BankSettings, OrderBank, fold
from orderbank.projections.events import Event
from orderbank.projections.orders import micros
from orderbank.projections.policies import (
    BoundedOvertake,
    Fifo,
    HighTrimFirst,
    PaidFirst,
    Policy,
    parse_policy,
    spec_of,
)
from orderbank.projections.queue import LATEST_US, eta, etas
from tests import factories as f


def positions(bank: OrderBank) -> dict[str, int]:
    lanes: Any = bank.snapshot()["queue"]
    return {oid: p["position"] for lane in lanes["lanes"].values() for oid, p in lane["positions"].items()}


def fold_with(policy: Policy, events: list[Event]) -> OrderBank:
    return fold(events, BankSettings(policy=policy))


def test_fifo_positions_move_up_when_an_order_leaves() -> None:
    bank = fold_with(Fifo(), [f.placed("A", 0), f.placed("B", 1), f.placed("C", 2)])
    assert positions(bank) == {"A": 1, "B": 2, "C": 3}
    bank.apply(f.delivered("A", 2, 3))
    assert positions(bank) == {"B": 1, "C": 2}
    assert bank.position_of("A") is None


def test_high_trim_first() -> None:
    bank = fold_with(HighTrimFirst(), [f.placed("A", 0), f.placed("B", 1, trim="Max", rank=2),
                                       f.placed("C", 2, trim="Pro", rank=1), f.placed("D", 3, trim="Max", rank=2)])
    assert positions(bank) == {"B": 1, "D": 2, "C": 3, "A": 4}


def test_paid_first_moves_an_order_when_its_payment_completes_it() -> None:
    bank = fold_with(PaidFirst(), [f.placed("A", 0), f.placed("B", 1), f.placed("C", 2)])
    bank.apply(f.received("C", 2, 3, 10_000_000))
    assert positions(bank) == {"A": 1, "B": 2, "C": 3}  # not yet the full price
    bank.apply(f.received("C", 3, 4, 14_500_000))
    assert positions(bank) == {"C": 1, "A": 2, "B": 3}


def test_bounded_overtake_passes_at_most_k() -> None:
    ranks = [0, 0, 0, 0, 2, 0, 2]
    events: list[Event] = [f.placed(f"O{i}", i, trim="Max" if r else "Standard", rank=r) for i, r in enumerate(ranks)]
    bank = fold_with(BoundedOvertake(k=2), events)
    order = sorted(positions(bank), key=positions(bank).__getitem__)
    # O4 (max) passes O2 and O3, no more; O6 passes O5 and goes right behind O4's slot.
    assert order == ["O0", "O1", "O4", "O2", "O3", "O6", "O5"]
    assert bank.queue.policy.describe().startswith("High-trim-first, but no order is passed by more than k")


def test_bounded_overtake_with_k_0_is_fifo_and_large_k_is_high_trim_first() -> None:
    ranks = [0, 1, 0, 2, 0, 2, 1]
    events: list[Event] = [f.placed(f"O{i}", i, rank=r) for i, r in enumerate(ranks)]
    assert positions(fold_with(BoundedOvertake(k=0), events)) == positions(fold_with(Fifo(), events))
    high = positions(fold_with(HighTrimFirst(), events))
    # A boost larger than the lane lets every higher trim pass every lower one.
    assert positions(fold_with(BoundedOvertake(k=100, top_rank=2), events)) == high


def test_bounded_overtake_is_exact_when_placements_arrive_late() -> None:
    ranks = [0, 2, 0, 0, 2, 0, 1, 0]
    events: list[Event] = [f.placed(f"O{i}", i, rank=r) for i, r in enumerate(ranks)]
    in_order = positions(fold_with(BoundedOvertake(k=3), events))
    shuffled = [events[i] for i in (5, 0, 7, 2, 6, 1, 4, 3)]
    assert positions(fold_with(BoundedOvertake(k=3), shuffled)) == in_order


def test_eta_from_trailing_throughput() -> None:
    events: list[Event] = []
    for i in range(14):  # 14 deliveries in the 28 days before day 40: half a car a day
        events += [f.placed(f"D{i}", 0), f.delivered(f"D{i}", 2, 12.5 + 2 * i)]
    events += [f.placed("W1", 1), f.placed("W2", 2), f.placed("Late", 40)]
    bank = fold(events)
    position = bank.position_of("W2")
    assert position is not None
    assert (position.position, position.open_in_lane) == (2, 3)
    assert bank.queue.throughput("YU7", bank.now_us) == 0.5
    now = bank.now_us
    assert eta(position.position, bank.queue.throughput("YU7", now), now) == "2025-08-09T14:00:00Z"  # day 40 + 2 / 0.5
    assert position.eta_basis == "observed" and position.eta is not None  # the forecast, from those deliveries


def test_eta_unknown_before_any_delivery() -> None:
    bank = fold([f.placed("A")])
    position = bank.position_of("A")
    assert position is not None and position.eta is None


def test_an_eta_past_the_year_9999_is_unknown_not_a_crash() -> None:
    """The first car into a launch's backlog: one delivery in 28 days for 120,000 open orders."""
    now = micros(f.at(30))
    far = eta(100_000, 1 / 28, now)
    assert far is not None and far.startswith("9691-")
    assert eta(120_000, 1 / 28, now) is None
    everyone = etas(range(1, 120_001), 1 / 28, now)
    assert everyone[99_999] == far and everyone[-1] is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 2_000_000), max_size=3000) | st.integers(0, 5000).map(lambda n: range(1, n + 1)),
       st.floats(0, 1e5, allow_nan=False), st.integers(-(2**50), LATEST_US))
def test_etas_at_once_are_the_etas_one_by_one(positions: Sequence[int], per_day: float, now_us: int) -> None:
    assert etas(positions, per_day, now_us) == [eta(p, per_day, now_us) for p in positions]


def test_lanes_are_independent_and_configurable() -> None:
    events: list[Event] = [f.placed("A", 0, model="SU7"), f.placed("B", 1, model="YU7"),
                           f.placed("C", 2, model="YU7", trim="Max", rank=2)]
    assert positions(fold(events)) == {"A": 1, "B": 1, "C": 2}
    by_trim = fold(events, BankSettings(lane_by="model_trim"))
    assert set(by_trim.queue.lanes) == {"SU7/Standard", "YU7/Standard", "YU7/Max"}
    assert positions(by_trim) == {"A": 1, "B": 1, "C": 1}


def pool_case() -> OrderBank:
    return fold([
        f.placed("A", 0), f.placed("B", 0), f.placed("C", 1), f.placed("D", 2),
        f.demanded("A", 2, 10, 24_500_000), f.received("A", 3, 12, 10_000_000),
        f.cancelled("B", 2, 5, refund=500_000), f.refunded("B", 3, 6, 200_000),
        f.demanded("C", 2, 20, 24_500_000), f.received("C", 3, 21, 24_500_000), f.delivered("C", 4, 40),
        f.demanded("D", 2, 3, 24_500_000),
        f.placed("E", 35), f.cancelled("E", 2, 38, refund=0),
    ])


def test_pool_figures() -> None:
    snap: Any = pool_case().snapshot()["pool"]
    assert snap["totals"]["CNY"] == {
        "open_orders": 2, "deposits": 1_000_000, "balances": 10_000_000, "refunds_owed": 300_000,
        "refunds_paid": 200_000, "held": 11_300_000, "forfeited": 500_000, "realised": 25_000_000,
        "demanded_outstanding": 39_000_000, "overdue_orders": 2, "overdue_amount": 39_000_000,
    }
    cohorts = {row["cohort"]: row for row in snap["buckets"]}
    assert set(cohorts) == {"2025-W26", "2025-W31"}
    assert (cohorts["2025-W31"]["forfeited"], cohorts["2025-W31"]["held"]) == (500_000, 0)
    assert cohorts["2025-W26"]["held"] == 11_300_000


def test_overdue_counts_only_past_due_dates() -> None:
    bank = fold([f.placed("A", 0), f.demanded("A", 2, 1, 1_000, due_days=7), f.demanded("A", 3, 5, 2_000, due_days=7),
                 f.received("A", 4, 9, 500)])
    # now is day 9: the first demand (due day 8) is late by 500; the second is not due until day 12.
    totals: Any = bank.snapshot()["pool"]["totals"]["CNY"]
    assert (totals["demanded_outstanding"], totals["overdue_orders"], totals["overdue_amount"]) == (2_500, 1, 500)


def test_cancellation_rates() -> None:
    snap: Any = pool_case().snapshot()["cancellations"]
    windows = {(w["window_days"], w["trim"]): w for w in snap["windows"]}
    assert windows[(7, "*")] == {"window_days": 7, "trim": "*", "placed": 1, "cancelled": 1, "rate": 1.0}
    assert windows[(28, "Standard")]["placed"] == 1
    assert snap["overall"] == {"placed": 5, "cancelled": 2, "rate": 0.4}
    w26 = next(c for c in snap["cohorts"] if c["cohort"] == "2025-W26" and c["trim"] == "*")
    assert w26 == {"cohort": "2025-W26", "trim": "*", "placed": 4, "cancelled": 1, "delivered": 1, "open": 2,
                   "share_cancelled": 0.25}


def test_window_rate_is_none_without_placements() -> None:
    bank = fold([f.placed("A", 0), f.cancelled("A", 2, 40)])
    windows: Any = bank.snapshot()["cancellations"]["windows"]
    seven = next(w for w in windows if w["window_days"] == 7 and w["trim"] == "*")
    assert (seven["placed"], seven["cancelled"], seven["rate"]) == (0, 1, None)


@pytest.mark.parametrize("spec", ["fifo", "high-trim-first", "paid-first", "bounded-overtake:k=7"])
def test_policy_specs_round_trip(spec: str) -> None:
    assert spec_of(parse_policy(spec)) == spec


@pytest.mark.parametrize(("spec", "message"), [
    ("lottery", "unknown policy 'lottery'"),
    ("bounded-overtake:k=x", "must be name=integer"),
    ("bounded-overtake:k=-1", "k must be >= 0"),
    ("fifo:k=3", "unexpected keyword"),
])
def test_bad_policy_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policy(spec)
