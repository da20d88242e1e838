"""Closed-form queueing results the simulator is checked against.

Erlang-A (M/M/n+M): Poisson arrivals at rate lam, n servers with exponential service at rate mu
each, customers who abandon the queue after an exponential patience at rate theta. The number
in the system is a birth-death chain: births at lam; deaths at min(k, n)*mu + max(k - n, 0)*theta.
Its stationary distribution, truncated where the tail is negligible, gives the share of arrivals
who abandon: P(abandon) = theta * E[queue length] / lam.
"""

from __future__ import annotations

import math

import numpy as np

from orderbank.projections.errors import ConfigError


def erlang_a_abandonment(lam: float, mu: float, servers: int, theta: float, tail: float = 1e-14) -> float:
    """The long-run fraction of arrivals that abandon in an M/M/n+M queue."""
    if min(lam, mu, theta) <= 0 or servers < 1:
        raise ConfigError("erlang-a: rates must be positive and servers >= 1")
    log_p = [0.0]  # log of the unnormalised probability of k in the system
    k = 0
    while True:
        death = min(k + 1, servers) * mu + max(k + 1 - servers, 0) * theta
        log_p.append(log_p[-1] + math.log(lam / death))
        k += 1
        if k > servers and log_p[-1] < max(log_p) + math.log(tail):
            break
    p = np.exp(np.array(log_p) - max(log_p))
    p /= p.sum()
    in_queue = np.maximum(np.arange(len(p)) - servers, 0)
    return float(theta * (p * in_queue).sum() / lam)
