"""The bounded rule for publishing a shard's projections to the compacted topics.

When one order leaves a lane, every order behind it moves up one place, so publishing every
changed position would cost O(open orders) messages per event. Instead:

- positions (key order_id): an order's record is published when it enters the queue, when it
  leaves (status delivered/cancelled, position null), and when its position crosses into another
  bucket. Buckets grow geometrically by `ratio` (ratio 2: 1, 2-3, 4-7, 8-15, ...), so one
  departure moves at most log_ratio(open orders) orders across a boundary, and a publish period
  coalesces the changes of all its events. After each publish, every open order's latest record
  names the bucket that holds its exact position at that moment. A publisher that starts on a
  restored bank (a restart or a takeover) first republishes every order of its shard once.
- lane snapshots (key ["lane", name] plus pages ["page", name, i]): every lane's exact positions
  and ETA bands, published every `snapshot_interval_s` (ten times less often while the shard catches
  up, rarer when they cost more under a live stream) and whenever it goes idle (orderbank.engine.stream.schedule
  decides when).
- pool rows and cancellation figures: each record is published when its value changed.

Exact positions are always available by query (orderbank.engine.stream.views). Nothing here touches Kafka: the
publisher returns records, remembers what it returned, and the shard agent sends them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple, cast

import msgspec
import numpy as np
import numpy.typing as npt

from orderbank.projections.bank import OrderBank, canonical
from orderbank.projections.forecast import Forecast
from orderbank.projections.orders import iso
from orderbank.projections.queue import Lane, placed_at, texts

POSITIONS, QUEUE, POOL, CANCELLATIONS = "positions", "queue", "pool", "cancellations"
Record = tuple[str, bytes, bytes | None]
"""(projection, key, value); a None value is a tombstone."""


class Buckets:
    """Position buckets [b_k, b_(k+1) - 1] with b_0 = 1, b_(k+1) = max(b_k + 1, ceil(b_k * ratio))."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self.bounds = [1]

    def cover(self, position: int) -> list[int]:
        """The boundaries, extended past `position` (and at least one past it)."""
        while self.bounds[-1] <= position or len(self.bounds) < 2:
            last = self.bounds[-1]
            self.bounds.append(max(last + 1, math.ceil(last * self.ratio)))
        return self.bounds

    def of(self, position: int) -> tuple[int, int]:
        """The bucket [lo, hi] holding a 1-based position."""
        bounds = self.cover(position)
        k = bisect.bisect_right(bounds, position) - 1
        return bounds[k], bounds[k + 1] - 1


