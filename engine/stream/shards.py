"""A shard: one partition of the lanes topic, its OrderBank, and how it is saved and restored.

`Shard.apply(frame)` decodes the entries with orderbank.projections.codec and hands it to OrderBank.apply, the
same reducer the replay uses; no business rule lives here. It returns the rejected entries (for
the dead-letter topic: a rejection the bank counted before is a duplicate, not returned again) and
remembers which orders changed, for the changelog. An input partition's messages reach a shard in
offset order, so an entry at or below the last offset it judged from that partition is one the
ingest forwarded again after a crash or a rebalance: a duplicate, not judged a second time.

The changelog of the bank table holds one record per order, `o:<shard>:<order_id>` (`Saved`: the
order's state, whose `updated_us` makes the restored clock exact, and the ids of its applied
events), one per rejection counted, `r:<shard>:<rejection_id as 16 hex digits>` (its reason), so the
same bad input is not counted nor dead-lettered again after a restart, and one per shard,
`s:<shard>` (the counters, the last lanes offset applied and the last input offset judged from each
input partition), written after the others: a crash in between leaves the frame to be redelivered
(its events are duplicates for the orders already written), never skipped. Keys carry the shard so a
worker can restore each partition it is given. A restored bank knows the ids its applied events
took, not those of events it refused: the ingest, which keeps every id of its input partitions,
marks the entries whose id is taken.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from orderbank.engine.stream.frames import Entry, Frame
from orderbank.projections.bank import BankSettings, OrderBank, Verdict, rejection_id
from orderbank.projections.codec import Reason, Rejection, decode_batch
from orderbank.projections.orders import Order
from orderbank.projections.restore import restore


def order_key(shard: int, order_id: str) -> bytes:
    return f"o:{shard}:{order_id}".encode()


def meta_key(shard: int) -> bytes:
    return f"s:{shard}".encode()


def rejection_key(shard: int, counted: int) -> bytes:
    return f"r:{shard}:{counted:016x}".encode()


def _key_rejection(key: bytes | None, order_id: str, event_id: str) -> Rejection:
    return Rejection(Reason.INVALID_FIELD, "key_is_order_id",
                     f"message key {key!r} is not the event's order_id {order_id!r}", "order_id", order_id, event_id)


class Saved(msgspec.Struct, array_like=True, gc=False):
    """An order's changelog record, `[order, events]`: its state, and what the changelog keeps beyond it."""

    order: Order
    events: str = ""
    """The ids of its applied events, 32 hex digits each, in the order they were applied."""

    def event_ids(self) -> Iterator[int]:
        events = self.events
        return (int(events[i:i + 32], 16) for i in range(0, len(events), 32))

    def applied(self) -> Iterator[tuple[int, str, int]]:
        """Its applied events as (event id, order_id, seq): an order's applied seqs run 1, 2, 3, ..."""
        order_id = self.order.order_id
        return ((event_id, order_id, seq) for seq, event_id in enumerate(self.event_ids(), start=1))


_SAVED = msgspec.json.Decoder(Saved)
_encode = msgspec.json.Encoder().encode


def saved_of(value: bytes) -> Saved:
    """An order's changelog record from its bytes."""
    return _SAVED.decode(value)


