"""The ETA forecast: what it rests on, that it reads only facts dated before its epoch (so any fold of the same
events gives the same bands), and that its parts (cars to come, patience, later orders ranking ahead) move the
bands the way they should. Seeded; tolerances stated where a draw decides."""

from __future__ import annotations

import itertools
import math
from dataclasses import fields
from datetime import datetime

import numpy as np
import pytest

from orderbank.projections.bank import BankSettings, OrderBank, canonical, fold
from orderbank.projections.codec import Rejection, decode_obj
from orderbank.projections.events import Event
from orderbank.projections.forecast import LEAD_POINTS, NO_ETA, RESOLUTION_DAYS, _percentiles, forecast
from orderbank.projections.lanefacts import DELIVERED, GAVE_UP, NEVER, OPEN, Columns, LaneFacts
from orderbank.projections.orders import US_PER_DAY, micros
from orderbank.projections.policies import Fifo, HighTrimFirst
from orderbank.projections.supply import DRIFT_DAYS, HISTORY_DAYS, Observed, cars_to_come
from orderbank.projections.survival import draw, waits_of
from orderbank.replay.synth import generate, preset
from tests.support import factories as f

DAY = US_PER_DAY
EPOCH = micros(f.at(14)) - micros(f.at(14)) % DAY


def when(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def test_with_no_plan_and_no_delivery_there_is_no_eta_and_the_lane_says_why() -> None:
    lane = fold([f.placed("A", 0), f.placed("B", 1)]).snapshot()["queue"]["lanes"]["YU7"]
    assert (lane["eta_basis"], lane["eta_note"]) == ("none", NO_ETA)
    assert all(p["eta"] is None and p["eta_low"] is None for p in lane["positions"].values())


def test_a_plan_gives_every_open_order_an_ordered_band_from_the_first_day() -> None:
    events: list[Event] = [f.planned("plan:YU7", 1, 0, (0, 20))]
    events += [f.placed(f"O{i}", i / 1000) for i in range(600)]
    lane = fold(events).snapshot()["queue"]["lanes"]["YU7"]
    assert lane["eta_basis"] == "plan" and lane["eta_note"] is None
    bands = [(when(p["eta_low"]), when(p["eta"]), when(p["eta_high"])) for p in lane["positions"].values()]
    assert all(low <= mid <= high for low, mid, high in bands)
    medians = [mid for _, mid, _ in bands]
    assert medians == sorted(medians)  # later places, later cars
    # 600 orders at 20 cars a day take a month; the plan's stated 14-day lead comes on top.
    assert 14 + 25 <= (medians[-1] - f.at(0)).days <= 14 + 35


def launch(orders: int = 2_000, seed: int = 3) -> list[Event]:
    """A small yu7-shaped launch's events (its plan among them)."""
    out = []
    for doc in generate(preset("yu7", orders), seed):
        event = decode_obj(doc)
        assert not isinstance(event, Rejection)
        out.append(event)
    return out


def test_the_forecast_reads_only_facts_dated_before_its_epoch() -> None:
    events = launch()
    start = micros(events[0].occurred_at)
    epoch = start - start % DAY + 40 * DAY
    before = [e for e in events if micros(e.occurred_at) < epoch]
    later = [e for e in events if epoch <= micros(e.occurred_at) < epoch + DAY // 2]
    settings = BankSettings(policy=HighTrimFirst())
    at_epoch, after = fold(before, settings), fold(before + later, settings)
    now = epoch + DAY // 2
    assert after.queue.epoch("YU7", now) == epoch
    # The same band for each place (the places themselves moved with the events since).
    assert np.array_equal(at_epoch.queue.forecast("YU7", now).bands, after.queue.forecast("YU7", now).bands)


def test_a_fact_dated_before_the_epoch_that_comes_late_drops_the_forecast() -> None:
    events = launch()
    start = micros(events[0].occurred_at)
    epoch = start - start % DAY + 40 * DAY
    before = [e for e in events if micros(e.occurred_at) < epoch]
    late = next(e for e in reversed(before) if e.type == "VehicleDelivered")
    held = [e for e in before if e is not late]
    bank = fold(held, BankSettings(policy=HighTrimFirst()))
    stale = bank.queue.forecast("YU7", epoch)
    assert bank.queue.forecast("YU7", epoch) is stale  # computed once per epoch
    bank.apply(late)
    assert bank.queue.lanes["YU7"].forecast is None
    in_order = fold(before, BankSettings(policy=HighTrimFirst()))
    assert np.array_equal(bank.queue.forecast("YU7", epoch).bands, in_order.queue.forecast("YU7", epoch).bands)


@pytest.mark.parametrize("policy", [Fifo(), HighTrimFirst()])
def test_any_interleaving_of_the_orders_gives_the_same_bands(policy: Fifo | HighTrimFirst) -> None:
    """As a shard gets them: each order's events in order, the orders interleaved otherwise."""
    events = launch(1_200, seed=5)
    by_order: dict[str, list[Event]] = {}
    for event in events:
        by_order.setdefault(event.order_id, []).append(event)
    rng = np.random.default_rng(7)
    pending = {order: list(reversed(evs)) for order, evs in by_order.items()}
    shuffled: list[Event] = []
    while pending:
        names = sorted(pending)
        order = names[int(rng.integers(len(names)))]
        shuffled.append(pending[order].pop())
        if not pending[order]:
            del pending[order]
    settings = BankSettings(policy=policy)
    assert canonical(fold(shuffled, settings).snapshot()) == canonical(fold(events, settings).snapshot())


def columns(waiting: int, arrivals: int) -> Columns:
    """A lane at EPOCH: `waiting` Standard orders placed 14 days before, still waiting; every day since, 20
    Standard orders placed before them and `arrivals` new Max orders were allocated a car (the Max ones as
    they were placed), each delivered 3 days later."""
    day0 = EPOCH - 14 * DAY
    placed = [day0 + i for i in range(waiting)]
    older = [day0 + d * DAY + k * DAY // 21 for d in range(14) for k in range(20)]
    max_placed = [day0 + d * DAY + k * DAY // (arrivals + 1) for d in range(14) for k in range(arrivals)]
    served = older + max_placed
    rows = {
        "placed_us": placed + [day0] * len(older) + max_placed,
        "trim_rank": [0] * waiting + [0] * len(older) + [2] * len(max_placed),
        "allocated_us": [NEVER] * waiting + served,
        "paid_us": [NEVER] * (waiting + len(served)),
        "closed_us": [NEVER] * waiting + [t + 3 * DAY for t in served],
        "outcome": [OPEN] * waiting + [DELIVERED] * len(served),
    }
    return Columns(**{name: np.array(values, dtype=np.int64) for name, values in rows.items()})


def test_later_orders_that_rank_ahead_push_the_band_back() -> None:
    epoch = EPOCH
    lane = columns(waiting=400, arrivals=5)
    fifo, high = (forecast(lane, [], policy, epoch, [1, 2, 3]) for policy in (Fifo(), HighTrimFirst()))
    assert fifo.basis == high.basis == "observed"
    # The last Standard order waiting: behind the 60 with a car not delivered yet (placed before it), and
    # under high-trim-first behind the 15 such Max orders too; first come first served, those go behind it.
    in_fifo, in_high = np.array([60 + 400], dtype=np.int64), np.array([15 + 60 + 400], dtype=np.int64)
    # 25 cars a day: 16 days for 400 orders, and the 3-day lead; Max orders keep coming (5 a day, falling)
    # and, high trims first, take their cars first: a few days later.
    assert (fifo.of(in_fifo)[1][0] - epoch) / DAY == pytest.approx(16 + 3, abs=1.5)
    assert 2 <= (high.of(in_high)[1][0] - fifo.of(in_fifo)[1][0]) / DAY <= 6


def test_customers_who_cancel_ahead_bring_the_band_forward() -> None:
    epoch = EPOCH
    patient = columns(waiting=600, arrivals=0)
    nervous = Columns(**{name: value.copy() for name, value in vars(patient).items()})
    # A third of those waiting cancelled within days: the ones still waiting will too, ahead of the last.
    gone = np.arange(0, 600, 3)
    nervous.closed_us[gone] = nervous.placed_us[gone] + 5 * DAY
    nervous.outcome[gone] = GAVE_UP
    last = np.array([60 + 400], dtype=np.int64)  # the 400th waiting: 16 days at 25 a day if nobody ahead leaves
    calm, hasty = (forecast(c, [], Fifo(), epoch, [1, 2, 3]).of(last)[1][0] for c in (patient, nervous))
    assert calm - hasty > 2 * DAY


def test_patience_is_recovered_from_censored_waits() -> None:
    rng = np.random.default_rng(11)
    patience = 310 * rng.weibull(1.6, 30_000)
    waited = np.minimum(patience, rng.uniform(20, 120, 30_000))  # the log ends, or a car comes, first
    draws = draw(waits_of(waited, patience <= waited), np.random.default_rng(1), 200)
    assert np.median(draws.shape) == pytest.approx(1.6, rel=0.08)
    assert draws.describe()["median_days"] == pytest.approx(310 * math.log(2) ** (1 / 1.6), rel=0.1)


def history(days: int, rates: list[float]) -> Observed:
    padded = np.zeros(HISTORY_DAYS)
    padded[HISTORY_DAYS - days:] = rates
    return Observed(padded, np.zeros(HISTORY_DAYS), 0.0, 14.0, days)


def test_a_shortfall_against_the_plan_is_taken_up_and_widens_the_cars_to_come() -> None:
    rng = np.random.default_rng(2)
    planned = np.full(HISTORY_DAYS, 100.0)
    steady = list(100 * np.exp(rng.normal(0, 0.08, 56)))
    short = steady[:42] + [0.7 * v for v in steady[42:]]  # 30% short for the last two weeks
    ahead = np.full(200, 100.0)
    kept = cars_to_come(planned, ahead, history(56, steady), np.random.default_rng(3), 200, 10_000)
    fell = cars_to_come(planned, ahead, history(56, short), np.random.default_rng(3), 200, 10_000)
    assert kept.basis == fell.basis == "blended"
    sums = [np.percentile(s.cars[:, :90].sum(axis=1), [10, 50, 90]) for s in (kept, fell)]
    assert sums[0][1] == pytest.approx(9_000, rel=0.05)
    assert sums[1][1] == pytest.approx(0.7 * 9_000, rel=0.07)  # the new level holds
    assert (sums[1][2] - sums[1][0]) / sums[1][1] > 1.5 * (sums[0][2] - sums[0][0]) / sums[0][1]


def test_the_adherence_is_known_better_the_more_days_are_read() -> None:
    planned, ahead = np.full(HISTORY_DAYS, 100.0), np.full(200, 100.0)
    steady = list(95 * np.exp(np.random.default_rng(5).normal(0, 0.08, 56)))
    spreads = []
    for days in (7, 56):
        cars = cars_to_come(planned, ahead, history(days, steady[-days:]), np.random.default_rng(6), 400, 10_000)
        sums = np.percentile(cars.cars[:, :90].sum(axis=1), [10, 50, 90])
        assert sums[1] == pytest.approx(0.95 * 9_000, rel=0.04)
        spreads.append((sums[2] - sums[0]) / sums[1])
    assert spreads[0] > 1.5 * spreads[1]


def test_the_cars_to_come_are_about_as_sure_as_a_drifting_line_allows() -> None:
    """300 seeded lines whose output drifts as the model says (a level the plan does not know, within 5%; an AR(1)
    drift in logs, sd 3%, lasting DRIFT_DAYS; 8% daily noise): read four weeks of each, the 80% range of the next four
    months' cars holds what the line then built in 75% of them (binomial sd 2.5 points); read as if a few weeks
    showed all of the drift's variance, the range was narrower and held it in 70%."""
    keep = math.exp(-1 / DRIFT_DAYS)
    rng = np.random.default_rng(11)
    held = []
    for line in range(300):
        level, drift, built = rng.normal(0, 0.05), rng.normal(0, 0.03), []
        for _ in range(28 + 120):
            built.append(100 * math.exp(level + drift + rng.normal(0, 0.08)))
            drift = keep * drift + rng.normal(0, 0.03 * math.sqrt(1 - keep * keep))
        cars = cars_to_come(np.full(HISTORY_DAYS, 100.0), np.full(200, 100.0), history(28, built[:28]),
                            np.random.default_rng(line), 200, 12_000)
        low, high = np.percentile(cars.cars[:, :120].sum(axis=1), [10, 90])
        held.append(low <= sum(built[28:]) <= high)
    assert 0.72 <= np.mean(held) <= 0.88


def test_a_weeks_dip_is_read_partly_as_drift_that_passes() -> None:
    planned, ahead = np.full(HISTORY_DAYS, 100.0), np.full(200, 100.0)
    noise = np.exp(np.random.default_rng(9).normal(0, 0.08, 56))
    dipped = 100 * noise * np.where(np.arange(56) < 49, 1.0, 0.9)  # eight weeks, the last one 10% short
    cars = cars_to_come(planned, ahead, history(56, list(dipped)), np.random.default_rng(7), 400, 10_000)
    week = np.median(cars.cars[:, :7].sum(axis=1)) / 7
    later = np.median(cars.cars[:, 60:90].sum(axis=1)) / 30
    before, dip = dipped[:49].mean(), dipped[-7:].mean()  # 100 and 87 as drawn
    assert dip + 2 < week < before - 2  # not the last week's level, not forgotten either ...
    assert later > week + 3 and later > before - 5  # ... and mostly passing: the line goes back towards its level


def test_cars_paid_in_full_count_on_their_own_day_while_their_share_grows() -> None:
    # 100 cars a day; the share that goes to customers who paid in full (no demand) grows from 0 to 10%.
    share = np.linspace(0.0, 0.1, HISTORY_DAYS)
    lead = 14.0
    unasked = np.where(np.arange(HISTORY_DAYS) < HISTORY_DAYS - lead, 100 * share, 0.0)  # delivered ones only
    allocated = Observed(100 * (1 - share), unasked, 0.1, lead, HISTORY_DAYS).allocations()
    assert allocated[:HISTORY_DAYS - 14] == pytest.approx(100.0)  # not 100 (1 - share) / 0.9: up to 111
    assert allocated[HISTORY_DAYS - 14:] == pytest.approx(100.0, rel=0.03)


def test_a_band_is_the_lead_mixed_over_the_replications_exactly() -> None:
    rng = np.random.default_rng(8)
    days = rng.normal(30, 4, (200, 5)) + np.array([0.0, 10, 20, 30, 40])
    days[:30, 3] = np.inf  # 15% of the replications never bring the car: its 90th percentile is never
    days[:, 4] = 12.5  # the allocation is certain: the band is the lead's own
    leads = np.sort(np.exp(rng.normal(math.log(14), 0.4, len(LEAD_POINTS))))
    band = _percentiles(days, leads)
    # The same mixture by brute force: every replication with the lead at 20,000 probabilities.
    lead = np.interp((np.arange(20_000) + 0.5) / 20_000, LEAD_POINTS, leads)
    mixed = np.sort((days[:, None, :] + lead[None, :, None]).reshape(-1, days.shape[1]), axis=0)
    expected = mixed[(np.array([0.1, 0.5, 0.9]) * len(mixed)).astype(int)]
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(band), finite) and not finite[2, 3]
    assert np.abs(band[finite] - expected[finite]).max() < 0.02 + RESOLUTION_DAYS
    assert band[:, 4] == pytest.approx(12.5 + np.interp([0.1, 0.5, 0.9], LEAD_POINTS, leads), abs=0.01)


def test_the_cars_to_come_rest_on_the_plan_on_the_log_or_on_nothing() -> None:
    rng = np.random.default_rng(4)
    none = np.zeros(HISTORY_DAYS)
    assert cars_to_come(np.full(HISTORY_DAYS, 50.0), np.full(100, 50.0), history(0, []), rng, 50, 1e4).basis == "plan"
    observed = cars_to_come(none, np.zeros(100), history(20, [30.0] * 20), rng, 50, 1e4)
    assert observed.basis == "observed" and np.median(observed.cars[:, :10]) == pytest.approx(30, rel=0.15)
    assert cars_to_come(none, np.zeros(100), history(20, [0.0] * 20), rng, 50, 1e4).basis == "none"


def test_a_refresh_is_a_function_of_the_bank_alone() -> None:
    bank = OrderBank(BankSettings(policy=HighTrimFirst()))
    for event in launch(800, seed=9):
        bank.apply(event)
    first = bank.queue.forecast("YU7", bank.now_us)
    bank.queue.lanes["YU7"].forecast = None
    again = bank.queue.forecast("YU7", bank.now_us)
    assert first is not again and np.array_equal(first.bands, again.bands)
    assert np.array_equal(first.tail_bands, again.tail_bands)


def test_a_lanes_facts_kept_from_read_to_read_are_its_orders_facts() -> None:
    """The lane re-reads only the orders whose facts changed since its last read (placed, allocated, paid in full,
    delivered, cancelled), or all of them when most did: at every read its columns equal its orders read afresh.
    The reads come after short stretches of the launch (few orders changed) and long ones (most did)."""
    bank = OrderBank(BankSettings(policy=HighTrimFirst()))
    events = launch(800, seed=9)
    cuts, seen = [int(len(events) * share) for share in (0, 0.03, 0.06, 0.5, 0.53, 0.56, 0.9, 0.93, 1)], set()
    for start, end in itertools.pairwise(cuts):
        for event in events[start:end]:
            bank.apply(event)
        lane = bank.queue.lanes["YU7"]
        afresh = LaneFacts()
        for order in lane.orders.values():
            afresh.changed(order)
        kept, read = lane.facts.columns(lane.orders), afresh.columns(lane.orders)
        for name in (field.name for field in fields(Columns)):
            assert np.array_equal(getattr(kept, name), getattr(read, name)), (start, name)
        seen.update(kept.outcome.tolist())
    assert {OPEN, DELIVERED, GAVE_UP} <= seen and (kept.paid_us != NEVER).any()
