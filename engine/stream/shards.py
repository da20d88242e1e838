"""A shard: one partition of the lanes topic, its OrderBank, and how it is saved and restored.

`Shard.apply(frame)` decodes the entries with orderbank.projections.codec and hands it to OrderBank.apply, the
same reducer the replay uses; no business rule lives here. It returns the rejected entries (for
the dead-letter topic: a rejection the bank counted before is a duplicate, not returned again) and
remembers which orders changed, for the changelog. No input stops a shard: an event whose decoding
or applying raises is rejected as `internal_error` and the bank is put back as it was before it
(`Shard._fold`), and the frame's other events are applied. An input partition's messages reach a
shard in offset order, so an entry at or below the last offset it judged from that partition is one
the ingest forwarded again after a crash or a rebalance: a duplicate, not judged a second time.

The changelog of the bank table holds one record per order, `o:<shard>:<order_id>` (`Saved`: the
order's state, whose `updated_us` makes the restored clock exact, and the ids of its applied
events), one per plan stream, `p:<shard>:<stream_id>` (`SavedPlan`: its plans and event ids), one
per rejection counted, `r:<shard>:<rejection_id as 16 hex digits>` (its reason), so the same bad
input is not counted nor dead-lettered again after a restart, and one per shard, `s:<shard>` (the
counters, the last lanes offset applied and the last input offset judged from each input
partition), written after the others: a crash in between leaves the frame to be redelivered (its
events are duplicates for the orders already written), never skipped. Keys carry the shard so a
worker can restore each partition it is given. A restored bank knows the ids its applied events
took, not those of events it refused: the ingest, which keeps every id of its input partitions,
marks the entries whose id is taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from orderbank.engine.stream.frames import Entry, Frame
from orderbank.projections.bank import BankSettings, OrderBank, Verdict, rejection_id
from orderbank.projections.codec import Reason, Rejection, decode_batch, decode_checked
from orderbank.projections.events import Event
from orderbank.projections.orders import Order
from orderbank.projections.plans import PlanStream
from orderbank.projections.restore import restore

log = logging.getLogger(__name__)
MAX_ERROR_TEXT = 1000
"""Most characters of an exception's text kept in an `internal_error` rejection (the log has it all)."""


def order_key(shard: int, order_id: str) -> bytes:
    return f"o:{shard}:{order_id}".encode()


def plan_key(shard: int, stream_id: str) -> bytes:
    return f"p:{shard}:{stream_id}".encode()


def meta_key(shard: int) -> bytes:
    return f"s:{shard}".encode()


def rejection_key(shard: int, counted: int) -> bytes:
    return f"r:{shard}:{counted:016x}".encode()


def _key_rejection(key: bytes | None, order_id: str, event_id: str) -> Rejection:
    return Rejection(Reason.INVALID_FIELD, "key_is_order_id",
                     f"message key {key!r} is not the event's order_id {order_id!r}", "order_id", order_id, event_id)


def internal_error(rule: str, exc: Exception, order_id: str | None = None, event_id: str | None = None) -> Rejection:
    """The rejection of an event whose `rule` step (decode, apply) raised `exc`: its type and message, no traceback."""
    return Rejection(Reason.INTERNAL_ERROR, rule, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT], None,
                     order_id, event_id)


class Saved(msgspec.Struct, array_like=True, gc=False):
    """An order's changelog record, `[order, events]`: its state, and what the changelog keeps beyond it."""

    order: Order
    events: str = ""
    """The ids of its applied events, 32 hex digits each, in the order they were applied."""

    def event_ids(self) -> Iterator[int]:
        return _ids_in(self.events)

    def applied(self) -> Iterator[tuple[int, str, int]]:
        return _applied(self.order.order_id, self.events)