@dataclass
class Publisher:
    """What one shard has published so far, and the records that bring the topics up to date."""

    shard: int
    ratio: float = 2.0
    page_size: int = 2000
    buckets: Buckets = field(init=False)
    published: dict[str, dict[str, int]] = field(default_factory=dict)  # lane -> order -> bucket lo
    last: dict[tuple[str, bytes], bytes] = field(default_factory=dict)  # latest value per key
    pages: dict[str, int] = field(default_factory=dict)  # lane -> page records published
    # lane -> page -> what its record was last built from: its orders and the forecast
    built: dict[str, dict[int, tuple[list[str], Forecast]]] = field(default_factory=dict)
    started: bool = False

    def __post_init__(self) -> None:
        self.buckets = Buckets(self.ratio)

    def positions(self, bank: OrderBank, touched: set[str]) -> list[Record]:
        """Records for the orders that entered, left or changed bucket since the last call; `touched`
        are the orders with events since then (only their lanes can have moved)."""
        out: list[Record] = []
        fresh, self.started = not self.started, True
        now, as_of = bank.now_us, iso(bank.now_us)
        by_lane = {name: set() for name in bank.queue.lanes} if fresh else _by_lane(bank, touched)
        for name in sorted(by_lane):
            lane, changed = bank.queue.lanes[name], by_lane[name]
            published = self.published.setdefault(name, {})
            size = len(lane.open)
            bounds = self.buckets.cover(size + len(changed) + 1)
            spans = None if fresh or bank.settings.policy.uses_ordinal else _spans(bounds, size, changed, lane,
                                                                                   published)
            # None: one pass in queue order, an order's position its place in the pass.
            moved = _moved(lane, [(1, size)] if spans is None else spans, bounds, published)
            closed = _closed(lane, changed, published, fresh=fresh, whole=spans is None)
            ahead = bank.queue.forecast(name, now)
            low, mid, high = texts(ahead.of(moved.positions))
            out.extend(_position(PositionRecord(as_of, (first, last), at, ahead.basis, hi, lo, name, size, order_id,
                                                position, "open"))
                       for order_id, position, first, last, lo, at, hi in zip(
                           moved.order_ids, moved.positions.tolist(), moved.lows.tolist(), moved.highs.tolist(), low,
                           mid, high, strict=True))
            for order_id in closed:
                published.pop(order_id, None)
            # A Status is the str of its value (and msgspec writes it so): no `.value`, a slow descriptor.
            out.extend(_position(PositionRecord(as_of, None, None, None, None, None, name, size, o, None,
                                                bank.orders[o].status)) for o in closed)
        return out

    def figures(self, bank: OrderBank) -> list[Record]:
        """Pool rows and cancellation figures whose values changed since last published."""
        now = bank.now_us
        pool = cast(list[dict[str, Any]], bank.pool.snapshot(now)["buckets"])
        rates = bank.cancellations.snapshot(now)
        records: list[tuple[str, list[object], object]] = [
            (POOL, [r["lane"], r["trim"], r["cohort"], r["currency"]], r) for r in pool]
        records += [(CANCELLATIONS, [self.shard, "window", w["window_days"], w["trim"]], w)
                    for w in rates["windows"]]
        records += [(CANCELLATIONS, [self.shard, "cohort", c["cohort"], c["trim"]], c) for c in rates["cohorts"]]
        records.append((CANCELLATIONS, [self.shard, "overall"], rates["overall"]))
        return self._changed((name, canonical(key), canonical(value)) for name, key, value in records)

    def lane_snapshots(self, bank: OrderBank) -> list[Record]:
        """Every lane's exact snapshot: a header and pages of positions (changed pages only)."""
        return [record for records in self.snapshot_steps(self.freeze(bank)) for record in records]

    def freeze(self, bank: OrderBank) -> list[FrozenLane]:
        """The lanes as they stand, for `snapshot_steps` to write out while the bank moves on: the orders in
        queue order, the forecast and the header (~12 ms for a lane of 180,000 open orders)."""
        now, queue = bank.now_us, bank.queue
        return [FrozenLane(name, [key[-1] for key in queue.lanes[name].open], queue.forecast(name, now),
                           {**queue.lane_header(name, now), "policy": bank.settings.policy.name,
                            "window_days": bank.settings.eta_window_days, "as_of": iso(now) if now else None})
                for name in sorted(queue.lanes)]

    def snapshot_steps(self, lanes: list[FrozenLane]) -> Iterator[list[Record]]:
        """The records of frozen lanes' snapshots, a page at a time (a few ms each), so a caller can let other
        work in between. A page is written again only when its orders or the lane's forecast changed: a
        place's band is the forecast's for that place, so the same orders under the same forecast are the same
        page (at a launch's peak, orders join at the back: only the last pages change)."""
        for lane in lanes:
            name, ids, size = lane.name, lane.order_ids, self.page_size
            count = math.ceil(len(ids) / size)
            built = self.built.setdefault(name, {})
            for i in range(count):
                page = ids[i * size:(i + 1) * size]
                last = built.get(i)
                if last is not None and last[1] is lane.forecast and last[0] == page:
                    continue
                built[i] = (page, lane.forecast)
                yield self._changed([(QUEUE, canonical(["page", name, i]),
                                      canonical({"positions": placed_at(page, lane.forecast, i * size + 1)}))])
            gone = range(count, self.pages.get(name, 0))  # pages past the end (the lane shrank): tombstones
            for i in gone:
                built.pop(i, None)
            yield self._changed([(QUEUE, canonical(["page", name, i]), None) for i in gone])
            self.pages[name] = count
            yield self._changed([(QUEUE, canonical(["lane", name]), canonical({**lane.header, "pages": count}))])

    def _changed(self, records: Iterable[Record]) -> list[Record]:
        out: list[Record] = []
        for name, key, value in records:
            if value is None:
                self.last.pop((name, key), None)
                out.append((name, key, None))
            elif self.last.get((name, key)) != value:
                self.last[(name, key)] = value
                out.append((name, key, value))
        return out


def _by_lane(bank: OrderBank, orders: set[str]) -> dict[str, set[str]]:
    """These orders by lane."""
    lanes: dict[str, set[str]] = {}
    for order_id in orders:
        lanes.setdefault(bank.orders[order_id].lane, set()).add(order_id)
    return lanes


class Moved(NamedTuple):
    """Open orders whose bucket is not the one last published for them: ids, positions, buckets' first and last."""

    order_ids: list[str]
    positions: npt.NDArray[np.int64]
    lows: npt.NDArray[np.int64]
    highs: npt.NDArray[np.int64]


