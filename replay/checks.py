"""What the loader checks with numpy, a column of an event field's text at a time, on every path.

The events' shapes (`orderbank.replay.shapes`) leave some of the models' rules open: event ids are UUIDs, order
ids match the OrderId pattern, VINs the VIN alphabet, currencies are three capitals. Both readers of a block
(msgspec's Structs in `orderbank.replay.decode`, the compiled reader in `orderbank.replay.native`) hand these
fields over as byte matrices, a row per event, and a row that fails goes to the exact (pydantic) path.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from orderbank.replay.orderlog import I64, Flags
from orderbank.replay.rows import Words, hash_rows

Chars = npt.NDArray[np.uint8]
EVENT_ID_CHARS, VIN_CHARS = 36, 17


def _alphabet(chars: str) -> npt.NDArray[np.bool_]:
    table = np.zeros(256, dtype=bool)
    table[list(chars.encode())] = True
    return table


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ORDER_FIRST, _ORDER_CHARS = _alphabet(_ALNUM), _alphabet(_ALNUM + "_.:-")
_VIN = _alphabet("ABCDEFGHJKLMNPRSTUVWXYZ0123456789")
_UUID_DASHES = np.array([8, 13, 18, 23])


def rows_ok(cells: Flags) -> Flags:
    """Rows whose every cell is True (a whole block usually is: one check, not one per row)."""
    return np.ones(len(cells), dtype=bool) if cells.all() else np.all(cells, axis=1)


def is_currency(name: str) -> bool:
    """Three capital letters (the pattern of orderbank.projections.events.Money.currency)."""
    return len(name) == 3 and name.isascii() and name.isupper() and name.isalpha()


def as_rows(text: str, width: int) -> Chars:
    """Strings of `width` characters each (the shapes ensure it), joined, as a byte matrix; a non-ASCII
    character becomes `?`, which no check accepts."""
    raw = text.encode("ascii", "replace")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(raw) // width, width)


def vins_ok(chars: Chars) -> Flags:
    """Which rows of 17 characters are VINs (capitals but I, O, Q, and digits)."""
    return rows_ok(_VIN.take(chars))


def event_ids(chars: Chars) -> tuple[Words, Flags]:
    """A digest of each row of 36 characters (the same UUID, the same digest), and which are hyphenated
    UUIDs (the digest of any other is of no use)."""
    padded = np.zeros((len(chars), 40), dtype=np.uint8)  # whole 64-bit words
    lower = padded[:, :EVENT_ID_CHARS]
    np.bitwise_or(chars, 0x20, out=lower)  # hex letters in lower case; digits and dashes have that bit already
    cells = (chars - np.uint8(ord("0")) <= 9) | (lower - np.uint8(ord("a")) <= 5)  # hex, either case
    cells[:, _UUID_DASHES] = chars[:, _UUID_DASHES] == ord("-")
    return hash_rows(padded.view(np.uint64).T, len(chars)), rows_ok(cells)


def order_ids_ok(padded: Chars, lengths: I64) -> Flags:
    """Which zero-padded order ids (rows of `padded`, each `lengths` long) match the OrderId pattern."""
    allowed = _ORDER_CHARS.take(padded) | (np.arange(padded.shape[1]) >= lengths[:, None])
    return _ORDER_FIRST.take(padded[:, 0]) & rows_ok(allowed)