class SavedPlan(msgspec.Struct, array_like=True, gc=False):
    """A plan stream's changelog record, `[stream, events]`: its plans, and the ids of its applied events."""

    stream: PlanStream
    events: str = ""

    def event_ids(self) -> Iterator[int]:
        return _ids_in(self.events)

    def applied(self) -> Iterator[tuple[int, str, int]]:
        return _applied(self.stream.stream_id, self.events)


def _ids_in(events: str) -> Iterator[int]:
    """Event ids written one after another as 32 hex digits each."""
    return (int(events[i:i + 32], 16) for i in range(0, len(events), 32))


def _applied(stream_id: str, events: str) -> Iterator[tuple[int, str, int]]:
    """A stream's applied events as (event id, stream id, seq): its applied seqs run 1, 2, 3, ..."""
    return ((event_id, stream_id, seq) for seq, event_id in enumerate(_ids_in(events), start=1))


class Undo(msgspec.Struct, frozen=True, gc=False):
    """What `Shard._roll_back` needs to put the bank back as it was before an event that raised. (A Struct: one is
    made for every event, in C, 3x quicker than a NamedTuple's.)"""

    stream_id: str
    before: Order | PlanStream | None  # a copy of the order or plan stream before the event; None if it had none
    plan: bool
    applied: int
    duplicates: int


def _copy(state: Order | PlanStream) -> Order | PlanStream:
    """A copy that the event cannot change: its fields, and the one list it may append to (an order's demands, a
    stream's plans; their items are never changed). A shallow copy of a Struct is a C call, ~4x cheaper than
    encoding it."""
    if isinstance(state, Order):
        return msgspec.structs.replace(state, demands=state.demands.copy())
    return msgspec.structs.replace(state, plans=state.plans.copy())


_SAVED = msgspec.json.Decoder(Saved)
_SAVED_PLAN = msgspec.json.Decoder(SavedPlan)
_encode = msgspec.json.Encoder().encode


