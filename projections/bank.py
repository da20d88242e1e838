"""The order bank: every order's state and the three projections, kept by one pure reducer.

`OrderBank.apply(event)` checks the event against its order's lifecycle, updates the order
and the projections, and returns what happened: `APPLIED`, `DUPLICATE` (a seq already applied, or
the same bad input rejected again: a no-op) or a `Rejection`. `apply_decoded` takes what a decoder
gave, an event or a rejection, so every input is counted once whether it applied or not;
`fold(events)` applies a whole history and `fold_lines(lines)` a log's lines. The fold's clock
`now` is the latest occurred_at seen, so results depend on the events alone, not on when or in
which interleaving of orders they were folded.

Two rules look beyond one order. An event id names one event, (order_id, seq): the first event
that carries it takes it, whatever becomes of that event, and any other event carrying it is an
`event_id_conflict` (a verdict the stream's ingest can reach from the input alone, without the
banks' state: orderbank.engine.stream.ingest). And a rejection is counted once per input (its
bytes, given as `raw`) and reason: the same bad bytes rejected again for the same reason, a
producer's re-run or a redelivery, are a duplicate.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Any, Literal, TypeVar

import msgspec

from orderbank.projections.cancellations import CancellationProjection
from orderbank.projections.codec import Reason, Rejection, decode_batch
from orderbank.projections.events import Event, OrderPlaced, ProductionPlanned
from orderbank.projections.orders import Order, Status, check, cohort_of, iso, micros
from orderbank.projections.plans import PlanStream, order_rule, plan_rule, stream_of
from orderbank.projections.policies import Fifo, Policy
from orderbank.projections.pool import NOTHING, PoolProjection, contribution
from orderbank.projections.queue import Position, QueueProjection


class Verdict(StrEnum):
    """What `OrderBank.apply` did with an event it did not reject (a rejected one gets a `Rejection`)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class BankSettings:
    """How the bank is projected. Lanes group the orders that compete for the same cars."""

    policy: Policy = field(default_factory=Fifo)
    lane_by: Literal["model", "model_trim"] = "model"
    eta_window_days: int = 28
    max_open_per_lane: int = 2_000_000

    def lane_of(self, event: OrderPlaced) -> str:
        return event.model if self.lane_by == "model" else f"{event.model}/{event.trim}"

    def plan_lane(self, model: str, trim: str | None) -> str:
        """The lane a plan of this model (and trim, if it names one) plans (orderbank.projections.plans)."""
        return model if self.lane_by == "model" or trim is None else f"{model}/{trim}"


class EventIds:
    """Which event took each event id: the first that carried it, as a hash of its (order_id, seq).

    Python's hash of the pair: salted per process, so no input can aim at a collision (one in 2**64
    by chance), and recomputed whenever the owners are (`remember`). ~130 bytes an id."""

    def __init__(self) -> None:
        self._owners: dict[int, int] = {}  # event id's 128-bit int -> hash((order_id, seq))

    def taken_by_another(self, event: Event) -> bool:
        """Whether another event took this one's id; if none did, this one takes it."""
        owner = hash((event.order_id, event.seq))
        return self._owners.setdefault(event.event_id.int, owner) != owner

    def remember(self, events: Iterable[tuple[int, str, int]]) -> None:
        """Ids taken by these events, (event id's 128-bit int, order_id, seq): by the first to carry each."""
        owners = self._owners
        for event_id, order_id, seq in events:
            owners.setdefault(event_id, hash((order_id, seq)))


