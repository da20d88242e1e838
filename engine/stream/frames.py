"""Frames: many input messages packed into one lanes-topic message, bytes untouched.

Faust pays its per-message cost once per Kafka message, so the ingest stage packs the events of
one shard into a frame and the shard agent unpacks it. Each entry keeps what the dead-letter topic
needs: the source partition and offset, the original key and the original value bytes; and what the
ingest learnt of it: whether its event id was taken by another event, and whether its value decoded
on the fast path (two more items, present when either is true).
Layout: b"OBF2", then MessagePack (msgspec, one C call each way) of
[topic, [[partition, offset, key or nil, value(, id_taken, checked)], ...]].
"""

from __future__ import annotations

from typing import Any

import msgspec

from orderbank.projections.errors import OrderbankError

MAGIC = b"OBF2"
ENTRY_OVERHEAD = 32
"""Most MessagePack bytes an entry takes beyond its key and value (array header, two ints, two lengths)."""


class FrameError(OrderbankError, ValueError):
    """Bytes on the lanes topic that are not a frame this code wrote."""


class Entry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One input message: where it came from and its original key and value."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    id_taken: bool = False
    """Its event id was taken by another event (orderbank.projections.bank.EventIds), as the ingest,
    which sees every event of an input partition, found: its shard's bank may never have seen that one."""
    checked: bool = False
    """Its value decoded on the fast path in the ingest (orderbank.projections.codec.fast_path): the shard reads it
    with `decode_checked`, without checking it again."""


class Frame(msgspec.Struct, array_like=True, frozen=True, gc=False):
    topic: str
    entries: list[Entry]


_DECODER = msgspec.msgpack.Decoder(Frame)
_ENCODER = msgspec.msgpack.Encoder()


class FrameBuilder:
    """Accumulates entries for one frame; `size` (an upper bound of its bytes) tells the caller when to cut."""

    def __init__(self, topic: str) -> None:
        self._topic = topic
        self._entries: list[tuple[Any, ...]] = []
        self.count = 0
        self.size = len(MAGIC) + ENTRY_OVERHEAD + len(topic.encode())

    def add(self, partition: int, offset: int, key: bytes | None, value: bytes, id_taken: bool = False,
            checked: bool = False) -> None:
        self._entries.append((partition, offset, key, value, id_taken, checked) if id_taken or checked
                             else (partition, offset, key, value))
        self.count += 1
        self.size += ENTRY_OVERHEAD + len(value) + (len(key) if key is not None else 0)

    def build(self) -> bytes:
        frame: tuple[Any, ...] = (self._topic, self._entries)
        return MAGIC + _ENCODER.encode(frame)


def unpack(raw: bytes) -> Frame:
    """The entries of a frame, in the order they were added."""
    if raw[:4] != MAGIC:
        raise FrameError("not an orderbank frame (bad magic)")
    try:
        return _DECODER.decode(memoryview(raw)[4:])
    except msgspec.DecodeError as exc:
        raise FrameError(f"truncated or corrupt frame: {exc}") from None