def _moved(lane: Lane, spans: list[tuple[int, int]], bounds: list[int], published: dict[str, int]) -> Moved:
    """The open orders at these positions (1-based inclusive spans) whose bucket is not the one published for them,
    marked published. Read in bulk: the order ids off the sorted lane, their last published buckets in one `map`,
    then compared as arrays (a catch-up's publish passes over the whole lane: 300,000 orders)."""
    ids: list[str] = []
    for first, last in spans:
        ids += [key[-1] for key in lane.open.islice(first - 1, last)]
    ends = np.array(spans, dtype=np.int64).reshape(-1, 2)
    counts = ends[:, 1] - ends[:, 0] + 1
    places = np.arange(counts.sum(), dtype=np.int64) + np.repeat(ends[:, 0] - (np.cumsum(counts) - counts), counts)
    edges = np.array(bounds, dtype=np.int64)
    k = np.searchsorted(edges, places, side="right") - 1
    stale = np.flatnonzero(np.fromiter(map(published.get, ids, repeat(0)), np.int64, len(ids)) != edges[k])
    order_ids, k = list(map(ids.__getitem__, stale.tolist())), k[stale]
    lows = edges[k]
    published.update(zip(order_ids, lows.tolist(), strict=True))
    return Moved(order_ids, places[stale], lows, edges[k + 1] - 1)


def _closed(lane: Lane, changed: set[str], published: dict[str, int], *, fresh: bool, whole: bool) -> list[str]:
    """The lane's orders to publish as no longer open, in id order: a fresh publisher's every one; else the
    changed ones (an order leaves its lane by an event of its own) and, after a whole pass, any other order
    published before and not open now. The whole pass (`_moved`) left every open order in `published`, so its
    entries beyond the open orders count those: when the changed ones account for them all (always, unless
    an order left without an event), the 300,000 entries need not be looked at."""
    open_keys = lane.keys
    if fresh:
        return sorted(o for o in lane.orders if o not in open_keys)
    closed = sorted(o for o in changed if o not in open_keys)
    if whole and len(published) - len(open_keys) != sum(1 for o in closed if o in published):
        return sorted(o for o in (published.keys() | changed) & lane.orders.keys() if o not in open_keys)
    return closed


def _spans(bounds: list[int], size: int, changed: set[str], lane: Lane,
           published: dict[str, int]) -> list[tuple[int, int]] | None:
    """The positions (1-based inclusive spans, in queue order) where an order can have changed bucket since the
    last publish, when the `changed` orders of the lane entered, left or were re-keyed since; None when a whole
    pass costs less. Every other order kept its key, so the count of orders ahead of it changed only by
    changed orders ahead of it now or at the last publish (then open: `published`): its position moved by at
    most that many, and it changed bucket only if a boundary lies within that distance. At a launch's peak
    the changed orders are new ones at the back of a FIFO lane: nobody ahead of them moves. The changed
    orders still open are looked at wherever they are. (A policy that reads ordinals re-keys orders without
    events of their own: it takes the whole pass.)"""
    if len(changed) * 4 > size:  # a search per changed order would cost more than the pass (a catch-up's publish)
        return None
    keys = lane.keys
    at = sorted(lane.open.bisect_left(keys[o]) + 1 for o in changed if o in keys)
    were_open = sum(1 for o in changed if o in published)
    wanted = [(p, p) for p in at]
    for bound in bounds[1:]:
        # Positions within `near` of the boundary can have crossed it (the count ahead is read a little past it).
        near = were_open + bisect.bisect_right(at, bound + were_open + len(changed)) + 1
        if bound - near > size:
            break
        wanted.append((max(1, bound - near), min(size, bound + near)))
    spans: list[tuple[int, int]] = []
    for first, last in sorted(wanted):
        if spans and first <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(last, spans[-1][1]))
        else:
            spans.append((first, last))
    return spans if sum(last - first + 1 for first, last in spans) < size else None


class FrozenLane(NamedTuple):
    """A lane's snapshot to write: its open orders in queue order, its forecast and its header."""

    name: str
    order_ids: list[str]
    forecast: Forecast
    header: dict[str, object]


class PositionRecord(msgspec.Struct, gc=False):
    """An order's record on the positions topic; an order not in the queue has no position, bucket or
    ETA. The ETA band is the one for its position when the record was written (its bucket's positions
    share the lane's forecast, but not one band). The fields are in alphabetical order: msgspec writes
    them in that order, so its JSON is the canonical form (orderbank.projections.bank.canonical)
    without a dict to sort."""

    as_of: str
    bucket: tuple[int, int] | None
    eta: str | None
    eta_basis: str | None
    eta_high: str | None
    eta_low: str | None
    lane: str
    open_in_lane: int
    order_id: str
    position: int | None
    status: str


_encode = msgspec.json.Encoder().encode


def _position(record: PositionRecord) -> Record:
    return POSITIONS, record.order_id.encode(), _encode(record)
