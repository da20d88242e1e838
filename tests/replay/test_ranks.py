"""Policy ranks computed for all orders at once equal the ranks of sorting every order by `policy.key`."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from orderbank.projections.orders import US_PER_DAY
from orderbank.projections.policies import Policy, parse_policy
from orderbank.replay.counterfactual import policy_ranks
from orderbank.replay.load import load
from orderbank.replay.orderlog import NEVER, OrderLog
from orderbank.replay.source import MemorySource
from orderbank.replay.synth import generate, preset

SPECS = ("fifo", "high-trim-first", "paid-first", "bounded-overtake:k=1000", "bounded-overtake:k=7,top_rank=1",
         "bounded-overtake:k=0")


@pytest.fixture(scope="module")
def log() -> OrderLog:
    """A small launch made harder to rank: placings cut to the day (many ties, broken by order id, whose
    order is not the placing order) and some orders paid in full with their deposit that prepay too."""
    launch = load(MemorySource(tuple(orjson.dumps(doc) for doc in generate(preset("yu7", orders=3_000), seed=3))))
    rng = np.random.default_rng(3)
    ids = [f"{'xab'[i % 3]}{rng.integers(10**6)}-{i}" for i in range(launch.orders)]
    prepaid = np.flatnonzero(launch.prepaid_us != NEVER)
    assert len(prepaid) > 10
    deposit = launch.deposit.copy()
    deposit[prepaid[::2]] = launch.list_price[prepaid[::2]]
    deposit[:50] = launch.list_price[:50]
    return dataclasses.replace(launch, order_id=ids, placed_us=launch.placed_us // US_PER_DAY * US_PER_DAY,
                               deposit=deposit)


def by_key(policy: Policy) -> Policy:
    """The same policy under a type `policy_ranks` does not know: ranked by calling its key per order."""
    subclass: type[Policy] = type(f"ByKey{type(policy).__name__}", (type(policy),), {})
    fields = {field.name: getattr(policy, field.name) for field in dataclasses.fields(policy)}  # type: ignore[arg-type]
    return subclass(**fields)


@pytest.mark.parametrize("spec", SPECS)
def test_ranks_at_once_equal_ranks_by_key(log: OrderLog, spec: str) -> None:
    policy = parse_policy(spec)
    fast, slow = policy_ranks(log, policy, log.ordinal()), policy_ranks(log, by_key(policy), log.ordinal())
    assert type(by_key(policy)) is not type(policy)
    np.testing.assert_array_equal(fast.rank, slow.rank)
    assert (fast.rekey_rank is None) == (slow.rekey_rank is None)
    if fast.rekey_rank is not None and slow.rekey_rank is not None:
        assert (fast.rekey_rank != NEVER).sum() > 10
        np.testing.assert_array_equal(fast.rekey_rank, slow.rekey_rank)