def _rejection(outcome: Verdict | Rejection) -> Rejection | None:
    """What to dead-letter for an outcome: a rejection counted now, not a verdict (applied, or a
    duplicate: these bytes were rejected for this reason before)."""
    return outcome if isinstance(outcome, Rejection) else None


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
    # The changelog records of the orders and plan streams changed since the last flush, by stream id, encoded
    # as each change is applied: the order is then in the CPU's caches, where at the frame's end, its fields
    # scattered over a launch's memory, encoding it took ~10x as long (~6 us an event on the yu7 log).
    changed: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    counted: dict[int, str] = field(default_factory=dict)  # rejections counted since, to write: id -> reason
    inputs: dict[int, int] = field(default_factory=dict)  # input partition -> the last offset judged
    touched: set[str] = field(default_factory=set)  # orders with events since the last publish
    unpublished: bool = False  # events applied (or state restored) since the last full publish
    last_frame_at: float = field(default_factory=time.monotonic)

    def apply(self, frame: Frame, offset: int) -> list[tuple[Entry, Rejection]] | None:
        """Fold a frame into the bank; None if this offset was applied before (a redelivery)."""
        if offset <= self.offset:
            return None
        rejected = []
        inputs = self.inputs
        for entry, event in zip(frame.entries, self._decode(frame.entries), strict=True):
            if entry.offset <= inputs.get(entry.partition, -1):
                self.bank.repeated()
                continue
            inputs[entry.partition] = entry.offset
            rejection = self._fold(entry, event)
            if rejection is not None:
                rejected.append((entry, rejection))
                self.counted[rejection_id(entry.value, rejection.reason)] = rejection.reason.value
        self.touched.update(self.changed)
        # The orders with events: a plan moves no order's place. (In place: `-= self.plans.keys()` would
        # copy the set, every frame.)
        self.touched.difference_update(self.plans)
        self.offset, self.unpublished, self.last_frame_at = offset, True, time.monotonic()
        return rejected

    def _decode(self, entries: list[Entry]) -> list[Event | Rejection]:
        """The entries' values decoded in one batch (those the ingest checked without checking them again)
        or, if that raises, one at a time, each checked: only the entry whose decoding raises is lost (an
        `internal_error`)."""
        try:
            checked = [entry.value for entry in entries if entry.checked]
            if not checked:
                return decode_batch([entry.value for entry in entries])
            fast = iter(decode_checked(checked))
            rest = iter(decode_batch([entry.value for entry in entries if not entry.checked]))
            return [next(fast) if entry.checked else next(rest) for entry in entries]
        except Exception:
            log.exception("shard %d: decoding a frame of %d events raised; decoding them one at a time",
                          self.partition, len(entries))
        decoded: list[Event | Rejection] = []
        for entry in entries:
            try:
                decoded += decode_batch([entry.value])
            except Exception as exc:
                log.exception("shard %d: decoding the event at input partition %d offset %d raised",
                              self.partition, entry.partition, entry.offset)
                decoded.append(internal_error("decode", exc))
        return decoded

    def _fold(self, entry: Entry, event: Event | Rejection) -> Rejection | None:
        """Apply one decoded entry; its rejection, if any.

        An event that raises is rejected as `internal_error` and leaves the bank as it was before
        it. OrderBank.apply changes the order and then each projection, so an exception can come
        with any part of that done; rather than undo each step (which would need every reducer to
        know its inverse, and be right about how far it got), the shard rebuilds its bank from its
        orders' `Saved` records, with the failing order's record put back to the state it had
        before the event (a copy taken before each event of an existing order, `_copy`). That is
        the restore a restarted worker does from the changelog, which equals the
        fold (tests/test_equals_the_fold.py), so the bank is exactly the fold without the event.
        A rebuild takes about a second per 100,000 orders (2 cores, loaded), paid only when an event
        raised, which is a bug to fix: each one is logged with its traceback."""
        undo: Undo | None = None
        try:
            if isinstance(event, Rejection):
                return _rejection(self.bank.reject(event, entry.value))
            order_id = event.order_id
            if entry.key != order_id.encode():
                return _rejection(self.bank.reject(_key_rejection(entry.key, order_id, str(event.event_id)),
                                                   entry.value))
            bank = self.bank
            before = bank.plans.get(order_id) if event.type == "ProductionPlanned" else bank.orders.get(order_id)
            undo = Undo(order_id, None if before is None else _copy(before), event.type == "ProductionPlanned",
                        bank.applied, bank.duplicates)
            return self._apply(entry, event)
        except Exception as exc:
            log.exception("shard %d: the event at input partition %d offset %d raised; rejected as %s",
                          self.partition, entry.partition, entry.offset, Reason.INTERNAL_ERROR.value)
            if undo is not None:
                self._roll_back(undo)
            ids = (event.order_id, event.event_id) if isinstance(event, Rejection) else (
                event.order_id, str(event.event_id))
            return _rejection(self.bank.reject(internal_error("apply", exc, *ids), entry.value))

    def _apply(self, entry: Entry, event: Event) -> Rejection | None:
        bank = self.bank
        outcome = bank.apply(event, entry.value, id_taken=entry.id_taken)
        if outcome is Verdict.APPLIED:
            order_id = event.order_id
            record: Saved | SavedPlan | None = self.saved.get(order_id)
            if record is None:
                record = self._record(order_id)
            record.events += event.event_id.hex
            self.changed[order_id] = self._changelog_record(order_id, record)
            return None
        return _rejection(outcome)

    def _changelog_record(self, stream_id: str, record: Saved | SavedPlan) -> tuple[bytes, bytes]:
        key = plan_key if isinstance(record, SavedPlan) else order_key
        return key(self.partition, stream_id), _encode(record)

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

    def _roll_back(self, undo: Undo) -> None:
        """Rebuild the bank as it was before an event that raised (see `_fold`)."""
        stream_id, before = undo.stream_id, undo.before
        if before is None:
            (self.plans if undo.plan else self.saved).pop(stream_id, None)
            self.changed.pop(stream_id, None)
            self.touched.discard(stream_id)
        elif isinstance(before, PlanStream):
            self.plans[stream_id] = SavedPlan(before, self.plans[stream_id].events)
        else:
            self.saved[stream_id] = Saved(before, self.saved[stream_id].events)
        # A changelog record of the stream in `changed` was encoded before the event: it holds `before` already.
        bank = self.bank
        self.bank = bank_of(self.saved.values(), self.plans.values(), bank.settings, undo.applied, undo.duplicates,
                            bank.rejections, bank.counted.ids)

    @property
    def processed(self) -> int:
        """Input events this shard has seen: applied, duplicate or rejected."""
        return self.bank.applied + self.bank.duplicates + sum(self.bank.rejections.values())

    def changelog(self) -> list[tuple[bytes, bytes]]:
        """Records for the orders changed since the last call, then the shard record."""
        bank, partition = self.bank, self.partition
        out = list(self.changed.values())
        out += [(rejection_key(partition, counted), reason.encode()) for counted, reason in self.counted.items()]
        meta = {"offset": self.offset, "applied": bank.applied, "duplicates": bank.duplicates,
                "rejections": dict(bank.rejections), "inputs": {str(p): o for p, o in self.inputs.items()}}
        out.append((meta_key(partition), orjson.dumps(meta)))
        self.changed, self.counted = {}, {}
        return out

    def health(self) -> dict[str, Any]:
        return {"offset": self.offset, "processed": self.processed, **self.bank.stats(),
                "lanes": sorted(self.bank.queue.lanes), "published": not self.unpublished}


