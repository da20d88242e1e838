"""Why an order stands where it does: the orders ahead of it, which of them were placed later (overtakes),
the active policy's rule in one sentence, and the order's position over time.

Pure functions of an OrderBank. The position history is rebuilt from the lane's orders rather than
recorded: under a policy whose keys never change (fifo, high-trim-first, bounded-overtake) the lane's
delivery sequence among any two orders is fixed, so an order's position at time t is one plus the orders
that rank ahead of it and were in the queue at t (placed_at <= t < closed_at). Paid-first moves an order
up when its full price arrives: each order then ranks as unpaid before `paid_us` and as paid after.
Bounded-overtake ranks by the lane's final placement sequence, which is the sequence at t whenever
placements arrived in placed_at order. Nothing is kept per day, so the history costs no memory between
requests and covers the whole life of the order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from orderbank.projections.bank import OrderBank
from orderbank.projections.orders import Order, Status, iso
from orderbank.projections.policies import BoundedOvertake, Fifo, HighTrimFirst, PaidFirst, Policy
from orderbank.projections.queue import LATEST_US

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Standing:
    """An open order's place in its lane and what put it there."""

    position: int
    open_in_lane: int
    ahead: int  # orders that get a car first
    overtakes: int  # of those, placed after this order
    rule: str


def rule_of(policy: Policy) -> str:
    """The policy's ordering rule as one plain sentence, with its parameters."""
    if isinstance(policy, Fifo):
        return "Cars go to orders in the order they were placed: first come, first served."
    if isinstance(policy, HighTrimFirst):
        return ("Orders for higher trims get cars first; within a trim, cars go in the order the orders were "
                "placed.")
    if isinstance(policy, PaidFirst):
        return ("Orders whose full price is paid get cars first; within each group, cars go in the order the "
                "orders were placed, and an order moves up when its last payment arrives.")
    if isinstance(policy, BoundedOvertake):
        return (f"Orders for higher trims may move ahead, but no order is passed by more than {policy.k:,} "
                "orders placed after it.")
    return policy.describe()


def parameters_of(policy: Policy) -> dict[str, Any]:
    """The policy's parameters by name (none for fifo)."""
    if not is_dataclass(policy):
        return {}
    return {f.name: getattr(policy, f.name) for f in fields(policy)}


def standing(bank: OrderBank, order_id: str) -> Standing | None:
    """Where an open order stands and why; None when it is not open. O(position) for the overtakes."""
    order, position = bank.orders.get(order_id), bank.position_of(order_id)
    if order is None or position is None:
        return None
    mine = (order.placed_us, order.order_id)
    lane = bank.queue.lanes[order.lane]
    # Every key ends with (placed_us, order_id): the orders ahead are the keys before this one.
    overtakes = sum(1 for key in lane.open.islice(0, position.position - 1) if (key[-2], key[-1]) > mine)
    return Standing(position.position, position.open_in_lane, position.position - 1, overtakes,
                    rule_of(bank.settings.policy))


def order_view(bank: OrderBank, order_id: str) -> dict[str, Any]:
    """One order as the views show it: place in the queue, ETA band and money, at the bank's clock."""
    order, position = bank.orders[order_id], bank.position_of(order_id)
    now = bank.now_us
    return {
        "order_id": order_id, "lane": order.lane, "status": order.status.value, "model": order.model,
        "trim": order.trim, "placed_at": iso(order.placed_us), "as_of": iso(now) if now else None,
        "position": position.position if position else None, "eta": position.eta if position else None,
        "eta_low": position.eta_low if position else None, "eta_high": position.eta_high if position else None,
        "eta_basis": position.eta_basis if position else None,
        "open_in_lane": len(bank.queue.lanes[order.lane].open),
        "payments": {"currency": order.currency, "list_price": order.list_price, "deposit": order.deposit,
                     "received": order.received, "paid": order.paid, "demanded": order.demanded,
                     "outstanding": order.outstanding, "overdue": order.overdue(now),
                     "refund_due": order.refund_due, "refunded": order.refunded, "fully_paid": order.fully_paid},
    }


class _Paid:
    """An order as a policy would see it with its full price paid, or not."""

    __slots__ = ("fully_paid", "order")

    def __init__(self, order: Order, fully_paid: bool) -> None:
        self.order, self.fully_paid = order, fully_paid

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def placed_us(self) -> int:
        return self.order.placed_us

    @property
    def trim_rank(self) -> int:
        return self.order.trim_rank

    @property
    def ordinal(self) -> int:
        return self.order.ordinal


