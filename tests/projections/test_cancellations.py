"""The cancellation rates (orderbank.projections.cancellations) on small hand-computed cases."""

from __future__ import annotations

from typing import Any

from orderbank.projections.bank import fold
from tests.support import factories as f
from tests.support.cases import pool_case


def test_cancellation_rates() -> None:
    snap: Any = pool_case().snapshot()["cancellations"]
    windows = {(w["window_days"], w["trim"]): w for w in snap["windows"]}
    assert windows[(7, "*")] == {"window_days": 7, "trim": "*", "placed": 1, "cancelled": 1, "rate": 1.0}
    assert windows[(28, "Standard")]["placed"] == 1
    assert snap["overall"] == {"placed": 5, "cancelled": 2, "rate": 0.4}
    w26 = next(c for c in snap["cohorts"] if c["cohort"] == "2025-W26" and c["trim"] == "*")
    assert w26 == {"cohort": "2025-W26", "trim": "*", "placed": 4, "cancelled": 1, "delivered": 1, "open": 2,
                   "share_cancelled": 0.25}


def test_window_rate_is_none_without_placements() -> None:
    bank = fold([f.placed("A", 0), f.cancelled("A", 2, 40)])
    windows: Any = bank.snapshot()["cancellations"]["windows"]
    seven = next(w for w in windows if w["window_days"] == 7 and w["trim"] == "*")
    assert (seven["placed"], seven["cancelled"], seven["rate"]) == (0, 1, None)
