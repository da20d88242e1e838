"""The synthetic launch (orderbank.replay.synth): seeded, deterministic, and shaped like a launch."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orderbank.projections.bank import canonical
from orderbank.replay.synth import generate, preset


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
                          "VehicleDelivered", "OrderTransferred"}
    placed = {d["order_id"]: d for d in docs if d["type"] == "OrderPlaced"}
    days = Counter(d["placed_at"][:10] for d in placed.values())
    assert max(days.values()) > 0.8 * len(placed)  # the launch-day burst
