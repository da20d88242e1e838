"""ISO 8601 UTC timestamps to integer microseconds, a whole column at a time.

The log writer (`orderbank.projections.orders.iso`) writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or
`YYYY-MM-DDTHH:MM:SSZ` on a whole second. `parse` reads a column of such texts: the separators,
digits and the fields' ranges are checked with numpy, and the rows that pass are read by numpy's
datetime64 parser. It says which rows passed rather than raising: the loader sends the others
through the exact (pydantic) decoder.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from orderbank.replay.joined import Joined
from orderbank.replay.orderlog import I64, Flags

CANONICAL_LENGTH = 27
"""len('2025-06-26T14:00:00.017130Z')"""
WHOLE_SECOND_LENGTH = 20
"""len('2025-06-26T14:00:00Z')"""

Chars = npt.NDArray[np.uint8]
_SEPARATOR_AT = np.array([4, 7, 10, 13, 16, 19, 26])
_SEPARATORS = np.frombuffer(b"--T::.Z", dtype=np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int16)
_EPOCH = np.frombuffer(b"1970-01-01T00:00:00.000000", dtype=np.uint8)
_NOT_A_TIME = "?" * CANONICAL_LENGTH
_FRACTION = np.frombuffer(b".000000", dtype=np.uint8)


def as_chars(values: list[str]) -> Chars:
    """Timestamp texts of 20 to 27 characters (the shapes' `Time`) as a (len(values), 27) byte matrix:
    whole seconds padded to microseconds (`.000000` before their last character), any other length
    as a row `parse` rejects. A non-ASCII character becomes `?`, which `parse` rejects too."""
    joined = Joined.of(values, len(values))
    lengths = joined.lengths
    if lengths is None or np.any((lengths != WHOLE_SECOND_LENGTH) & (lengths != CANONICAL_LENGTH)):
        return as_chars([value if len(value) in (WHOLE_SECOND_LENGTH, CANONICAL_LENGTH) and "\0" not in value
                         else _NOT_A_TIME for value in values])
    short = lengths == WHOLE_SECOND_LENGTH
    if not short.any():
        return joined.rows(CANONICAL_LENGTH)
    last = (np.cumsum(lengths + 1) - 2)[short]  # each short one's last character, before its NUL
    text = np.insert(joined.text, np.repeat(last, len(_FRACTION)), np.tile(_FRACTION, len(last)))
    return Joined(text, None).rows(CANONICAL_LENGTH)


def parse(chars: Chars) -> tuple[I64, Flags]:
    """Microseconds since the epoch of each row, and whether the row is a canonical UTC timestamp
    of a real instant (where it is not, its microseconds are meaningless)."""
    cells = chars - np.uint8(ord("0")) <= 9
    cells[:, _SEPARATOR_AT] = chars[:, _SEPARATOR_AT] == _SEPARATORS
    ok = np.ones(len(chars), dtype=bool) if cells.all() else np.all(cells, axis=1)
    ok &= _real(chars)
    # Only real instants reach numpy's parser: on a bad one far into an array, numpy 2.4 can crash
    # (a segfault, not a ValueError).
    naive = np.ascontiguousarray(chars[:, :-1]) if ok.all() else np.where(ok[:, None], chars[:, :-1], _EPOCH)
    return naive.view(f"S{CANONICAL_LENGTH - 1}").ravel().astype("datetime64[us]").view(np.int64), ok


def _real(chars: Chars) -> Flags:
    """Rows whose fields are in range: year 1 to 9999, a month, a day of that month, 00:00:00 to
    23:59:59 (meaningless where the row is not all digits and separators)."""

    def number(start: int, width: int) -> npt.NDArray[np.int16]:
        value = np.zeros(len(chars), dtype=np.int16)
        for at in range(start, start + width):
            value = value * 10 + (chars[:, at] - np.uint8(ord("0")))
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    real: Flags = ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
                   & (number(11, 2) <= 23) & (number(14, 2) <= 59) & (number(17, 2) <= 59))
    return real
