"""Types of the compiled block reader (native/src/lib.rs); orderbank.replay.native is its one user."""

from typing import Any

TYPES: list[str]
CHANNELS: list[str]
PURPOSES: list[str]
REASONS: list[str]
TEXT_CHARS: int
MAX_TRIM_RANK: int

def read_block(text: memoryview | bytes, lines: int, schema_version: int,
               currency: str | None = None) -> dict[str, Any] | None: ...
