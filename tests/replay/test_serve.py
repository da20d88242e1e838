"""The replay's queue simulator against queueing theory: Erlang-A (M/M/n+M).

Poisson arrivals, n servers with exponential service, exponential patience: the share of
arrivals who abandon must agree with the closed form within the simulation's 95% interval
(batch means over independent replications, all run by orderbank.replay.serve, the counterfactual's core).
"""

from __future__ import annotations

import numpy as np
import pytest

from orderbank.replay.serve import FOREVER, NEVER, Queue, serve
from orderbank.replay.stats import interval
from orderbank.replay.theory import erlang_a_abandonment

US = 1_000_000


def abandonment(lam: float, mu: float, servers: int, theta: float, customers: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    arrival = (np.cumsum(rng.exponential(1 / lam, customers)) * US).astype(np.int64)
    deadline = arrival + (rng.exponential(1 / theta, customers) * US).astype(np.int64)
    queue = Queue(arrival, np.arange(customers, dtype=np.int64), deadline)
    served = serve(queue, np.zeros(servers, dtype=np.int64), service=lambda: int(rng.exponential(1 / mu) * US))
    warm = customers // 10  # leave out the start from an empty system
    return float((served.allocated_us[warm:] < 0).mean())


@pytest.mark.parametrize(("lam", "mu", "servers", "theta"), [(10.0, 1.0, 9, 0.5), (4.0, 1.0, 5, 2.0)])
def test_abandonment_matches_erlang_a(lam: float, mu: float, servers: int, theta: float) -> None:
    runs = [abandonment(lam, mu, servers, theta, 40_000, seed) for seed in range(8)]
    ci = interval(runs)
    assert ci["low"] is not None and ci["high"] is not None
    assert ci["low"] <= erlang_a_abandonment(lam, mu, servers, theta) <= ci["high"]


def test_erlang_a_limits() -> None:
    # Hardly anyone waits with ample servers; with one slow server almost everyone abandons.
    assert erlang_a_abandonment(1.0, 1.0, 20, 1.0) < 1e-9
    assert erlang_a_abandonment(100.0, 0.01, 1, 10.0) > 0.99


def by_hand(queue: Queue, slots: list[int]) -> tuple[list[int], list[int]]:
    """The schedule's rule as written, looking at every order at every slot: arrivals, then the priority
    changes due by the slot's time; the best current rank among the orders waiting and still patient gets
    the slot, or it waits for the next arrival."""
    n = len(queue.arrival_us)
    arrival, deadline = queue.arrival_us.tolist(), queue.deadline_us.tolist()
    current = queue.rank.tolist()
    rekey_us = [NEVER] * n if queue.rekey_us is None else queue.rekey_us.tolist()
    rekey_rank = current if queue.rekey_rank is None else queue.rekey_rank.tolist()
    allocated, slot_of, idle, arrived = [NEVER] * n, [NEVER] * n, list[int](), [False] * n
    by_arrival = sorted(range(n), key=arrival.__getitem__)
    for slot, now in enumerate([*slots, FOREVER]):
        while by_arrival and arrival[by_arrival[0]] <= now:
            order = by_arrival.pop(0)
            arrived[order] = True
            if idle:
                allocated[order], slot_of[order] = arrival[order], idle.pop(0)
        for order in range(n):
            if NEVER != rekey_us[order] <= now and allocated[order] == NEVER:
                current[order] = rekey_rank[order]
        waiting = [order for order in range(n)
                   if arrived[order] and allocated[order] == NEVER and deadline[order] > now]
        if now == FOREVER:
            break
        if waiting:
            best = min(waiting, key=current.__getitem__)
            allocated[best], slot_of[best] = now, slot
        else:
            idle.append(slot)
    return allocated, slot_of


def test_the_schedule_allocates_as_the_rule_says() -> None:
    rng = np.random.default_rng(11)
    for trial in range(600):
        n, cars = int(rng.integers(1, 25)), int(rng.integers(0, 25))
        arrival = rng.integers(0, 30, n) * (rng.random(n) < 0.7)  # a rush at time 0, then a trickle, with ties
        ranks = rng.permutation(2 * n)
        rekey = np.where(rng.random(n) < 0.3, rng.integers(0, 40, n), NEVER) if trial % 2 else None
        deadline = np.where(rng.random(n) < 0.8, arrival + rng.integers(0, 25, n), FOREVER)
        queue = Queue(arrival.astype(np.int64), ranks[:n].astype(np.int64), deadline.astype(np.int64),
                      None if rekey is None else rekey.astype(np.int64),
                      None if rekey is None else ranks[n:].astype(np.int64))
        slots = np.sort(rng.integers(0, 40, cars)).astype(np.int64)
        served = serve(queue, slots)
        assert (served.allocated_us.tolist(), served.slot.tolist()) == by_hand(queue, slots.tolist())
