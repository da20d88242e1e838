"""Small hand-computed cases for the projection tests, and the positions a bank's snapshot gives."""

from __future__ import annotations

from typing import Any

from orderbank.projections.bank import OrderBank, fold
from tests.support import factories as f


def positions(bank: OrderBank) -> dict[str, int]:
    """Every open order's position, as the queue's snapshot gives it."""
    lanes: Any = bank.snapshot()["queue"]
    return {oid: p["position"] for lane in lanes["lanes"].values() for oid, p in lane["positions"].items()}


def pool_case() -> OrderBank:
    """Orders open, part-paid, cancelled and part-refunded, delivered, overdue, and one cancelled unpaid."""
    return fold([
        f.placed("A", 0), f.placed("B", 0), f.placed("C", 1), f.placed("D", 2),
        f.demanded("A", 2, 10, 24_500_000), f.received("A", 3, 12, 10_000_000),
        f.cancelled("B", 2, 5, refund=500_000), f.refunded("B", 3, 6, 200_000),
        f.demanded("C", 2, 20, 24_500_000), f.received("C", 3, 21, 24_500_000), f.delivered("C", 4, 40),
        f.demanded("D", 2, 3, 24_500_000),
        f.placed("E", 35), f.cancelled("E", 2, 38, refund=0),
    ])
