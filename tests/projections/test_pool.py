"""The prepayment pool (orderbank.projections.pool) on a small hand-computed case."""

from __future__ import annotations

from typing import Any

from orderbank.projections.bank import fold
from tests.support import factories as f
from tests.support.cases import pool_case


def test_pool_figures() -> None:
    snap: Any = pool_case().snapshot()["pool"]
    assert snap["totals"]["CNY"] == {
        "open_orders": 2, "deposits": 1_000_000, "balances": 10_000_000, "refunds_owed": 300_000,
        "refunds_paid": 200_000, "held": 11_300_000, "forfeited": 500_000, "realised": 25_000_000,
        "demanded_outstanding": 39_000_000, "overdue_orders": 2, "overdue_amount": 39_000_000,
    }
    cohorts = {row["cohort"]: row for row in snap["buckets"]}
    assert set(cohorts) == {"2025-W26", "2025-W31"}
    assert (cohorts["2025-W31"]["forfeited"], cohorts["2025-W31"]["held"]) == (500_000, 0)
    assert cohorts["2025-W26"]["held"] == 11_300_000


def test_overdue_counts_only_past_due_dates() -> None:
    bank = fold([f.placed("A", 0), f.demanded("A", 2, 1, 1_000, due_days=7), f.demanded("A", 3, 5, 2_000, due_days=7),
                 f.received("A", 4, 9, 500)])
    # now is day 9: the first demand (due day 8) is late by 500; the second is not due until day 12.
    totals: Any = bank.snapshot()["pool"]["totals"]["CNY"]
    assert (totals["demanded_outstanding"], totals["overdue_orders"], totals["overdue_amount"]) == (2_500, 1, 500)
