"""The queue (orderbank.projections.queue): ETAs from the trailing throughput, lanes apart from each other."""

from __future__ import annotations

from orderbank.projections.bank import BankSettings, fold
from orderbank.projections.events import Event
from orderbank.projections.orders import iso
from orderbank.replay.backtest import forecasts_at
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
    # The trailing rule, as the backtest reads it: day 40 + place 2 / half a car a day
    cutoff = forecasts_at(bank, bank.now_us, 40)
    assert iso(int(cutoff.trailing[cutoff.order_ids.index("W2")])) == "2025-08-09T14:00:00Z"
    assert position.eta_basis == "observed" and position.eta is not None  # the forecast, from those deliveries


def test_eta_unknown_before_any_delivery() -> None:
    bank = fold([f.placed("A")])
    position = bank.position_of("A")
    assert position is not None and position.eta is None


def test_lanes_are_independent_and_configurable() -> None:
    events: list[Event] = [f.placed("A", 0, model="SU7"), f.placed("B", 1, model="YU7"),
                           f.placed("C", 2, model="YU7", trim="Max", rank=2)]
    assert positions(fold(events)) == {"A": 1, "B": 1, "C": 2}
    by_trim = fold(events, BankSettings(lane_by="model_trim"))
    assert set(by_trim.queue.lanes) == {"SU7/Standard", "YU7/Standard", "YU7/Max"}
    assert positions(by_trim) == {"A": 1, "B": 1, "C": 1}
