"""The replay's queue simulator against queueing theory: Erlang-A (M/M/n+M).

Poisson arrivals, n servers with exponential service, exponential patience: the share of
arrivals who abandon must agree with the closed form within the simulation's 95% interval
(batch means over independent replications, all run by orderbank.replay.serve, the counterfactual's core).
"""

from __future__ import annotations

import numpy as np
import pytest

from orderbank.replay.serve import Queue, serve
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
