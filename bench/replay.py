"""Replay benchmark: loading and per-policy replay speed on the yu7 preset, against ceilings
measured in the same run, with the targets of issue #17.

1. Loading: `orderbank.replay.load` against orjson decoding the same file in a bare loop, side by side
   `--rounds` times (the cores are shared: one round is one sample), with each build of the loader: the
   compiled block reader (native/, when built) and the pure-Python one; target: the median ratio at most
   1.5x. Then the peak memory of a process that only loads the log.
2. Replay: each policy's one replication (ranks, simulation and every figure; the estimates and the lane
   ordinals, which no policy changes, are computed once per log, as `orderbank.replay.compare` does)
   against a bare SimPy heap queue of the same launch: every order's arrival, the policy's priority, the
   customer's reneging deadline and the log's car slots, in whole minutes (no payments, no event model).
   Each round runs every policy then its SimPy queue, one after the other; target: the median ratio at
   least 5x for every policy. `orderbank.replay.serve` on the SimPy queue's inputs says whether both
   allocate the same number of cars.

Run: .venv/bin/python bench/replay.py [--orders 300000] [--log yu7.jsonl] [--rounds 3]
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
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

# This file is named like the `replay` package: keep its own folder off the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import simpy  # noqa: E402

import orderbank.replay.native as native  # noqa: E402
from orderbank.projections.policies import Policy, parse_policy, spec_of  # noqa: E402
from orderbank.replay.compare import DEFAULT_POLICIES  # noqa: E402
from orderbank.replay.counterfactual import draw_behaviour, policy_ranks, run_policy  # noqa: E402
from orderbank.replay.estimates import Estimates, estimate_from  # noqa: E402
from orderbank.replay.figures import Figures, figures  # noqa: E402
from orderbank.replay.load import load  # noqa: E402
from orderbank.replay.logfile import read_lines  # noqa: E402
from orderbank.replay.orderlog import I64, NEVER, OrderLog  # noqa: E402
from orderbank.replay.serve import FOREVER, Queue, serve  # noqa: E402
from orderbank.replay.source import FileSource  # noqa: E402

T = TypeVar("T")


def seconds(work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


LOAD_TARGET = 1.5
"""Loading takes at most this many times the orjson loop."""
SIMPY_TARGET = 5.0
"""Each policy's replay is at least this many times faster than the bare SimPy queue."""


def met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def bench_loading(path: Path, rounds: int) -> tuple[OrderLog, int]:
    def decode_only() -> int:
        count = 0
        for line in read_lines(path):
            if line:  # read_lines hands over blank lines too, to keep line numbers physical
                orjson.loads(line)
                count += 1
        return count

    def load_with(compiled: ModuleType | None) -> OrderLog:
        native.COMPILED = compiled
        try:
            return load(FileSource(path))
        finally:
            native.COMPILED = built

    built = native.COMPILED
    builds = {"compiled": built, "pure": None} if built is not None else {"pure": None}
    if built is None:
        print("load: the compiled block reader is not built (no cargo when the venv was made): pure Python only")
    ratios: dict[str, list[float]] = {name: [] for name in builds}
    cpu_ratios: dict[str, list[float]] = {name: [] for name in builds}
    loadings: dict[str, list[float]] = {name: [] for name in builds}
    ceilings = []
    for _ in range(rounds):
        cpu = time.process_time()
        ceiling, events = seconds(decode_only)
        ceiling_cpu = time.process_time() - cpu
        ceilings.append(ceiling)
        figures = []
        for name, compiled in builds.items():
            cpu = time.process_time()
            loading, log = seconds(partial(load_with, compiled))
            cpu_ratios[name].append((time.process_time() - cpu) / ceiling_cpu)  # all threads' CPU time
            ratios[name].append(loading / ceiling)
            loadings[name].append(loading)
            figures.append(f"{name} {loading:.2f} s ({events / loading:,.0f} ev/s, {ratios[name][-1]:.2f}x, "
                           f"CPU time {cpu_ratios[name][-1]:.2f}x)")
        print(f"load  {events:,} events: orjson bare loop {ceiling:.2f} s ({events / ceiling:,.0f} ev/s); "
              f"replay.load {'; '.join(figures)}")
    for name in builds:
        ratio = statistics.median(ratios[name])
        print(f"LOAD  {name}, median over {rounds} rounds: replay.load {statistics.median(loadings[name]):.2f} s, "
              f"orjson loop {statistics.median(ceilings):.2f} s, ratio {ratio:.2f}x "
              f"(CPU time {statistics.median(cpu_ratios[name]):.2f}x); target <= {LOAD_TARGET}x: "
              f"{met(ratio <= LOAD_TARGET)}")
    if built is not None:
        speedup = statistics.median(p / c for p, c in zip(loadings["pure"], loadings["compiled"], strict=True))
        print(f"LOAD  pure / compiled (same rounds): {speedup:.2f}x")
    imports, loading = peak_memory(path, load_it=False), peak_memory(path, load_it=True)
    print(f"load peak RSS of a fresh process: {loading:,.0f} MB ({imports:,.0f} MB of it interpreter and imports)")
    return log, events


