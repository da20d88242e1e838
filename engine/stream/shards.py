"""A shard: one partition of the lanes topic, its OrderBank, and how it is saved and restored.

`Shard.apply(frame)` decodes the entries with orderbank.projections.codec and hands it to OrderBank.apply, the
same reducer the replay uses; no business rule lives here. It returns the rejected entries (for
the dead-letter topic) and remembers which orders changed, for the changelog.

The changelog of the bank table holds one record per order, `o:<shard>:<order_id>` (`Saved`: the
order's state, whose `updated_us` makes the restored clock exact, and the ids of its applied
events), one per plan stream, `p:<shard>:<stream_id>` (`SavedPlan`: its plans and event ids), and
one per shard, `s:<shard>` (the counters and the last lanes offset applied), written after the orders:
a crash in between leaves the frame to be redelivered (its events are duplicates for the orders already
written), never skipped. Keys carry the shard so a worker
can restore each partition it is given.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from orderbank.engine.stream.frames import Entry, Frame
from orderbank.projections.bank import BankSettings, OrderBank, Verdict
from orderbank.projections.codec import Reason, Rejection, decode_batch
from orderbank.projections.orders import Order
from orderbank.projections.plans import PlanStream
from orderbank.projections.restore import restore


def order_key(shard: int, order_id: str) -> bytes:
    return f"o:{shard}:{order_id}".encode()


def plan_key(shard: int, stream_id: str) -> bytes:
    return f"p:{shard}:{stream_id}".encode()


def meta_key(shard: int) -> bytes:
    return f"s:{shard}".encode()


def _key_rejection(key: bytes | None, order_id: str, event_id: str) -> Rejection:
    return Rejection(Reason.INVALID_FIELD, "key_is_order_id",
                     f"message key {key!r} is not the event's order_id {order_id!r}", "order_id", order_id, event_id)


class Saved(msgspec.Struct, array_like=True, gc=False):
    """An order's changelog record, `[order, events]`: its state, and what the changelog keeps beyond it."""

    order: Order
    events: str = ""
    """The ids of its applied events, 32 hex digits each, in the order they were applied."""

    def event_ids(self) -> Iterator[int]:
        return _ids_in(self.events)


class SavedPlan(msgspec.Struct, array_like=True, gc=False):
    """A plan stream's changelog record, `[stream, events]`: its plans, and the ids of its applied events."""

    stream: PlanStream
    events: str = ""

    def event_ids(self) -> Iterator[int]:
        return _ids_in(self.events)


def _ids_in(events: str) -> Iterator[int]:
    """Event ids written one after another as 32 hex digits each."""
    return (int(events[i:i + 32], 16) for i in range(0, len(events), 32))


_SAVED = msgspec.json.Decoder(Saved)
_SAVED_PLAN = msgspec.json.Decoder(SavedPlan)
_encode = msgspec.json.Encoder().encode


def saved_of(value: bytes) -> Saved:
    """An order's changelog record from its bytes."""
    return _SAVED.decode(value)


def saved_plan_of(value: bytes) -> SavedPlan:
    """A plan stream's changelog record from its bytes."""
    return _SAVED_PLAN.decode(value)


