"""Event logs on disk: JSON lines, gzip-compressed when the name ends in .gz."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import orjson


@contextmanager
def _open(path: Path, mode: str) -> Iterator[IO[bytes]]:
    with path.open(mode) as raw:
        if path.suffix != ".gz":
            yield raw
            return
        # No file name and mtime=0 in the header, so the same events give the same bytes.
        with gzip.GzipFile(filename="", mode=mode, fileobj=raw, compresslevel=6, mtime=0) as packed:
            yield cast(IO[bytes], packed)


def read_lines(path: Path) -> Iterator[bytes]:
    """Each non-blank line of the log, as raw bytes (the decoder's input)."""
    with _open(path, "rb") as handle:
        for line in handle:
            line = line.strip()
            if line:
                yield line


def write_docs(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Write JSON documents one per line; returns how many."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "wb") as handle:
        for doc in docs:
            handle.write(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count
