"""Where a replay reads its history from: anything that can hand over the log's raw lines, again.

A source is re-readable (`lines()` starts from the beginning each call) because the loader may
need a second, exact pass. `FileSource` reads .jsonl and .jsonl.gz files; a Kafka topic read from
its earliest offset is the other source the design plans for (it yields message values, the
same bytes a log file holds).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine.logfile import read_lines


class LineSource(Protocol):
    @property
    def name(self) -> str: ...
    def lines(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class FileSource:
    """A JSON-lines event log on disk, gzip-compressed when its name ends in .gz."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def lines(self) -> Iterator[bytes]:
        return read_lines(self.path)


@dataclass(frozen=True)
class MemorySource:
    """Lines held in memory (tests, and logs built on the fly)."""

    data: tuple[bytes, ...]
    name: str = "memory"

    def lines(self) -> Iterator[bytes]:
        return iter(self.data)
