"""Replay benchmark: loading and per-policy replay speed on the yu7 preset, against ceilings
measured in the same run.

1. Loading: events/s of `orderbank.replay.load` against orjson decoding the same file in a bare loop, side
   by side `--rounds` times (the cores are shared: one pair is one sample); the peak memory of a
   process that only loads the log.
2. Replay: seconds and events/s for each of the four policies (one replication: ranks,
   simulation and every figure), and the total against the 10 s target.
3. Baseline: the same queue (priority classes, reneging customers, a fixed daily car schedule)
   in SimPy on a scaled-down launch, against `orderbank.replay.serve` on the same inputs.

Run: .venv/bin/python bench/replay.py [--orders 300000] [--log yu7.jsonl] [--rounds 3] [--baseline-orders 20000]
(`--log`: a log `orderbank synth` wrote, instead of synthesising one.)
(SimPy comes with the `bench` extra: pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

# This file is named like the `replay` package: keep its own folder off the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import simpy  # noqa: E402

from orderbank.projections.policies import HighTrimFirst, Policy, parse_policy, spec_of  # noqa: E402
from orderbank.replay.compare import DEFAULT_POLICIES  # noqa: E402
from orderbank.replay.counterfactual import policy_ranks, run_policy  # noqa: E402
from orderbank.replay.estimates import estimate_from  # noqa: E402
from orderbank.replay.figures import figures  # noqa: E402
from orderbank.replay.load import load  # noqa: E402
from orderbank.replay.logfile import read_lines, write_docs  # noqa: E402
from orderbank.replay.orderlog import OrderLog  # noqa: E402
from orderbank.replay.serve import FOREVER, Queue, serve  # noqa: E402
from orderbank.replay.source import FileSource  # noqa: E402
from orderbank.replay.synth import generate, preset  # noqa: E402

T = TypeVar("T")


def seconds(work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def bench_loading(path: Path, rounds: int) -> None:
    def decode_only() -> int:
        count = 0
        for line in read_lines(path):
            if line:  # read_lines hands over blank lines too, to keep line numbers physical
                orjson.loads(line)
                count += 1
        return count

    ratios, cpu_ratios = [], []
    for _ in range(rounds):
        cpu = time.process_time()
        ceiling, events = seconds(decode_only)
        ceiling_cpu, cpu = time.process_time() - cpu, time.process_time()
        loading, log = seconds(lambda: load(FileSource(path)))
        cpu_ratios.append((time.process_time() - cpu) / ceiling_cpu)  # all threads' CPU time
        ratios.append(loading / ceiling)
        print(f"load  {events:,} events: orjson bare loop {ceiling:.2f} s ({events / ceiling:,.0f} ev/s); "
              f"replay.load {loading:.2f} s ({events / loading:,.0f} ev/s); ratio {ratios[-1]:.2f}x (target 2x), "
              f"CPU time ratio {cpu_ratios[-1]:.2f}x")
    print(f"load ratio median {statistics.median(ratios):.2f}x (CPU time {statistics.median(cpu_ratios):.2f}x) "
          f"over {rounds} rounds")
    imports, loading = peak_memory(path, load_it=False), peak_memory(path, load_it=True)
    print(f"load peak RSS of a fresh process: {loading:,.0f} MB ({imports:,.0f} MB of it interpreter and imports)")
    bench_policies(log, events)


def peak_memory(path: Path, load_it: bool) -> float:
    """Peak RSS in MB of a fresh interpreter that imports the loader and, if asked, loads the log
    (VmHWM: unlike ru_maxrss, it does not count the memory of the process that started it)."""
    code = ("import sys; from pathlib import Path; from orderbank.replay.load import load; "
            "from orderbank.replay.source import FileSource; "
            + ("load(FileSource(Path(sys.argv[1]))); " if load_it else "")
            + "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout) / 1024


def replay_once(log: OrderLog, policy: Policy, ordinal: Any) -> object:
    """One replication of one policy, everything the report needs: ranks, simulation, figures."""
    estimates = estimate_from(log)
    return figures(log, run_policy(log, estimates, policy_ranks(log, policy, ordinal), 1), ordinal)


def bench_policies(log: OrderLog, events: int) -> None:
    ordinal = log.ordinal()
    total = 0.0
    for spec in DEFAULT_POLICIES:
        policy = parse_policy(spec)
        took, _ = seconds(partial(replay_once, log, policy, ordinal))
        total += took
        print(f"policy {spec_of(policy):26} {took:.2f} s ({events / took:,.0f} ev/s)")
    print(f"all four policies: {total:.2f} s (target < 10 s)")


def simpy_queue(arrival: Any, priority: Any, deadline: Any, slots: Any) -> int:
    """The same lane in SimPy: customers wait in a PriorityStore, renege at their deadline;
    a car process takes the best-ranked waiting customer at each slot. Returns cars allocated."""
    env = simpy.Environment()
    store = simpy.PriorityStore(env)
    gone: set[int] = set()
    served: set[int] = set()

    def customer(i: int) -> Any:
        yield env.timeout(int(arrival[i]))
        yield store.put(simpy.PriorityItem(int(priority[i]), i))
        yield env.timeout(max(int(deadline[i]) - int(arrival[i]), 0))
        if i not in served:
            gone.add(i)

    def cars() -> Any:
        for t in slots.tolist():
            yield env.timeout(t - env.now)
            while store.items:
                item = yield store.get()
                if item.item not in gone:
                    served.add(item.item)
                    break

    for i in range(len(arrival)):
        env.process(customer(i))
    env.process(cars())
    env.run()
    return len(served)


def bench_baseline(orders: int) -> None:
    docs = tuple(orjson.dumps(doc) for doc in generate(preset("yu7", orders=orders), seed=1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.jsonl"
        path.write_bytes(b"\n".join(docs) + b"\n")
        log = load(FileSource(path))
    estimates = estimate_from(log)
    ranks = policy_ranks(log, HighTrimFirst(), log.ordinal())
    start = log.origin_us
    minutes = 60_000_000  # SimPy runs in whole minutes from the launch day
    arrival = (log.placed_us - start) // minutes
    rng = np.random.default_rng(1)
    patience = estimates.patience.draw_beyond(estimates.waited_days, rng)
    deadline = np.where(np.isfinite(patience), arrival + (np.nan_to_num(patience, posinf=0) * 1440).astype(np.int64),
                        10**12)
    slots = np.sort((estimates.allocated_us[estimates.allocated_us >= 0] - start) // minutes)
    ours, served = seconds(lambda: serve(Queue(arrival, ranks.rank, np.where(deadline >= 10**12, FOREVER, deadline)),
                                         slots))
    theirs, count = seconds(lambda: simpy_queue(arrival, ranks.rank, deadline, slots))
    same = int((served.allocated_us >= 0).sum()) == count
    print(f"baseline {orders:,} orders, {len(slots):,} cars: replay.serve {ours:.3f} s, SimPy {theirs:.2f} s, "
          f"speed ratio {theirs / ours:.0f}x; same cars allocated: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--log", type=Path, help="an event log to load instead of synthesising one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-orders", type=int, default=20_000)
    args = parser.parse_args()
    if args.log is not None:
        bench_loading(args.log, args.rounds)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "yu7.jsonl"
            took, count = seconds(lambda: write_docs(path, generate(preset("yu7", orders=args.orders), seed=1)))
            print(f"synth yu7 ({args.orders:,} orders): {count:,} events in {took:.1f} s")
            bench_loading(path, args.rounds)
    bench_baseline(args.baseline_orders)


if __name__ == "__main__":
    main()
