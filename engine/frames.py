"""Frames: many input messages packed into one lanes-topic message, bytes untouched.

Faust pays its per-message cost once per Kafka message, so the ingest stage packs the events of
one shard into a frame and the shard agent unpacks it. Each entry keeps what the dead-letter topic
needs: the source partition and offset, the original key and the original value bytes.
Layout: b"OBF1", u16 topic length, topic, u32 count, then per entry
i32 partition, i64 offset, i32 key length (-1: no key), i32 value length, key, value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"OBF1"
_HEAD = struct.Struct(">HI")
_ENTRY = struct.Struct(">iqii")


class FrameError(ValueError):
    """Bytes on the lanes topic that are not a frame this code wrote."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One input message: where it came from and its original key and value."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Frame:
    topic: str
    entries: list[Entry]


class FrameBuilder:
    """Accumulates entries for one frame; `size` tells the caller when to cut."""

    def __init__(self, topic: str) -> None:
        self._topic = topic.encode()
        self._parts: list[bytes] = []
        self.count = 0
        self.size = len(MAGIC) + _HEAD.size + len(self._topic)

    def add(self, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        key_len = -1 if key is None else len(key)
        self._parts.append(_ENTRY.pack(partition, offset, key_len, len(value)))
        if key is not None:
            self._parts.append(key)
        self._parts.append(value)
        self.count += 1
        self.size += _ENTRY.size + max(key_len, 0) + len(value)

    def build(self) -> bytes:
        return b"".join([MAGIC, _HEAD.pack(len(self._topic), self.count), self._topic, *self._parts])


def unpack(raw: bytes) -> Frame:
    """The entries of a frame, in the order they were added."""
    if raw[:4] != MAGIC:
        raise FrameError("not an orderbank frame (bad magic)")
    try:
        topic_len, count = _HEAD.unpack_from(raw, 4)
        at = 4 + _HEAD.size
        topic = raw[at:at + topic_len].decode()
        at += topic_len
        entries = []
        for _ in range(count):
            partition, offset, key_len, value_len = _ENTRY.unpack_from(raw, at)
            at += _ENTRY.size
            key = None if key_len < 0 else raw[at:at + key_len]
            at += max(key_len, 0)
            entries.append(Entry(partition, offset, key, raw[at:at + value_len]))
            at += value_len
    except (struct.error, UnicodeDecodeError) as exc:
        raise FrameError(f"truncated or corrupt frame: {exc}") from None
    if at != len(raw):
        raise FrameError(f"frame has {len(raw) - at} trailing bytes")
    return Frame(topic, entries)
