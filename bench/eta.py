"""ETA forecast refresh time: one lane of the yu7 launch, refreshed at each midnight, on one core.

The yu7 preset (300,000 orders, 289,000 of them on launch day) is folded up to a cutoff (`--day`, default
7: ~290,000 open orders) and the lane's forecast computed there, reading every order (a worker's first
refresh after a restore); then, `--rounds` times, one more day of the launch is folded and the forecast
computed again at the next midnight (what a worker does once a day, and at every midnight of its clock while
it catches up), reading the orders that day changed; and the lane snapshot (a band per open order, as text)
is taken from it. Prints each refresh's seconds and the medians.

`--catch-up` instead folds the whole launch as a worker's shard catching up on it does (frames of 5,000
events, `--policy` as the worker's), publishing by the catch-up rule
(orderbank.engine.stream.schedule.catch_up_publish_period, on the CPU time spent), each publish computing
the forecasts again, as its clock has passed a midnight: prints the share of the CPU time the refreshes
took, the cost the forecast adds to a stream's throughput (issue #14: at most 5%), for each of `--runs`
catch-ups and their median (a run's share moves by a point from one minute to the next on a shared machine).

    .venv/bin/python bench/eta.py [--orders 300000] [--day 7] [--rounds 5] [--seed 1] [--policy high-trim-first]
    .venv/bin/python bench/eta.py --catch-up --policy fifo [--runs 3] [--seed 1]   # fifo: bench/stream.py's worker
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

# `python bench/eta.py` puts bench/ first on the path, where bench/replay.py would shadow the package; the
# repository root instead, for `bench.core`.
sys.path[:] = [str(Path(__file__).resolve().parents[1]),
               *(entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent)]

import orjson  # noqa: E402

from bench.core import frames_of  # noqa: E402
from orderbank.engine.settings import Settings  # noqa: E402
from orderbank.engine.stream.frames import Frame  # noqa: E402
from orderbank.engine.stream.publish import Publisher  # noqa: E402
from orderbank.engine.stream.schedule import Held, SnapshotBudget, catch_up_publish_period  # noqa: E402
from orderbank.engine.stream.shards import Shard  # noqa: E402
from orderbank.projections.bank import BankSettings, OrderBank  # noqa: E402
from orderbank.projections.codec import decode_batch  # noqa: E402
from orderbank.projections.orders import US_PER_DAY, micros  # noqa: E402
from orderbank.projections.policies import parse_policy  # noqa: E402
from orderbank.replay.synth import generate, preset  # noqa: E402


def days(orders: int, seed: int) -> Iterator[tuple[int, list[bytes]]]:
    """The launch's events, a day at a time: each day's first midnight after it and its events."""
    lines: list[bytes] = []
    midnight: int | None = None
    for doc in generate(preset("yu7", orders), seed):
        at = micros(datetime.fromisoformat(str(doc["occurred_at"])))
        if midnight is None:
            midnight = at - at % US_PER_DAY + US_PER_DAY
        while at >= midnight:
            yield midnight, lines
            lines, midnight = [], midnight + US_PER_DAY
        lines.append(orjson.dumps(doc))
    if midnight is not None:
        yield midnight, lines


def fold(bank: OrderBank, lines: list[bytes]) -> None:
    for start in range(0, len(lines), 20_000):
        for decoded in decode_batch(lines[start:start + 20_000]):
            bank.apply_decoded(decoded)


def refresh(bank: OrderBank, at_us: int) -> tuple[str, float, float]:
    """Basis, seconds to compute the forecast at `at_us` and seconds to take the lane's snapshot from it."""
    (name,) = bank.queue.lanes
    began = time.perf_counter()
    ahead = bank.queue.forecast(name, at_us)
    computed = time.perf_counter()
    bank.queue.lane_snapshot(name, at_us)
    return ahead.basis, computed - began, time.perf_counter() - computed