def restore_shard(partition: int, table: Iterable[tuple[bytes, bytes]], settings: BankSettings) -> Shard:
    """The shard as its changelog records left it (an empty shard when there are none)."""
    prefix, plan_prefix, meta_at = order_key(partition, ""), plan_key(partition, ""), meta_key(partition)
    counted_prefix = rejection_key(partition, 0)[:-16]
    saved: dict[str, Saved] = {}
    plans: dict[str, SavedPlan] = {}
    counted: list[int] = []
    meta: dict[str, Any] = {"offset": -1, "applied": 0, "duplicates": 0, "rejections": {}}
    for key, value in table:
        if key.startswith(prefix):
            record = saved_of(value)
            saved[record.order.order_id] = record
        elif key.startswith(plan_prefix):
            plan = saved_plan_of(value)
            plans[plan.stream.stream_id] = plan
        elif key.startswith(counted_prefix):
            counted.append(int(key[len(counted_prefix):], 16))
        elif key == meta_at:
            meta = orjson.loads(value)
    inputs = {int(p): o for p, o in meta.get("inputs", {}).items()}
    # Applied: counted from the records, not the shard record, which a crash may leave a frame behind them.
    applied = sum(len(record.events) // 32 for records in (saved, plans) for record in records.values())
    bank = bank_of(saved.values(), plans.values(), settings, applied, meta["duplicates"], meta["rejections"], counted)
    return Shard(partition, bank, meta["offset"], saved, plans, inputs=inputs, unpublished=bool(saved or plans))


def bank_of(records: Collection[Saved], plans: Collection[SavedPlan], settings: BankSettings, applied: int,
            duplicates: int, rejections: Mapping[str, int], counted: Iterable[int]) -> OrderBank:
    """The bank holding the orders of `records` and the plan streams of `plans` (taken over, not copied),
    the ids their applied events took, the rejections counted (`rejection_id`s) and these counts."""
    clock = max([*(record.order.updated_us for record in records),
                 *(plan.stream.plans[-1].declared_us for plan in plans)], default=0)
    taken = [*(event for record in records for event in record.applied()),
             *(event for plan in plans for event in plan.applied())]
    bank = restore((record.order for record in records), clock, settings, taken, counted,
                   (plan.stream for plan in plans))
    bank.resume_counts(applied, duplicates, rejections)
    return bank