class Counted:
    """The rejections counted, by `rejection_id` (8 bytes each, ~80 bytes in the set)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()

    def first(self, raw: bytes | str, reason: Reason) -> bool:
        """Whether this input is rejected for this reason for the first time (it is counted now)."""
        counted = rejection_id(raw, reason)
        if counted in self.ids:
            return False
        self.ids.add(counted)
        return True


_Shared = TypeVar("_Shared", str, int)


class Values:
    """One object for each value many orders hold (a model, a trim, a price), where decoding gives each event (and
    each changelog record) its own: the yu7 launch's orders and their values take 160 MB instead of 224."""

    def __init__(self) -> None:
        self._values: dict[str | int, str | int] = {}

    def _share(self, value: _Shared) -> _Shared:
        return self._values.setdefault(value, value)  # type: ignore[return-value]

    def hold(self, order: Order) -> None:
        """Point the order's repeated values at the bank's one object for each."""
        share = self._share
        order.model, order.trim, order.lane = share(order.model), share(order.trim), share(order.lane)
        order.currency, order.list_price, order.deposit = (share(order.currency), share(order.list_price),
                                                           share(order.deposit))


class OrderBank:
    """All orders and their projections. Mutated only through its methods (and built from orders by
    `orderbank.projections.restore`)."""

    def __init__(self, settings: BankSettings | None = None) -> None:
        self.settings = settings or BankSettings()
        self.orders: dict[str, Order] = {}
        self.plans: dict[str, PlanStream] = {}
        self.queue = QueueProjection(self.settings.policy, self.settings.eta_window_days)
        self.pool = PoolProjection()
        self.cancellations = CancellationProjection()
        self.now_us = 0
        self.applied = 0
        self.duplicates = 0
        self.rejections: Counter[str] = Counter()
        self.event_ids = EventIds()
        self.counted = Counted()
        self.values = Values()

    def apply(self, event: Event, raw: bytes | str | None = None, *, id_taken: bool = False) -> Verdict | Rejection:
        """Apply an event (`raw`: its input bytes, which tell a rejection already counted). `id_taken`:
        its id is known to be another event's (the stream's ingest knows it of ids this bank never saw)."""
        if id_taken or self.event_ids.taken_by_another(event):
            return self._count(id_conflict(event), raw)
        if event.type == "ProductionPlanned":
            return self._plan(event, raw)
        order = self.orders.get(event.order_id)
        if order is not None and event.seq <= order.last_seq:
            return self.repeated()
        rejection = check(order, event) if order is not None else self._placement_rule(event)
        if rejection is not None:
            return self._count(rejection, raw)
        occurred_us = micros(event.occurred_at)
        if occurred_us > self.now_us:
            self.now_us = occurred_us
        if order is None:
            assert event.type == "OrderPlaced"
            order = self._place(event, occurred_us)
        else:
            order.last_seq = event.seq
            self._change(order, event, occurred_us)
        if occurred_us > order.updated_us:
            order.updated_us = occurred_us
        self.applied += 1
        return Verdict.APPLIED

    def _plan(self, event: ProductionPlanned, raw: bytes | str | None) -> Verdict | Rejection:
        stream = self.plans.get(event.order_id)
        if stream is not None and event.seq <= stream.last_seq:
            return self.repeated()
        rejection = plan_rule(stream, event, event.order_id in self.orders)
        if rejection is not None:
            return self._count(rejection, raw)
        if stream is None:
            stream = self.plans[event.order_id] = stream_of(event)
        declared = stream.declare(event)
        self.now_us = max(self.now_us, declared.declared_us)
        self.queue.planned(self.settings.plan_lane(stream.model, stream.trim), stream, declared.declared_us)
        self.applied += 1
        return Verdict.APPLIED

    def reject(self, rejection: Rejection, raw: bytes | str | None = None) -> Verdict | Rejection:
        """Count an input refused before it reached `apply`: it did not decode, or its transport was wrong."""
        return self._count(rejection, raw)

    def _count(self, rejection: Rejection, raw: bytes | str | None) -> Verdict | Rejection:
        """The rejection, counted; or a duplicate if these bytes were rejected for this reason before."""
        if raw is not None and not self.counted.first(raw, rejection.reason):
            return self.repeated()
        self.rejections[rejection.reason.value] += 1
        return rejection

    def repeated(self) -> Verdict:
        """Count an input delivered again that was judged before (a stream knows it by where it came from)."""
        self.duplicates += 1
        return Verdict.DUPLICATE

    def apply_decoded(self, decoded: Event | Rejection, raw: bytes | str | None = None) -> Verdict | Rejection:
        """Apply what a decoder gave (from `raw`): an event is applied, a rejection counted."""
        return self.reject(decoded, raw) if isinstance(decoded, Rejection) else self.apply(decoded, raw)

    def remember(self, taken: Iterable[tuple[int, str, int]], rejected: Iterable[int] = ()) -> None:
        """What a bank restored from its orders cannot know: the events that took ids before, as (event
        id's 128-bit int, order_id, seq), and the `rejection_id`s counted before."""
        self.event_ids.remember(taken)
        self.counted.ids.update(rejected)

    def resume_counts(self, applied: int, duplicates: int, rejections: Mapping[str, int]) -> None:
        """Go on counting from a saved bank's counters (`stats()` reports them)."""
        self.applied, self.duplicates = applied, duplicates
        self.rejections.update(rejections)

    def _placement_rule(self, event: Event) -> Rejection | None:
        """Why an event for an order not placed yet is refused: the lifecycle's rules, then the lane's limit."""
        rejection = check(None, event) or (order_rule(event, self.plans) if self.plans else None)
        if rejection is not None or event.type != "OrderPlaced":
            return rejection
        lane = self.queue.lanes.get(self.settings.lane_of(event))
        if lane is not None and len(lane.open) >= self.settings.max_open_per_lane:
            return Rejection(Reason.LANE_FULL, "max_open_per_lane",
                             f"lane already holds {self.settings.max_open_per_lane} open orders",
                             None, event.order_id, str(event.event_id))
        return None

    def _place(self, event: OrderPlaced, occurred_us: int) -> Order:
        placed_us = micros(event.placed_at)
        order = Order(
            order_id=event.order_id, customer_id=event.customer_id, model=event.model,
            trim=event.trim, trim_rank=event.trim_rank, lane=self.settings.lane_of(event),
            currency=event.list_price.currency, list_price=event.list_price.minor,
            deposit=event.deposit.minor, placed_us=placed_us, cohort=cohort_of(placed_us),
        )
        self.values.hold(order)
        if order.fully_paid:
            order.paid_us = occurred_us
        self.orders[order.order_id] = order
        self.pool.after(order, NOTHING)
        self.queue.add(order)
        self.cancellations.placed(order)
        return order

    def _change(self, order: Order, event: Event, occurred_us: int) -> None:
        before = contribution(order)
        match event.type:
            case "PaymentDemanded":
                order.demand(event.amount.minor, micros(event.due_at))
                if event.purpose == "balance" and order.allocated_us is None:
                    order.allocated_us = occurred_us
                    self.queue.dated(order, order.allocated_us)
            case "PaymentReceived":
                order.received += event.amount.minor
                if order.paid_us is None and order.fully_paid:  # this payment completed the price
                    order.paid_us = occurred_us
                    self.queue.dated(order, order.paid_us)
                    if self.queue.policy.rekeys_on_payment:
                        self.queue.rekey(order)
            case "OrderCancelled":
                order.status, order.closed_us = Status.CANCELLED, occurred_us
                order.refund_due, order.cancel_reason = event.refund.minor, event.reason
                self.queue.remove(order)
                self.cancellations.cancelled(order, order.closed_us)
            case "RefundPaid":
                order.refunded += event.amount.minor
            case "VehicleDelivered":
                order.status, order.closed_us = Status.DELIVERED, micros(event.delivered_at)
                self.queue.delivered(order, order.closed_us)
                self.cancellations.delivered(order)
            case "OrderTransferred":
                order.customer_id = event.new_customer_id
                order.transfers += 1
        self.pool.after(order, before)

    def position_of(self, order_id: str) -> Position | None:
        order = self.orders.get(order_id)
        return self.queue.position_of(order_id, order.lane, self.now_us) if order else None

    def stats(self) -> dict[str, Any]:
        return {"applied": self.applied, "duplicates": self.duplicates,
                "rejected": dict(sorted(self.rejections.items())),
                "orders": len(self.orders), "as_of": iso(self.now_us) if self.now_us else None}

    def snapshot(self) -> dict[str, Any]:
        """Every projection as plain data; `canonical(bank.snapshot())` compares byte for byte."""
        return {
            "as_of": iso(self.now_us) if self.now_us else None,
            "queue": self.queue.snapshot(self.now_us),
            "pool": self.pool.snapshot(self.now_us),
            "cancellations": self.cancellations.snapshot(self.now_us),
        }