def catch_ups(orders: int, seed: int, policy: str, runs: int) -> None:
    """Catch up on the launch `runs` times (the machine's speed drifts from one minute to the next, and with it
    a share measured over a minute); print each run and the median share of the refreshes."""
    settings = Settings(policy=policy)
    frames = frames_of([line for _, day in days(orders, seed) for line in day], settings.frame_events)
    shares = [catch_up(frames, settings) for _ in range(runs)]
    print(f"the forecasts' share of the CPU time, median of {runs} runs: {statistics.median(shares):.1%} "
          f"(runs {', '.join(f'{share:.1%}' for share in shares)}; target at most 5%)")


def catch_up(frames: list[Frame], settings: Settings) -> float:
    """Fold the frames as a shard catching up on them (see the module docstring), print where its CPU time went
    and return the refreshes' share of it."""
    events = sum(len(frame.entries) for frame in frames)
    held = Held(Shard(0, OrderBank(settings.bank)), Publisher(0), SnapshotBudget(cap=1.0))
    shard, clock, refreshing, publishing, publishes = held.shard, 0.0, 0.0, 0.0, 0
    for offset, frame in enumerate(frames):
        began = time.process_time()
        shard.apply(frame, offset)
        shard.changelog()
        clock += time.process_time() - began
        if clock - held.published_at >= catch_up_publish_period(held, settings):
            began = time.process_time()
            shard.bank.queue.refresh(shard.bank.now_us)
            refreshed = time.process_time()
            held.publisher.positions(shard.bank, shard.touched)
            held.publisher.figures(shard.bank)
            shard.touched = set()
            done = time.process_time()
            held.refresh_seconds, held.publish_seconds = refreshed - began, done - refreshed
            refreshing += refreshed - began
            publishing += done - refreshed
            publishes += 1
            clock += done - began
            held.published_at = clock
    print(f"{events:,} events of the yu7 launch caught up in {clock:.1f} s of CPU ({events / clock:,.0f} "
          f"events/s): folding {clock - refreshing - publishing:.1f} s; {publishes} publishes: positions and figures "
          f"{publishing:.1f} s ({publishing / clock:.1%}), the forecasts computed again {refreshing:.1f} s "
          f"({refreshing / clock:.1%})")
    return refreshing / clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--day", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", default="high-trim-first")
    parser.add_argument("--catch-up", action="store_true", help="the forecast's share of a shard's catch-up")
    parser.add_argument("--runs", type=int, default=3, help="catch-ups to take the median share of")
    args = parser.parse_args()
    if args.catch_up:
        catch_ups(args.orders, args.seed, args.policy, args.runs)
        return
    started = time.perf_counter()
    bank = OrderBank(BankSettings(policy=parse_policy(args.policy)))
    launch = days(args.orders, args.seed)
    for _ in range(args.day):
        midnight, lines = next(launch)
        fold(bank, lines)
    (lane,) = bank.queue.lanes.values()
    print(f"folded to day {args.day} in {time.perf_counter() - started:.1f}s: {len(lane.open):,} open orders, "
          f"{len(lane.orders):,} placed")
    basis, first, snapshot = refresh(bank, midnight)
    print(f"day {args.day}: first refresh (every order read) {first:.3f}s ({basis}), lane snapshot {snapshot:.3f}s")
    refreshes, snapshots = [], []
    for day, (midnight, lines) in zip(range(args.day + 1, args.day + 1 + args.rounds), launch, strict=False):
        fold(bank, lines)
        basis, seconds, snapshot = refresh(bank, midnight)
        refreshes.append(seconds)
        snapshots.append(snapshot)
        print(f"day {day}: {len(lines):,} events since, {len(lane.open):,} open orders: refresh {seconds:.3f}s "
              f"({basis}), lane snapshot {snapshot:.3f}s")
    print(f"median refresh after a day {statistics.median(refreshes):.3f}s, lane snapshot "
          f"{statistics.median(snapshots):.3f}s; first refresh {first:.3f}s")


if __name__ == "__main__":
    main()
