"""The synthetic launch (orderbank.replay.synth): seeded, deterministic, and shaped like a launch."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orderbank.projections.bank import canonical
from orderbank.replay.synth import generate, order_id, preset


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return list(generate(preset("small"), seed=7))


def test_synth_is_deterministic_and_seeded(docs: list[dict[str, Any]]) -> None:
    again = list(generate(preset("small"), seed=7))
    assert canonical(again) == canonical(docs)
    assert canonical(list(generate(preset("small"), seed=8))) != canonical(docs)


def test_synth_launch_shape(docs: list[dict[str, Any]]) -> None:
    kinds = Counter(doc["type"] for doc in docs)
    assert set(kinds) == {"OrderPlaced", "PaymentDemanded", "PaymentReceived", "OrderCancelled", "RefundPaid",
                          "VehicleDelivered", "OrderTransferred", "ProductionPlanned"}
    assert kinds["ProductionPlanned"] == 1  # the maker's plan, declared at the launch
    placed = {d["order_id"]: d for d in docs if d["type"] == "OrderPlaced"}
    days = Counter(d["placed_at"][:10] for d in placed.values())
    assert max(days.values()) > 0.8 * len(placed)  # the launch-day burst


def test_order_ids_have_one_width_whatever_the_launch_size() -> None:
    firsts = [next(d["order_id"] for d in generate(preset("small", n), seed=1)) for n in (40, 5_000)]
    assert firsts == ["YU7-000001", "YU7-000001"]  # the first event of a launch is its first order's
    assert order_id("YU7", 42, 999_999) == "YU7-000042"
    assert order_id("YU7", 42, 1_000_000) == "YU7-0000042"  # wider from a million orders on
