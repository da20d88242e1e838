"""ETA forecast refresh time: one lane of the yu7 launch, refreshed at a cutoff, on one core.

The yu7 preset (300,000 orders, 289,000 of them on launch day) is folded up to a cutoff (`--day`, default
7: ~290,000 open orders); then the lane's forecast is dropped and computed again `--rounds` times (what
the bank does once per UTC midnight and per plan), and the lane snapshot (a band per open order, as text)
is taken from it. Prints each round's seconds and the medians.

    .venv/bin/python bench/eta.py [--orders 300000] [--day 7] [--rounds 5] [--seed 1] [--policy high-trim-first]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

# `python bench/eta.py` puts bench/ first on the path, where bench/replay.py would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import orjson  # noqa: E402

from orderbank.projections.bank import BankSettings, OrderBank  # noqa: E402
from orderbank.projections.codec import decode_batch  # noqa: E402
from orderbank.projections.orders import US_PER_DAY, micros  # noqa: E402
from orderbank.projections.policies import parse_policy  # noqa: E402
from orderbank.replay.synth import generate, preset  # noqa: E402


def folded(orders: int, day: int, seed: int, policy: str) -> tuple[OrderBank, int]:
    """The bank holding the launch's events before midnight `day` days after its first, and that midnight."""
    bank = OrderBank(BankSettings(policy=parse_policy(policy)))
    lines: list[bytes] = []
    cutoff = None
    for doc in generate(preset("yu7", orders), seed):
        at = micros(datetime.fromisoformat(str(doc["occurred_at"])))
        if cutoff is None:
            cutoff = at - at % US_PER_DAY + day * US_PER_DAY
        if at >= cutoff:
            break
        lines.append(orjson.dumps(doc))
    for start in range(0, len(lines), 20_000):
        for decoded in decode_batch(lines[start:start + 20_000]):
            bank.apply_decoded(decoded)
    assert cutoff is not None
    return bank, cutoff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--day", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", default="high-trim-first")
    args = parser.parse_args()
    started = time.perf_counter()
    bank, cutoff = folded(args.orders, args.day, args.seed, args.policy)
    (name, lane), = bank.queue.lanes.items()
    print(f"folded to day {args.day} in {time.perf_counter() - started:.1f}s: {len(lane.open):,} open orders "
          f"in lane {name}, {len(lane.orders):,} placed")
    refresh, snapshot = [], []
    for round_ in range(1, args.rounds + 1):
        lane.forecast = None
        began = time.perf_counter()
        ahead = bank.queue.forecast(name, cutoff)
        refresh.append(time.perf_counter() - began)
        began = time.perf_counter()
        bank.queue.lane_snapshot(name, cutoff)
        snapshot.append(time.perf_counter() - began)
        print(f"round {round_}: refresh {refresh[-1]:.3f}s ({ahead.basis}), lane snapshot {snapshot[-1]:.3f}s")
    print(f"median refresh {statistics.median(refresh):.3f}s, lane snapshot {statistics.median(snapshot):.3f}s "
          f"for {len(lane.open):,} open orders")


if __name__ == "__main__":
    main()
