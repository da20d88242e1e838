"""A bank restored from its orders' states (orderbank.projections.restore) is the fold, and folds on alike."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from orderbank.projections.bank import BankSettings, canonical, fold
from orderbank.projections.policies import parse_policy
from tests.support.equality import assert_equals_the_fold
from tests.support.ways import events_of, restored_from

POLICIES = ["fifo", "high-trim-first", "paid-first", "bounded-overtake:k=40"]


@pytest.mark.parametrize(("policy", "lane_by"), list(itertools.product(POLICIES, ["model", "model_trim"])))
def test_restore_from_orders_equals_the_fold_and_keeps_folding_alike(launch_docs: list[dict[str, Any]], policy: str,
                                                                     lane_by: str) -> None:
    settings = BankSettings(policy=parse_policy(policy), lane_by=lane_by)  # type: ignore[arg-type]
    lines = [orjson.dumps(doc) for doc in launch_docs]
    events = events_of(lines)
    assert len(events) == len(lines)
    half = len(events) // 2
    restored = restored_from(fold(events[:half], settings), events[:half])
    assert_equals_the_fold(canonical(restored.snapshot()), lines[:half], settings)
    for event in events[half:]:
        restored.apply(event)
    assert_equals_the_fold(canonical(restored.snapshot()), lines, settings)
    assert restored.apply(events[0]) is not None and restored.duplicates == 1  # ids survive: still a duplicate


def test_a_restored_bank_holds_each_repeated_value_of_its_orders_once(launch_docs: list[dict[str, Any]]) -> None:
    """Decoding gives each order's record its own strings and numbers; the restored bank shares them, as the fold."""
    events = events_of([orjson.dumps(doc) for doc in launch_docs])
    for bank in (fold(events), restored_from(fold(events), events)):
        first, *others = bank.orders.values()
        for field in ("model", "trim", "lane", "currency", "list_price", "deposit"):
            alike = [order for order in others if getattr(order, field) == getattr(first, field)]
            assert alike and all(getattr(order, field) is getattr(first, field) for order in alike), field
