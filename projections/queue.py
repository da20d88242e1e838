"""Queue position and ETA: each open order's 1-based place in its lane under the active policy.

A lane (default: the model) holds its open orders' policy keys in a sorted list, so adding,
removing, re-keying and asking an order's position are O(log n). Every key ends with the order
id, so keys are unique and the key alone says which order holds a place.

The ETA is a band (10th, 50th, 90th percentile) from the lane's forecast (orderbank.projections.forecast),
refreshed at each UTC midnight of the clock it is read at and when a plan is declared: a place's band
is the forecast's band for that place, so between refreshes an order's band follows its position. The
forecast reads only facts dated before its epoch, so it is one function of the events whichever order
they were folded in; one dated before the epoch that comes late drops the lane's forecast, which the
next read computes again. Each lane also keeps its trailing throughput (deliveries in the last
`window_days` by delivered_at, per day): the old rule (position / throughput) that the backtest compares
the forecast with.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sortedcontainers import SortedList

from orderbank.projections.forecast import HOUR_US, Forecast, forecast
from orderbank.projections.lanefacts import NEVER, LaneFacts
from orderbank.projections.orders import US_PER_DAY, Order, iso, micros
from orderbank.projections.plans import Declared, PlanStream
from orderbank.projections.policies import Key, Policy

LATEST_US = micros(datetime.max.replace(tzinfo=UTC))
"""9999-12-31T23:59:59.999999Z, the latest time a datetime (and so an ETA's text) can hold."""


@dataclass(slots=True)
class Lane:
    """One lane's open orders in delivery sequence, plus what its ETA needs."""

    open: SortedList = field(default_factory=SortedList)  # policy keys; a key's last item is its order id
    keys: dict[str, Key] = field(default_factory=dict)  # open order id -> its key in `open`
    deliveries: SortedList = field(default_factory=SortedList)  # delivered_at micros
    orders: dict[str, Order] = field(default_factory=dict)  # every order ever placed here
    # (placed_us, order_id) of every order ever placed here; kept only for policies that read ordinals.
    placed: SortedList = field(default_factory=SortedList)
    facts: LaneFacts = field(default_factory=LaneFacts)  # what the forecast reads of `orders`
    forecast: Forecast | None = None  # the latest forecast, for its epoch

    def order_ids(self) -> Iterator[str]:
        """The open orders in delivery sequence."""
        for key in self.open:
            yield key[-1]


@dataclass(frozen=True, slots=True)
class Position:
    order_id: str
    lane: str
    position: int
    open_in_lane: int
    eta: str | None
    eta_low: str | None
    eta_high: str | None
    eta_basis: str


class QueueProjection:
    """Per-lane order statistics under one policy."""

    def __init__(self, policy: Policy, window_days: int = 28) -> None:
        self.policy = policy
        self.window_days = window_days
        self.lanes: dict[str, Lane] = {}
        self.plans: dict[str, dict[str, PlanStream]] = {}  # lane -> plan stream id -> stream

    def add(self, order: Order) -> None:
        lane = self.lanes.get(order.lane)
        if lane is None:
            lane = self.lanes[order.lane] = Lane()
        lane.orders[order.order_id] = order
        lane.facts.changed(order)
        if lane.forecast is not None:
            _dated(lane, order.placed_us)
        if self.policy.uses_ordinal:
            self._place_in_sequence(lane, order)
        if order.closed_us is None:
            self._insert(lane, order)

    def _place_in_sequence(self, lane: Lane, order: Order) -> None:
        """Give the order its ordinal: its rank by (placed_at, order_id) among the lane's placements."""
        slot = (order.placed_us, order.order_id)
        lane.placed.add(slot)
        order.ordinal = lane.placed.index(slot)
        if order.ordinal < len(lane.placed) - 1:
            # A placement arrived after later-placed ones: their ordinals shift by one.
            for _, later_id in lane.placed.islice(order.ordinal + 1):
                later = lane.orders[later_id]
                self._remove(lane, later)
                later.ordinal += 1
                if later.closed_us is None:
                    self._insert(lane, later)

    def remove(self, order: Order) -> None:
        """The order was cancelled (its closed_us set)."""
        lane = self.lanes[order.lane]
        self._remove(lane, order)
        lane.facts.changed(order)
        if lane.forecast is not None:
            _dated(lane, order.closed_us or 0)

    def dated(self, order: Order, dated_us: int) -> None:
        """A fact the forecast reads, dated `dated_us`, changed for this order (a car allocated, its price
        paid in full)."""
        lane = self.lanes[order.lane]
        lane.facts.changed(order)
        if lane.forecast is not None:
            _dated(lane, dated_us)

    def planned(self, lane_name: str, stream: PlanStream, declared_us: int) -> None:
        """A plan stream declared a plan for this lane."""
        self.plans.setdefault(lane_name, {})[stream.stream_id] = stream
        lane = self.lanes.get(lane_name)
        if lane is not None:
            _dated(lane, declared_us)

    def rekey(self, order: Order) -> None:
        """Call after a fact the policy reads has changed (a payment, for paid-first)."""
        lane = self.lanes[order.lane]
        if order.order_id in lane.keys:
            self._remove(lane, order)
            self._insert(lane, order)

    def delivered(self, order: Order, delivered_us: int) -> None:
        lane = self.lanes[order.lane]
        self._remove(lane, order)
        lane.facts.changed(order)
        lane.deliveries.add(delivered_us)
        if lane.forecast is not None:
            _dated(lane, delivered_us)

    def _insert(self, lane: Lane, order: Order) -> None:
        key = self.policy.key(order)
        lane.keys[order.order_id] = key
        lane.open.add(key)

    @staticmethod
    def _remove(lane: Lane, order: Order) -> None:
        key = lane.keys.pop(order.order_id, None)
        if key is not None:
            lane.open.remove(key)

    def throughput(self, lane_name: str, now_us: int) -> float:
        """Cars per day delivered in the lane over the trailing window ending at now."""
        deliveries = self.lanes[lane_name].deliveries
        start = now_us - self.window_days * US_PER_DAY
        count: int = deliveries.bisect_right(now_us) - deliveries.bisect_right(start)
        return count / self.window_days

    def epoch(self, lane_name: str, now_us: int) -> int:
        """When the lane's forecast read at `now_us` was refreshed: the UTC midnight before, or a plan declared
        since."""
        declared = (plan.declared_us for stream in self.plans.get(lane_name, {}).values() for plan in stream.plans)
        return max(now_us - now_us % US_PER_DAY, max((us for us in declared if us <= now_us), default=0))

    def in_force(self, lane_name: str, at_us: int) -> list[Declared]:
        """The plans in force for a lane at a time: each planned scope's latest (declared before `at_us`)."""
        latest: dict[tuple[str, str | None], tuple[int, str, Declared]] = {}
        for stream_id, stream in self.plans.get(lane_name, {}).items():
            plan = stream.in_force(at_us)
            if plan is None:
                continue
            known = latest.get(stream.scope)
            if known is None or (plan.declared_us, stream_id) > known[:2]:
                latest[stream.scope] = (plan.declared_us, stream_id, plan)
        return [latest[scope][2] for scope in sorted(latest, key=lambda s: (s[0], s[1] or ""))]

    def forecast(self, lane_name: str, now_us: int) -> Forecast:
        """The lane's forecast as read at `now_us` (computed once per epoch)."""
        lane = self.lanes[lane_name]
        epoch = self.epoch(lane_name, now_us)
        if lane.forecast is None or lane.forecast.epoch_us != epoch:
            seed = [epoch & 0xFFFFFFFF, epoch >> 32 & 0xFFFFFFFF, zlib.crc32(lane_name.encode())]
            lane.forecast = forecast(lane.facts.columns(lane.orders), self.in_force(lane_name, epoch), self.policy,
                                     epoch, seed)
        return lane.forecast

    def refresh(self, now_us: int) -> None:
        """Compute the forecasts that reading them at `now_us` would (those of a new epoch, or dropped)."""
        for name in self.lanes:
            self.forecast(name, now_us)

    def position_of(self, order_id: str, lane_name: str, now_us: int) -> Position | None:
        """The order's place in its lane and its band, or None when it is not open. O(log n)."""
        lane = self.lanes.get(lane_name)
        key = lane.keys.get(order_id) if lane else None
        if lane is None or key is None:
            return None
        position = lane.open.bisect_left(key) + 1
        ahead = self.forecast(lane_name, now_us)
        low, mid, high = texts(ahead.of(np.array([position], dtype=np.int64)))
        return Position(order_id, lane_name, position, len(lane.open), mid[0], low[0], high[0], ahead.basis)

    def lane_header(self, lane_name: str, now_us: int) -> dict[str, Any]:
        """A lane's snapshot without its positions."""
        ahead = self.forecast(lane_name, now_us)
        return {
            "lane": lane_name,
            "open": len(self.lanes[lane_name].open),
            "throughput_per_day": self.throughput(lane_name, now_us),
            "eta_basis": ahead.basis,
            "eta_as_of": iso(ahead.epoch_us),
            "eta_note": ahead.note,
        }

    def lane_snapshot(self, lane_name: str, now_us: int) -> dict[str, Any]:
        order_ids = list(self.lanes[lane_name].order_ids())
        return {**self.lane_header(lane_name, now_us),
                "positions": placed_at(order_ids, self.forecast(lane_name, now_us))}

    def snapshot(self, now_us: int) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "window_days": self.window_days,
            "lanes": {name: self.lane_snapshot(name, now_us) for name in sorted(self.lanes)},
        }