@dataclass
class Shard:
    """One lanes partition's bank, and what changed in it since the last flush."""

    partition: int
    bank: OrderBank
    offset: int = -1  # the last lanes-topic offset applied
    saved: dict[str, Saved] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # orders to write to the changelog
    counted: dict[int, str] = field(default_factory=dict)  # rejections counted since, to write: id -> reason
    inputs: dict[int, int] = field(default_factory=dict)  # input partition -> the last offset judged
    touched: set[str] = field(default_factory=set)  # orders with events since the last publish
    unpublished: bool = False  # events applied (or state restored) since the last full publish
    last_frame_at: float = field(default_factory=time.monotonic)

    def apply(self, frame: Frame, offset: int) -> list[tuple[Entry, Rejection]] | None:
        """Fold a frame into the bank; None if this offset was applied before (a redelivery)."""
        if offset <= self.offset:
            return None
        bank, saved, changed, inputs, rejected = self.bank, self.saved, self.changed, self.inputs, []
        applied = Verdict.APPLIED
        for entry, event in zip(frame.entries, decode_batch([e.value for e in frame.entries]), strict=True):
            if entry.offset <= inputs.get(entry.partition, -1):
                bank.repeated()
                continue
            inputs[entry.partition] = entry.offset
            if isinstance(event, Rejection) or entry.key != event.order_id.encode():
                if not isinstance(event, Rejection):
                    event = _key_rejection(entry.key, event.order_id, str(event.event_id))
                outcome = bank.reject(event, entry.value)
            else:
                outcome = bank.apply(event, entry.value, id_taken=entry.id_taken)
                if outcome is applied:
                    order_id = event.order_id
                    record = saved.get(order_id)
                    if record is None:
                        record = saved[order_id] = Saved(bank.orders[order_id])
                    record.events += event.event_id.hex
                    changed.add(order_id)
            if isinstance(outcome, Rejection):
                rejected.append((entry, outcome))
                self.counted[rejection_id(entry.value, outcome.reason)] = outcome.reason.value
        self.touched |= changed
        self.offset, self.unpublished, self.last_frame_at = offset, True, time.monotonic()
        return rejected

    @property
    def processed(self) -> int:
        """Input events this shard has seen: applied, duplicate or rejected."""
        return self.bank.applied + self.bank.duplicates + sum(self.bank.rejections.values())

    def changelog(self) -> list[tuple[bytes, bytes]]:
        """Records for the orders changed since the last call, then the shard record."""
        bank, saved, partition = self.bank, self.saved, self.partition
        out = [(order_key(partition, order_id), _encode(saved[order_id])) for order_id in self.changed]
        out += [(rejection_key(partition, counted), reason.encode()) for counted, reason in self.counted.items()]
        meta = {"offset": self.offset, "applied": bank.applied, "duplicates": bank.duplicates,
                "rejections": dict(bank.rejections), "inputs": {str(p): o for p, o in self.inputs.items()}}
        out.append((meta_key(partition), orjson.dumps(meta)))
        self.changed, self.counted = set(), {}
        return out

    def health(self) -> dict[str, Any]:
        return {"offset": self.offset, "processed": self.processed, **self.bank.stats(),
                "lanes": sorted(self.bank.queue.lanes), "published": not self.unpublished}


def restore_shard(partition: int, table: Iterable[tuple[bytes, bytes]], settings: BankSettings) -> Shard:
    """The shard as its changelog records left it (an empty shard when there are none)."""
    prefix, counted_prefix, meta_at = order_key(partition, ""), rejection_key(partition, 0)[:-16], meta_key(partition)
    saved: dict[str, Saved] = {}
    counted: list[int] = []
    meta: dict[str, Any] = {"offset": -1, "applied": 0, "duplicates": 0, "rejections": {}}
    for key, value in table:
        if key.startswith(prefix):
            record = saved_of(value)
            saved[record.order.order_id] = record
        elif key.startswith(counted_prefix):
            counted.append(int(key[len(counted_prefix):], 16))
        elif key == meta_at:
            meta = orjson.loads(value)
    clock = max((record.order.updated_us for record in saved.values()), default=0)
    bank = restore((record.order for record in saved.values()), clock, settings,
                   (event for record in saved.values() for event in record.applied()), counted)
    bank.resume_counts(meta["applied"], meta["duplicates"], meta["rejections"])
    inputs = {int(p): o for p, o in meta.get("inputs", {}).items()}
    return Shard(partition, bank, meta["offset"], saved, inputs=inputs, unpublished=bool(saved))
