"""Log files as users hand them over: cut short, not gzip at all, edited with blank lines or a byte order mark."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

from orderbank.replay.logfile import write_docs
from orderbank.replay.synth import generate, preset


def launch(path: Path, orders: int = 300, seed: int = 3) -> int:
    """A small launch written to `path` (gzip-compressed if its name ends in .gz); how many events."""
    return write_docs(path, generate(preset("small", orders), seed))


def whole_lines_in(packed: bytes) -> int:
    """How many whole lines zlib inflates from the start of `packed` (gzip data, maybe cut short)."""
    return zlib.decompressobj(wbits=31).decompress(packed).count(b"\n")


def truncated(path: Path, orders: int = 300, keep: float = 2 / 3) -> int:
    """A launch's .gz at `path` cut after `keep` of its bytes; how many whole lines it still holds."""
    launch(path, orders)
    packed = path.read_bytes()
    path.write_bytes(packed[:int(len(packed) * keep)])
    return whole_lines_in(path.read_bytes())


def noise(path: Path, size: int = 5000) -> None:
    """Random bytes at `path` (a .gz that is not gzip data)."""
    path.write_bytes(random.Random(1).randbytes(size))