def placed_at(order_ids: Sequence[str], ahead: Forecast, first: int = 1) -> dict[str, dict[str, Any]]:
    """Each order's place and ETA band, for orders that hold consecutive places from `first` on."""
    low, mid, high = texts(ahead.of(np.arange(first, first + len(order_ids), dtype=np.int64)))
    return {order_id: {"position": i, "eta_low": lo, "eta": at, "eta_high": hi}
            for i, (order_id, lo, at, hi) in enumerate(zip(order_ids, low, mid, high, strict=True), start=first)}


def _dated(lane: Lane, dated_us: int) -> None:
    """A fact dated `dated_us` changed: a forecast whose epoch is not before it read it otherwise, so it goes."""
    if lane.forecast is not None and dated_us <= lane.forecast.epoch_us:
        lane.forecast = None


def texts(times: npt.NDArray[np.int64]) -> list[list[str | None]]:
    """Times to the hour (or NEVER) as ISO 8601 UTC text, row by row; each distinct hour formatted once."""
    if times.size == 0:
        return [[] for _ in times]
    known = times != NEVER
    first = int(times[known].min()) if known.any() else 0
    hours = np.where(known, (times - first) // HOUR_US, 0)
    if int(hours.max()) < times.size:  # a lane's worth: every hour of the span, once
        span = first + HOUR_US * np.arange(int(hours.max()) + 1, dtype=np.int64)
    else:  # a few places: only their hours
        span, hours = np.unique(times[known]), np.where(known, np.searchsorted(np.unique(times[known]), times), 0)
    table = np.array([f"{t}Z" for t in np.datetime_as_string(span.astype("datetime64[us]"), unit="s").tolist()]
                     + [None], dtype=object)
    return [table[np.where(row_known, row, len(table) - 1)].tolist()
            for row, row_known in zip(hours, known, strict=True)]

