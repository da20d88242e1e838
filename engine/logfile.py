"""Event logs on disk: JSON lines, gzip-compressed when the name ends in .gz."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import orjson


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes identical across runs (determinism).
        return cast(IO[bytes], gzip.GzipFile(path, mode, compresslevel=6, mtime=0))
    return path.open(mode)


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
