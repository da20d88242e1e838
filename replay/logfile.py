"""Event logs on disk: JSON lines, gzip-compressed when the name ends in .gz.

Reading a log hands over every physical line, so a line's place in what is read is its number in
the file (a blank line is there, empty: it is counted, not decoded). A UTF-8 byte order mark
before the first line is not part of it. Compressed data that is cut short or corrupt fails with
one `LogError` naming the file and the last line read whole, whichever way the file is read.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from io import BufferedIOBase
from pathlib import Path
from typing import Any, cast

import orjson

from orderbank.projections.errors import LogError

BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte order mark some editors write at the start of a file."""
_CORRUPT = (EOFError, gzip.BadGzipFile, zlib.error)
"""What reading gzip raises on data cut short (EOFError) or not gzip's (bad header, deflate data, checksum)."""


@contextmanager
def _open(path: Path, mode: str) -> Iterator[BufferedIOBase]:
    with path.open(mode) as raw:
        if path.suffix != ".gz":
            yield cast(BufferedIOBase, raw)
            return
        # No file name and mtime=0 in the header, so the same events give the same bytes.
        with gzip.GzipFile(filename="", mode=mode, fileobj=raw, compresslevel=6, mtime=0) as packed:
            yield packed


@contextmanager
def open_log(path: Path) -> Iterator[BufferedIOBase]:
    """The log's text for reading, inflated if compressed; a read that finds the compressed data cut
    short or corrupt raises `LogError` (the first line may still begin with a byte order mark).

    gzip says "cut short" with an EOFError, which click takes for the end of a prompt's input: the
    command would end in a bare "Aborted." instead of saying which file, and where."""
    with _open(path, "rb") as handle:
        try:
            yield handle
        except _CORRUPT as exc:
            raise _unreadable(path, exc) from exc


def read_lines(path: Path) -> Iterator[bytes]:
    """Each line of the log, stripped of surrounding whitespace, as raw bytes (the decoder's input):
    line n of the file is the n-th, a blank one is empty."""
    with open_log(path) as handle:
        for number, line in enumerate(handle, start=1):
            yield (line.removeprefix(BOM) if number == 1 else line).strip()


def _unreadable(path: Path, exc: BaseException) -> LogError:
    whole = _lines_before_failure(path)
    where = f"after line {whole:,}" if whole else "before its first line"
    if isinstance(exc, EOFError):
        return LogError(f"{path}: the compressed data ends early {where} (truncated file?)")
    return LogError(f"{path}: the compressed data is corrupt {where} ({exc})")


def no_events(name: object, rejected: int) -> LogError:
    """A log from which not one event could be taken: most likely not an event log at all."""
    why = f" ({rejected:,} line{'s' if rejected > 1 else ''} rejected)" if rejected else ""
    return LogError(f"{name}: not one event in it could be taken{why}")


def _lines_before_failure(path: Path) -> int:
    """How many whole lines the file gives before its data fails, read again from the start: only a
    failed read asks, so reading a log never pays for counting its lines."""
    count = 0
    with suppress(*_CORRUPT), _open(path, "rb") as handle:
        for _ in handle:
            count += 1
    return count


def write_docs(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Write JSON documents one per line; returns how many."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "wb") as handle:
        for doc in docs:
            handle.write(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count