@dataclass
class Shard:
    """One lanes partition's bank, and what changed in it since the last flush."""

    partition: int
    bank: OrderBank
    offset: int = -1  # the last lanes-topic offset applied
    saved: dict[str, Saved] = field(default_factory=dict)
    plans: dict[str, SavedPlan] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # orders and plan streams to write to the changelog
    touched: set[str] = field(default_factory=set)  # orders with events since the last publish
    unpublished: bool = False  # events applied (or state restored) since the last full publish
    last_frame_at: float = field(default_factory=time.monotonic)

    def apply(self, frame: Frame, offset: int) -> list[tuple[Entry, Rejection]] | None:
        """Fold a frame into the bank; None if this offset was applied before (a redelivery)."""
        if offset <= self.offset:
            return None
        bank, saved, changed, rejected = self.bank, self.saved, self.changed, []
        applied = Verdict.APPLIED
        for entry, event in zip(frame.entries, decode_batch([e.value for e in frame.entries]), strict=True):
            if isinstance(event, Rejection) or entry.key != event.order_id.encode():
                if not isinstance(event, Rejection):
                    event = _key_rejection(entry.key, event.order_id, str(event.event_id))
                rejected.append((entry, bank.reject(event)))
                continue
            outcome = bank.apply(event)
            if outcome is applied:
                order_id = event.order_id
                record: Saved | SavedPlan | None = saved.get(order_id)
                if record is None:
                    record = self._record(order_id)
                record.events += event.event_id.hex
                changed.add(order_id)
            elif isinstance(outcome, Rejection):
                rejected.append((entry, outcome))
        self.touched |= changed
        self.touched -= self.plans.keys()  # the orders with events: a plan moves no order's place
        self.offset, self.unpublished, self.last_frame_at = offset, True, time.monotonic()
        return rejected

    def _record(self, stream_id: str) -> Saved | SavedPlan:
        """The changelog record of a stream that is not an order's known one: a plan stream's (kept apart: it
        is no order), or a new order's."""
        if stream_id in self.bank.plans:
            plan = self.plans.get(stream_id)
            if plan is None:
                plan = self.plans[stream_id] = SavedPlan(self.bank.plans[stream_id])
            return plan
        order = self.saved[stream_id] = Saved(self.bank.orders[stream_id])
        return order

    @property
    def processed(self) -> int:
        """Input events this shard has seen: applied, duplicate or rejected."""
        return self.bank.applied + self.bank.duplicates + sum(self.bank.rejections.values())

    def changelog(self) -> list[tuple[bytes, bytes]]:
        """Records for the orders changed since the last call, then the shard record."""
        bank, saved, partition = self.bank, self.saved, self.partition
        plans = self.plans
        out = [(plan_key(partition, stream_id), _encode(plans[stream_id])) if stream_id in plans
               else (order_key(partition, stream_id), _encode(saved[stream_id])) for stream_id in self.changed]
        meta = {"offset": self.offset, "applied": bank.applied, "duplicates": bank.duplicates,
                "rejections": dict(bank.rejections)}
        out.append((meta_key(partition), orjson.dumps(meta)))
        self.changed = set()
        return out

    def health(self) -> dict[str, Any]:
        return {"offset": self.offset, "processed": self.processed, **self.bank.stats(),
                "lanes": sorted(self.bank.queue.lanes), "published": not self.unpublished}


def restore_shard(partition: int, table: Iterable[tuple[bytes, bytes]], settings: BankSettings) -> Shard:
    """The shard as its changelog records left it (an empty shard when there are none)."""
    prefix, plan_prefix, meta_at = order_key(partition, ""), plan_key(partition, ""), meta_key(partition)
    saved: dict[str, Saved] = {}
    plans: dict[str, SavedPlan] = {}
    meta: dict[str, Any] = {"offset": -1, "applied": 0, "duplicates": 0, "rejections": {}}
    for key, value in table:
        if key.startswith(prefix):
            record = saved_of(value)
            saved[record.order.order_id] = record
        elif key.startswith(plan_prefix):
            plan = saved_plan_of(value)
            plans[plan.stream.stream_id] = plan
        elif key == meta_at:
            meta = orjson.loads(value)
    clock = max([*(record.order.updated_us for record in saved.values()),
                 *(plan.stream.plans[-1].declared_us for plan in plans.values())], default=0)
    bank = restore((record.order for record in saved.values()), clock, settings,
                   itertools.chain(itertools.chain.from_iterable(record.event_ids() for record in saved.values()),
                                   itertools.chain.from_iterable(plan.event_ids() for plan in plans.values())),
                   (plan.stream for plan in plans.values()))
    bank.resume_counts(meta["applied"], meta["duplicates"], meta["rejections"])
    return Shard(partition, bank, meta["offset"], saved, plans, unpublished=bool(saved or plans))