def synth(path: Path, orders: int) -> None:
    """The yu7 launch written by `orderbank synth` in a process of its own: this one then loads the log as
    `orderbank replay` does, in a process that has not just built and dropped a 1.2 GB launch: after that,
    loading took 3.1 s instead of 2.6 s while the orjson loop stayed at 1.6-1.7 s (2026-12-04, two runs of each,
    interleaved; 1.76-1.81x instead of 1.53-1.65x)."""
    subprocess.run([sys.executable, "-m", "orderbank.engine.cli", "synth", "--preset", "yu7", "--orders", str(orders),
                    "--seed", "1", "-o", str(path)], check=True, stdout=subprocess.DEVNULL)


def peak_memory(path: Path, load_it: bool) -> float:
    """Peak RSS in MB of a fresh interpreter that imports the loader and, if asked, loads the log
    (VmHWM: unlike ru_maxrss, it does not count the memory of the process that started it)."""
    code = ("import sys; from pathlib import Path; from orderbank.replay.load import load; "
            "from orderbank.replay.source import FileSource; "
            + ("load(FileSource(Path(sys.argv[1]))); " if load_it else "")
            + "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout) / 1024


def replay_once(log: OrderLog, estimates: Estimates, policy: Policy, ordinal: I64) -> Figures:
    """One replication of one policy, everything the report needs: ranks, simulation, figures."""
    return figures(log, run_policy(log, estimates, policy_ranks(log, policy, ordinal), 1), ordinal)


NO_DEADLINE = 10**12


@dataclass(frozen=True)
class Launch:
    """The launch as the bare SimPy queue sees it, in whole minutes from its start; `deadline` is
    the customer's patience as the replay draws it (NO_DEADLINE: never reneges)."""

    arrival: I64
    deadline: I64
    slots: I64

    @staticmethod
    def of(log: OrderLog, estimates: Estimates) -> Launch:
        minutes = 60_000_000
        cars = estimates.allocated_us[estimates.allocated_us != NEVER]
        start = min(log.origin_us, int(cars.min()))  # an order paid in full: allocated a lead before its delivery
        patience = draw_behaviour(log, estimates, 1).deadline_us
        deadline = np.where(patience == FOREVER, NO_DEADLINE, (patience - start) // minutes)
        return Launch((log.placed_us - start) // minutes, deadline, np.sort((cars - start) // minutes))

    def allocated(self, priority: I64) -> int:
        """How many cars `orderbank.replay.serve` allocates on the SimPy queue's inputs."""
        queue = Queue(self.arrival, priority, np.where(self.deadline == NO_DEADLINE, FOREVER, self.deadline))
        return int((serve(queue, self.slots).allocated_us != NEVER).sum())


def bench_policies(log: OrderLog, events: int, rounds: int) -> None:
    shared, (ordinal, estimates) = seconds(lambda: (log.ordinal(), estimate_from(log)))
    launch = Launch.of(log, estimates)
    print(f"replay: estimates and lane ordinals, once per log: {shared:.2f} s; SimPy launch: {log.orders:,} orders, "
          f"{len(launch.slots):,} car slots")
    policies = [parse_policy(spec) for spec in DEFAULT_POLICIES]
    priorities = [policy_ranks(log, policy, ordinal).rank for policy in policies]
    ours: list[list[float]] = [[] for _ in policies]
    theirs: list[list[float]] = [[] for _ in policies]
    cars = [0] * len(policies)
    for r in range(rounds):
        for k, (policy, priority) in enumerate(zip(policies, priorities, strict=True)):
            ours[k].append(seconds(partial(replay_once, log, estimates, policy, ordinal))[0])
            took, cars[k] = seconds(partial(simpy_queue, launch, priority))
            theirs[k].append(took)
            print(f"round {r + 1} {spec_of(policy):26} replay {ours[k][-1]:.2f} s, SimPy {theirs[k][-1]:.2f} s")
    print(f"REPLAY medians over {rounds} rounds (target: each policy >= {SIMPY_TARGET:.0f}x faster than SimPy):")
    for k, policy in enumerate(policies):
        ratio = statistics.median(t / o for t, o in zip(theirs[k], ours[k], strict=True))
        mine = statistics.median(ours[k])
        print(f"  {spec_of(policy):26} replay {mine:.2f} s ({events / mine:,.0f} ev/s), SimPy "
              f"{statistics.median(theirs[k]):.2f} s, ratio {ratio:.1f}x: {met(ratio >= SIMPY_TARGET)}; "
              f"cars allocated by SimPy {cars[k]:,}, by replay.serve on its inputs {launch.allocated(priorities[k]):,}")
    print(f"  all four policies: {sum(statistics.median(times) for times in ours):.2f} s")


def simpy_queue(launch: Launch, priority: I64) -> int:
    """The same lane in SimPy: one process puts each order into a PriorityStore at its arrival, a car
    process takes the best-ranked order at each slot; an order past its deadline is dropped when it
    reaches the head, as `orderbank.replay.serve` resolves reneging (a process and a renege timer per customer
    would give the same allocation, but for ties within a minute, with far more SimPy events). Returns cars
    allocated."""
    env = simpy.Environment()
    store = simpy.PriorityStore(env)
    arrival, deadline, rank = launch.arrival.tolist(), launch.deadline.tolist(), priority.tolist()
    allocated = 0

    def orders() -> Any:
        for i in np.argsort(launch.arrival, kind="stable").tolist():
            if arrival[i] > env.now:
                yield env.timeout(arrival[i] - env.now)
            store.put(simpy.PriorityItem(rank[i], i))  # never waits: the store has no capacity limit

    def cars() -> Any:
        nonlocal allocated
        for t in launch.slots.tolist():
            yield env.timeout(t - env.now)
            while store.items:
                item = yield store.get()
                if deadline[item.item] > env.now:
                    allocated += 1
                    break

    env.process(orders())
    env.process(cars())
    env.run()
    return allocated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--log", type=Path, help="an event log to load instead of synthesising one")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.log is not None:
        log, events = bench_loading(args.log, args.rounds)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "yu7.jsonl"
            took, _ = seconds(lambda: synth(path, args.orders))
            print(f"synth yu7 ({args.orders:,} orders, in a child process): {path.stat().st_size / 1e6:,.0f} MB "
                  f"in {took:.1f} s")
            log, events = bench_loading(path, args.rounds)
    bench_policies(log, events, args.rounds)


if __name__ == "__main__":
    main()
