"""Queue position and ETA: each open order's 1-based place in its lane under the active policy.

A lane (default: the model) holds its open orders in a sorted list keyed by `policy.key`, so
adding, removing, re-keying and asking an order's position are O(log n). The ETA divides
the position by the lane's trailing delivery throughput: deliveries in the last
`window_days` (by delivered_at, up to the fold's clock) per day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedKeyList, SortedList

from projections.orders import US_PER_DAY, Order, iso
from projections.policies import Key, Policy


@dataclass(slots=True)
class Lane:
    """One lane's open orders in delivery sequence, plus what its ETA needs."""

    open: SortedKeyList = field(default_factory=lambda: SortedKeyList(key=lambda e: e[0]))
    keys: dict[str, Key] = field(default_factory=dict)
    placed: SortedList = field(default_factory=SortedList)  # (placed_us, order_id), ever placed
    deliveries: SortedList = field(default_factory=SortedList)  # delivered_at micros
    orders: dict[str, Order] = field(default_factory=dict)  # every order ever placed here


@dataclass(frozen=True, slots=True)
class Position:
    order_id: str
    lane: str
    position: int
    open_in_lane: int
    eta: str | None


class QueueProjection:
    """Per-lane order statistics under one policy."""

    def __init__(self, policy: Policy, window_days: int = 28) -> None:
        self.policy = policy
        self.window_days = window_days
        self.lanes: dict[str, Lane] = {}

    def add(self, order: Order) -> None:
        lane = self.lanes.setdefault(order.lane, Lane())
        slot = (order.placed_us, order.order_id)
        lane.placed.add(slot)
        lane.orders[order.order_id] = order
        order.ordinal = lane.placed.index(slot)
        if self.policy.uses_ordinal and order.ordinal < len(lane.placed) - 1:
            # A placement arrived after later-placed ones: their ordinals shift by one.
            for _, later_id in lane.placed.islice(order.ordinal + 1):
                later = lane.orders[later_id]
                self._remove(lane, later)
                later.ordinal += 1
                self._insert(lane, later)
        self._insert(lane, order)

    def remove(self, order: Order) -> None:
        self._remove(self.lanes[order.lane], order)

    def rekey(self, order: Order) -> None:
        """Call after a fact the policy reads has changed (a payment, for paid-first)."""
        lane = self.lanes[order.lane]
        if order.order_id in lane.keys:
            self._remove(lane, order)
            self._insert(lane, order)

    def delivered(self, order: Order, delivered_us: int) -> None:
        lane = self.lanes[order.lane]
        self._remove(lane, order)
        lane.deliveries.add(delivered_us)

    def _insert(self, lane: Lane, order: Order) -> None:
        if order.closed_us is not None:
            return
        key = self.policy.key(order)
        lane.keys[order.order_id] = key
        lane.open.add((key, order.order_id))

    def _remove(self, lane: Lane, order: Order) -> None:
        key = lane.keys.pop(order.order_id, None)
        if key is not None:
            lane.open.remove((key, order.order_id))

    def throughput(self, lane_name: str, now_us: int) -> float:
        """Cars per day delivered in the lane over the trailing window ending at now."""
        lane = self.lanes[lane_name]
        start = now_us - self.window_days * US_PER_DAY
        count: int = lane.deliveries.bisect_right(now_us) - lane.deliveries.bisect_right(start)
        return count / self.window_days

    def position_of(self, order_id: str, lane_name: str, now_us: int) -> Position | None:
        """The order's place in its lane, or None when it is not open. O(log n)."""
        lane = self.lanes.get(lane_name)
        key = lane.keys.get(order_id) if lane else None
        if lane is None or key is None:
            return None
        position = lane.open.bisect_key_left(key) + 1
        return Position(order_id, lane_name, position, len(lane.open),
                        self._eta(position, self.throughput(lane_name, now_us), now_us))

    @staticmethod
    def _eta(position: int, per_day: float, now_us: int) -> str | None:
        if per_day <= 0:
            return None
        return iso(now_us + int(position / per_day * US_PER_DAY))

    def lane_snapshot(self, lane_name: str, now_us: int) -> dict[str, Any]:
        lane = self.lanes[lane_name]
        per_day = self.throughput(lane_name, now_us)
        return {
            "lane": lane_name,
            "open": len(lane.open),
            "throughput_per_day": per_day,
            "positions": {
                order_id: {"position": i, "eta": self._eta(i, per_day, now_us)}
                for i, (_, order_id) in enumerate(lane.open, start=1)
            },
        }

    def snapshot(self, now_us: int) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "window_days": self.window_days,
            "lanes": {name: self.lane_snapshot(name, now_us) for name in sorted(self.lanes)},
        }
