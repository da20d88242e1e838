"""The queue (orderbank.projections.queue): ETAs from the trailing throughput, lanes apart from each other."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbank.projections.bank import BankSettings, fold
from orderbank.projections.events import Event
from orderbank.projections.orders import micros
from orderbank.projections.queue import LATEST_US, eta, etas
from tests.support import factories as f
from tests.support.cases import positions


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
