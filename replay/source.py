"""Where a replay reads its history from: anything that can hand over the log's raw lines, again.

A source is re-readable (`lines()` and `blocks()` start from the beginning each call) because the
loader may need a second, exact pass. It hands over the same log two ways: line by line (the
bank's fold reads that) and in blocks of whole lines (the columnar loader decodes a block at a
time). Lines are a log file's: no newline inside, no surrounding whitespace; a blank one is
empty, counted but not decoded, so the n-th line is line n of the file either way.
`FileSource` reads .jsonl and .jsonl.gz files; `LaunchSource` a synthetic launch as the synth makes it;
a Kafka topic read from its earliest offset is the other source the design plans for (it yields message
values, the same bytes a log file holds).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar, cast

import orjson

from orderbank.projections.errors import LogError
from orderbank.replay.logfile import BOM, open_log, read_lines
from orderbank.replay.synth import Scenario, generate

T = TypeVar("T")
BLOCK_BYTES = 4 << 20
"""About how much of the log one block holds (a few thousand events)."""


class LineSource(Protocol):
    @property
    def name(self) -> str: ...
    def lines(self) -> Iterator[bytes]: ...
    def blocks(self) -> Iterator[memoryview]:
        """The text of the log's lines, `BLOCK_BYTES` or so at a time, each block ending in a newline."""
        ...


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int: ...


def blocks_of(stream: Readable) -> Iterator[memoryview]:
    """A stream's text cut after a newline every `BLOCK_BYTES` or so (a longer line makes a longer
    block), handed over without a copy. Blocks are read into a few buffers in turn, each reused
    once nothing holds a view of it any more (fresh memory costs a page fault per 4 kB)."""
    buffers = _Buffers()
    rest = b""
    while True:
        full = len(rest) + BLOCK_BYTES
        buffer = buffers.free(full)
        buffer[: len(rest)] = rest
        size = len(rest)
        while size < full and (got := stream.readinto(memoryview(buffer)[size:full])):
            size += got
        if size == len(rest):  # the end of the stream
            if rest:
                yield memoryview(rest + b"\n")
            return
        end = buffer.rfind(b"\n", 0, size) + 1
        rest = bytes(buffer[end:size])
        if end:
            yield memoryview(buffer)[:end]


class _Buffers:
    """Buffers to read blocks into, reused when free: a view held on a bytearray stops it changing
    size, so one that can change size is held by nobody."""

    KEPT = 8

    def __init__(self) -> None:
        self.kept: list[bytearray] = []

    def free(self, size: int) -> bytearray:
        """A buffer of at least `size` bytes that nothing holds."""
        for buffer in self.kept:
            if len(buffer) >= size and _unheld(buffer):
                return buffer
        buffer = bytearray(size + (1 << 16))  # slack for the part line each block carries to the next
        if len(self.kept) < self.KEPT:
            self.kept.append(buffer)
        return buffer


def _unheld(buffer: bytearray) -> bool:
    try:
        last = buffer.pop()
    except BufferError:
        return False
    buffer.append(last)
    return True


def ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """`items`, produced by a thread of their own up to `depth` ahead: what producing them does
    without the GIL (reading a file, inflating gzip, numpy) overlaps the caller's work. Stopping
    early (an exception, Ctrl-C) stops the thread."""
    handed: queue.Queue[tuple[bool, T | BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def hand(item: tuple[bool, T | BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand((True, item)):
                    return
            hand((False, None))
        except BaseException as exc:  # handed to the caller, raised there
            hand((False, exc))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, item = handed.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield cast(T, item)
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class FileSource:
    """A JSON-lines event log on disk, gzip-compressed when its name ends in .gz."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def lines(self) -> Iterator[bytes]:
        return read_lines(self.path)

    def blocks(self) -> Iterator[memoryview]:
        with open_log(self.path) as stream:
            blocks = blocks_of(stream)
            first = next(blocks, None)
            if first is None:
                return
            yield first[len(BOM):] if first[:len(BOM)] == BOM else first  # as read_lines drops it
            yield from blocks


@dataclass(frozen=True)
class MemorySource:
    """Lines held in memory (tests, and logs built on the fly); an empty one is a blank line."""

    data: tuple[bytes, ...]
    name: str = "memory"

    def __post_init__(self) -> None:
        for number, line in enumerate(self.data, start=1):
            if line != line.strip() or b"\n" in line:
                raise LogError(f"line {number} has surrounding whitespace or holds a newline")

    def lines(self) -> Iterator[bytes]:
        return iter(self.data)

    def blocks(self) -> Iterator[memoryview]:
        return blocks_of(io.BytesIO(b"".join(line + b"\n" for line in self.data)))


@dataclass(frozen=True)
class LaunchSource:
    """A synthetic launch's log, the lines `orderbank synth` would write, made as they are read: no file, and
    not every line held. (An orjson line kept is a kilobyte or more of the C heap, whatever its length: the
    lines of a 300,000-order launch held at once took 6.7 GB, where the synth itself holds 1.3 GB.)"""

    scenario: Scenario
    seed: int

    @property
    def name(self) -> str:
        return f"{self.scenario.name} launch, seed {self.seed}"

    def lines(self) -> Iterator[bytes]:
        return (orjson.dumps(doc) for doc in generate(self.scenario, self.seed))

    def blocks(self) -> Iterator[memoryview]:
        block = bytearray()
        for line in self.lines():
            block += line
            block += b"\n"
            if len(block) >= BLOCK_BYTES:
                yield memoryview(bytes(block))
                block.clear()
        if block:
            yield memoryview(bytes(block))
