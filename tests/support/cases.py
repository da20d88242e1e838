"""Small hand-computed cases for the projection and stream tests, and the positions a bank's snapshot gives."""

from __future__ import annotations

from typing import Any

from orderbank.projections.bank import OrderBank, fold
from orderbank.projections.codec import encode
from orderbank.projections.events import Money
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


def a_hostile_log() -> list[bytes]:
    """Placements no bank applies naming another model before an order's real one (each once chose the
    order's shard), an order taking another's event id, an event id taken by a refused event, bad
    lines sent twice. The orders that share ids share an input partition (A, X, Y2, Z2: 2 of 4),
    within which the stream checks event ids."""
    yu7 = [f.placed(order, day) for day, order in enumerate("ABCD")]
    bad = [f.placed("X", 4, model="SU7").model_copy(update={"seq": 2, "event_id": f.eid("X", 1, "bad")}),
           f.placed("X", 4.5, model="SU7").model_copy(update={"deposit": Money(minor=1, currency="USD"),
                                                             "event_id": f.eid("X", 1, "usd")})]
    x = [f.placed("X", 5), f.received("X", 2, 6, 24_500_000)]
    y2 = [f.placed("Y2", 7, model="SU7").model_copy(update={"event_id": yu7[0].event_id}), f.received("Y2", 2, 8, 1)]
    z2 = [f.placed("Z2", 9, model="SU7"), f.received("Z2", 2, 10, 100).model_copy(update={"event_id": bad[0].event_id})]
    malformed = b'{"type": "OrderPlaced", "order_id": "X"'
    return ([encode(e) for e in [*yu7, *bad, *x]] + [malformed, encode(bad[0])]
            + [encode(e) for e in [*y2, *z2, f.delivered("A", 2, 11)]] + [malformed, encode(bad[1])])