def paid_when_last_changed(order: Order) -> int | None:
    """When an order's full price arrived, as well as its state tells: its latest event (exact unless an
    event such as a transfer followed the last payment). None while not fully paid."""
    return order.updated_us if order.fully_paid else None


PaidAt = Callable[[Order], int | None]


@dataclass(frozen=True)
class LaneTimes:
    """A lane's orders as intervals in the queue, each with its rank in the delivery sequence.

    Interval i holds order `owner[i]` from `start[i]` to `end[i]` at rank `rank[i]`. Policies whose keys
    never change give one interval per order; paid-first gives an order a second interval, at its paid
    rank, from its payment on. Events after `clock_us` change positions from their time on only, so a live
    bank's LaneTimes stay exact for the times before they were read (late placements aside)."""

    index: dict[str, int]  # order id -> its number in `owner`
    clock_us: int  # the bank's clock when these were read: exact for the times before it
    owner: npt.NDArray[np.int32]
    start: I64
    end: I64
    rank: I64
    paid: npt.NDArray[np.bool_]  # whether the interval is at the paid rank

    @classmethod
    def of(cls, bank: OrderBank, lane_name: str, paid_at: PaidAt = paid_when_last_changed) -> LaneTimes:
        policy = bank.settings.policy
        orders = list(bank.queue.lanes[lane_name].orders.values())
        keys: list[tuple[Any, ...]] = []
        owner, start, end, paid = [], [], [], []
        for i, order in enumerate(orders):
            closed = LATEST_US if order.closed_us is None else order.closed_us
            paid_us = paid_at(order) if policy.rekeys_on_payment else None
            split = closed if paid_us is None else max(order.placed_us, min(paid_us, closed))
            phases = [(order.placed_us, split, False)]
            if paid_us is not None:
                phases.append((split, closed, True))
            for begin, finish, is_paid in phases:
                keys.append(policy.key(_Paid(order, is_paid)) if policy.rekeys_on_payment else policy.key(order))
                owner.append(i)
                start.append(begin)
                end.append(finish)
                paid.append(is_paid)
        by_key = sorted(range(len(keys)), key=keys.__getitem__)
        rank = np.empty(len(keys), dtype=np.int64)
        rank[by_key] = np.arange(len(keys), dtype=np.int64)
        return cls({o.order_id: i for i, o in enumerate(orders)}, bank.now_us, np.asarray(owner, dtype=np.int32),
                   np.asarray(start, np.int64), np.asarray(end, np.int64), rank, np.asarray(paid, dtype=np.bool_))

    def positions(self, order_id: str, times: Sequence[int]) -> list[int | None]:
        """The order's 1-based position at each of `times`; None where it was not in the queue. KeyError for an
        order placed after these were read."""
        me = self.index[order_id]
        mine = np.flatnonzero(self.owner == me)
        at = np.asarray(times, dtype=np.int64)
        out: list[int | None] = [None] * len(at)
        others = self.owner != me
        for interval in mine.tolist():
            inside = (self.start[interval] <= at) & (at < self.end[interval])
            if not inside.any():
                continue
            ahead = others & (self.rank < self.rank[interval])
            begun = np.sort(self.start[ahead])
            ended = np.sort(self.end[ahead])
            when = at[inside]
            counts = np.searchsorted(begun, when, side="right") - np.searchsorted(ended, when, side="right")
            for i, count in zip(np.flatnonzero(inside).tolist(), counts.tolist(), strict=True):
                out[i] = count + 1
        return out


@dataclass(frozen=True)
class Happening:
    """One step of an order's history as its customer would read it. Money in minor units of the order's
    currency; `at_us` None when the bank does not know when (a worker keeps states, not events)."""

    kind: str  # placed, demanded, paid, cancelled, refunded, delivered, transferred
    at_us: int | None
    amount: int | None = None
    due_us: int | None = None


def history_from_state(order: Order) -> list[Happening]:
    """What an order's state tells of its history: placement, each demand with its due date, what was paid
    in all, transfers, refunds and how it closed; for a bank that keeps no events."""
    steps = [Happening("placed", order.placed_us, order.deposit)]
    steps += [Happening("demanded", None, demand.amount, demand.due_us) for demand in order.demands]
    if order.received:
        steps.append(Happening("paid", None, order.received))
    steps += [Happening("transferred", None)] * order.transfers
    if order.closed_us is not None:
        kind = "delivered" if order.status is Status.DELIVERED else "cancelled"
        steps.append(Happening(kind, order.closed_us, order.refund_due if kind == "cancelled" else None))
    if order.refunded:
        steps.append(Happening("refunded", None, order.refunded))
    return steps
