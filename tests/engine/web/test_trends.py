"""The bank over time: every sample equals the bank folded up to that moment, and shards add up."""

from __future__ import annotations

from itertools import pairwise

from orderbank.projections.bank import BankSettings, OrderBank, fold
from orderbank.projections.cancellations import ALL
from orderbank.projections.orders import US_PER_DAY, micros
from orderbank.projections.trends import PoolSeries, add_parts, first_placed, grid, merge_pool, part
from orderbank.replay.audit import fold_for_pages
from orderbank.replay.source import FileSource
from tests.engine.web.launches import events, launch
from tests.support import factories as f

WINDOW = 28


def until(moment: int, settings: BankSettings | None = None) -> OrderBank:
    return fold((e for e in events() if micros(e.occurred_at) <= moment), settings)


def test_the_grid_is_the_midnights_then_the_clock_and_thins_out_past_its_limit() -> None:
    start = 10 * US_PER_DAY + 5
    assert grid(start, start + 3 * US_PER_DAY) == [11 * US_PER_DAY, 12 * US_PER_DAY, 13 * US_PER_DAY,
                                                   start + 3 * US_PER_DAY]
    assert grid(start, start) == [start] and grid(start, start + 1) == [start + 1]
    long = grid(0, 2000 * US_PER_DAY + 1, most=100)
    assert len(long) <= 100 and long[-1] == 2000 * US_PER_DAY + 1
    assert len({b - a for a, b in pairwise(long[:-1])}) == 1


def test_each_sample_is_the_bank_as_it_was_then() -> None:
    final = until(micros(events()[-1].occurred_at))
    first = first_placed(final)
    assert first is not None
    times = grid(first, final.now_us)
    doc = part(final, times, WINDOW)
    for i in (0, 3, 30, 90, len(times) // 2, len(times) - 1):
        then = until(times[i])
        for name, lane in then.queue.lanes.items():
            series = doc["lanes"][name]
            assert series["backlog"][i] == len(lane.open), (name, i)
            assert series["delivered"][i] == len(lane.deliveries)
            assert series["delivered_window"][i] / WINDOW == then.queue.throughput(name, times[i])
        for days in (7, 28):
            placed, cancelled = then.cancellations.window(ALL, times[i] - days * US_PER_DAY, times[i])
            assert (doc["rolling"][f"placed_{days}d"][i], doc["rolling"][f"cancelled_{days}d"][i]) == (
                placed, cancelled)


def test_the_parts_of_shards_add_up_to_the_whole_bank() -> None:
    settings = BankSettings(lane_by="model_trim")
    whole = fold(events(), settings)
    shards = [OrderBank(settings), OrderBank(settings)]
    lanes = sorted(whole.queue.lanes)
    for event in events():
        order = whole.orders.get(event.order_id)  # None for the maker's plan: it plans no trim lane, any shard
        shards[lanes.index(order.lane) % 2 if order else 0].apply(event)
    times = grid(first_placed(whole) or 0, whole.now_us)
    # each shard read at the whole bank's clock, as the workers are
    assert add_parts(part(shard, times, WINDOW) for shard in shards) == add_parts([part(whole, times, WINDOW)])


def test_the_pool_is_sampled_at_each_midnight_as_the_bank_stood(tmp_path: object) -> None:
    path = tmp_path / "launch.jsonl"  # type: ignore[operator]
    path.write_bytes(b"\n".join(launch()) + b"\n")
    audit = fold_for_pages(FileSource(path))
    series = audit.pool
    assert series.times[-1] == audit.bank.now_us
    for i in (0, 5, 40, len(series.times) // 2, len(series.times) - 1):
        moment = series.times[i]
        bank = fold(e for e in events() if micros(e.occurred_at) < moment or
                    (i == len(series.times) - 1 and micros(e.occurred_at) <= moment))
        totals = bank.pool.snapshot(moment)["totals"]["CNY"]
        assert series.rows["CNY"][i] == [totals["held"], totals["demanded_outstanding"], totals["overdue_amount"],
                                         totals["refunds_owed"]], i


def test_an_unpaid_demand_is_overdue_at_the_midnights_after_its_due_date(tmp_path: object) -> None:
    path = tmp_path / "late.jsonl"  # type: ignore[operator]
    late = [f.placed("A"), f.demanded("A", 2, 1, 1_000_000, due_days=2), f.received("A", 3, 4.5, 400_000),
            f.placed("B", 6)]
    path.write_text("".join(e.model_dump_json() + "\n" for e in late))
    series = fold_for_pages(FileSource(path)).pool
    day0 = micros(f.T0) - micros(f.T0) % US_PER_DAY
    assert series.times == [day0 + d * US_PER_DAY for d in range(1, 7)] + [micros(f.at(6))]
    assert [row[2] for row in series.rows["CNY"]] == [0, 0, 0, 1_000_000, 1_000_000, 600_000, 600_000]


def test_workers_pool_series_add_up_carried_forward_from_their_last_sample() -> None:
    a = {"times": [10, 20, 30], "rows": {"CNY": [[1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0]]}}
    b = {"times": [15, 30], "rows": {"CNY": [[10, 1, 0, 0], [20, 2, 0, 0]]}}
    assert merge_pool([a, b]) == {"times": [15, 20, 30], "rows": {"CNY": [[11, 1, 0, 0], [12, 1, 0, 0],
                                                                           [23, 2, 0, 0]]}}
    assert merge_pool([PoolSeries().as_dict(), a])["times"] == [10, 20, 30]


def test_a_live_bank_is_sampled_at_its_clock_then_at_each_midnight_it_passes() -> None:
    bank, series = until(micros(events()[100].occurred_at)), PoolSeries()
    series.follow([bank], 0)
    assert series.times == []
    series.follow([bank], 5 * US_PER_DAY + 7)
    series.follow([bank], 5 * US_PER_DAY + 9)
    series.follow([bank], 8 * US_PER_DAY)
    assert series.times == [5 * US_PER_DAY + 7, 6 * US_PER_DAY, 7 * US_PER_DAY, 8 * US_PER_DAY]


def test_midnights_passed_at_once_are_each_sampled_with_their_own_overdue() -> None:
    # A worker catching up passes several midnights between two samples: each gets the state it noticed,
    # its overdue amount as of that midnight.
    bank = fold([f.placed("A"), f.demanded("A", 2, 1, 1_000_000, due_days=2), f.received("A", 3, 4.5, 400_000),
                 f.placed("B", 6)])
    series = PoolSeries()
    series.follow([bank], micros(f.T0))
    series.follow([bank], micros(f.at(6)))
    assert len(series.times) == 7
    for moment, row in zip(series.times, series.rows["CNY"], strict=True):
        totals = bank.pool.snapshot(moment)["totals"]["CNY"]
        assert row == [totals["held"], totals["demanded_outstanding"], totals["overdue_amount"],
                       totals["refunds_owed"]]
    assert [row[2] for row in series.rows["CNY"]] == [0, 0, 0, 0, 600_000, 600_000, 600_000]
