"""The ordering policies (orderbank.projections.policies) on small hand-computed queues, and their specs."""

from __future__ import annotations

import pytest

from orderbank.projections.bank import BankSettings, OrderBank, fold
from orderbank.projections.events import Event
from orderbank.projections.policies import (
    BoundedOvertake,
    Fifo,
    HighTrimFirst,
    PaidFirst,
    Policy,
    parse_policy,
    spec_of,
)
from tests.support import factories as f
from tests.support.cases import positions


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