def id_conflict(event: Event) -> Rejection:
    return Rejection(Reason.EVENT_ID_CONFLICT, "event_id_unique",
                     f"event id {event.event_id} names another event (another order_id or seq)", "event_id",
                     event.order_id, str(event.event_id))


def rejection_id(raw: bytes | str, reason: Reason) -> int:
    """What tells a rejection counted before: 8 bytes of a hash of the input's bytes and the reason."""
    digest = hashlib.blake2b(reason.value.encode() + b"\0", digest_size=8)
    digest.update(raw.encode() if isinstance(raw, str) else raw)
    return int.from_bytes(digest.digest())


def fold(events: Iterable[Event], settings: BankSettings | None = None) -> OrderBank:
    """The order bank after applying `events` in order to an empty bank."""
    bank = OrderBank(settings)
    for event in events:
        bank.apply(event)
    return bank


DECODED_TOGETHER = 4096
"""How many lines `decoded_lines` decodes in one call."""


def decoded_lines(lines: Iterable[bytes | str]) -> Iterator[tuple[int, bytes | str, Event | Rejection]]:
    """Each line of a log, numbered from 1, and what it decodes to: what `OrderBank.apply_decoded` takes, one
    at a time. An empty line is a blank line of the file: it keeps its number and is not decoded. The lines are
    decoded DECODED_TOGETHER at a time, as the stream's shards decode theirs (`decode_batch`: the same values, or
    the same rejection, as `decode` gives line by line)."""
    numbered = ((number, line) for number, line in enumerate(lines, start=1) if line)
    while batch := list(islice(numbered, DECODED_TOGETHER)):
        decoded = decode_batch([line.encode() if isinstance(line, str) else line for _, line in batch])
        for (number, line), event in zip(batch, decoded, strict=True):
            yield number, line, event


REJECTED_KEPT = 20
"""How many rejected lines `fold_lines` keeps, with their numbers; the bank counts all of them by
reason, so a log of any number of bad lines folds in the same memory."""


def fold_lines(lines: Iterable[bytes | str],
               settings: BankSettings | None = None) -> tuple[OrderBank, list[tuple[int, Rejection]]]:
    """The order bank after applying a log's lines in order to an empty bank, and its first
    `REJECTED_KEPT` rejected lines by number (`bank.rejections` counts them all)."""
    bank = OrderBank(settings)
    rejected: list[tuple[int, Rejection]] = []
    for number, line, decoded in decoded_lines(lines):
        outcome = bank.apply_decoded(decoded, line)
        if isinstance(outcome, Rejection) and len(rejected) < REJECTED_KEPT:
            rejected.append((number, outcome))
    return bank, rejected


_CANONICAL = msgspec.json.Encoder(order="sorted")


def canonical(doc: object) -> bytes:
    """Canonical JSON: sorted keys, compact, so equal projections are equal bytes.

    msgspec rather than orjson: orjson takes a 1 KiB buffer from the C allocator for every call, which
    a worker holding a launch's orders in memory pays ~1 us for, a whole position record's worth."""
    return _CANONICAL.encode(doc)
