"""The prepayment pool: customers' cash the maker holds for cars it has not delivered.

Per bucket (lane, trim, order-week cohort, currency), in minor units:
- `deposits`, `balances`: paid on orders still open (deposit, and every payment after it);
- `refunds_owed`: what cancelled orders are still owed back; `refunds_paid`: paid back so far;
- `held` = deposits + balances + refunds_owed: the customers' money in the maker's hands;
- `forfeited`: kept from cancelled orders (paid minus refund); `realised`: paid on delivered cars;
- `demanded_outstanding`: demanded but not received on open orders, of which
  `overdue_amount` over `overdue_orders` is past its due date at the fold's clock.
The pool is by construction the sum of every order's contribution (`contribution(order)`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from orderbank.projections.orders import Order, Status

FIGURES = ("open_orders", "deposits", "balances", "refunds_owed", "refunds_paid", "held",
           "forfeited", "realised", "demanded_outstanding")
Bucket = tuple[str, str, str, str]
_FIGURE_INDEXES = range(len(FIGURES))
NOTHING = (0,) * len(FIGURES)
"""The contribution of an order not yet placed."""


def bucket_of(order: Order) -> Bucket:
    return (order.lane, order.trim, order.cohort, order.currency)


def contribution(order: Order) -> tuple[int, ...]:
    """This order's part of every figure in FIGURES (the pool is the sum over orders)."""
    status, refunded = order.status, order.refunded
    if status is Status.OPEN:
        deposit, received = order.deposit, order.received
        outstanding = order.demanded - received
        return (1, deposit, received, 0, refunded, deposit + received, 0, 0, outstanding if outstanding > 0 else 0)
    paid = order.deposit + order.received
    if status is Status.CANCELLED:
        owed = order.refund_due - refunded
        return (0, 0, 0, owed, refunded, owed, paid - order.refund_due, 0, 0)
    return (0, 0, 0, 0, refunded, 0, 0, paid, 0)


class PoolProjection:
    """Sums of order contributions per bucket, kept by applying each order's change as a delta."""

    def __init__(self) -> None:
        self.buckets: dict[Bucket, list[int]] = defaultdict(lambda: [0] * len(FIGURES))
        self._owing: dict[str, Order] = {}  # open orders with a demand not yet paid, for overdue at snapshot

    def after(self, order: Order, before: tuple[int, ...]) -> None:
        """Apply the difference an event made to one order (`before`: its contribution before it)."""
        now = contribution(order)
        if now != before:
            sums = self.buckets[bucket_of(order)]
            for i in _FIGURE_INDEXES:  # an event changes two or three figures: only those are summed again
                if now[i] != before[i]:
                    sums[i] += now[i] - before[i]
        # Payments settle demands oldest first: an order that received what was demanded has nothing overdue.
        if order.demanded > order.received and order.status is Status.OPEN:
            self._owing[order.order_id] = order
        else:
            self._owing.pop(order.order_id, None)

    def owing(self) -> Iterable[Order]:
        """The open orders owing part of what was demanded: the only ones that can be overdue."""
        return self._owing.values()

    def snapshot(self, now_us: int) -> dict[str, Any]:
        overdue: dict[Bucket, list[int]] = defaultdict(lambda: [0, 0])
        for order in self._owing.values():
            late = order.overdue(now_us)
            if late:
                entry = overdue[bucket_of(order)]
                entry[0] += 1
                entry[1] += late
        rows = []
        for bucket in sorted(self.buckets):
            lane, trim, cohort, currency = bucket
            row: dict[str, Any] = {"lane": lane, "trim": trim, "cohort": cohort, "currency": currency}
            row.update(zip(FIGURES, self.buckets[bucket], strict=True))
            row["overdue_orders"], row["overdue_amount"] = overdue.get(bucket, [0, 0])
            rows.append(row)
        return {"buckets": rows, "totals": totals(rows)}


def totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Every figure summed over buckets, per currency."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        acc = out.setdefault(str(row["currency"]), dict.fromkeys((*FIGURES, "overdue_orders", "overdue_amount"), 0))
        for name in acc:
            value = row[name]
            assert isinstance(value, int)
            acc[name] += value
    return out
