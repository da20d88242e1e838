"""ISO 8601 UTC timestamps to integer microseconds, a whole column at a time.

The log writer (`orderbank.projections.orders.iso`) writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or
`YYYY-MM-DDTHH:MM:SSZ` on a whole second. `parse` reads a column of such texts with numpy, a character
place at a time: the separators and digits are checked, the fields read and their ranges checked, and
the microseconds since the epoch computed from the fields (cheaper than numpy's datetime64 parser, which
also crashed on some bad values deep in an array). It says which rows passed rather than raising: the
loader sends the others through the exact (pydantic) decoder.
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
    places = np.ascontiguousarray(chars.T)  # a row per character place: each field's digits side by side
    cells = places - np.uint8(ord("0")) <= 9
    cells[_SEPARATOR_AT] = places[_SEPARATOR_AT] == _SEPARATORS[:, None]
    ok = np.ones(len(chars), dtype=bool) if cells.all() else np.all(cells, axis=0)
    digits = places.astype(np.int64) - ord("0")  # wide enough for any byte in any place

    def number(start: int, width: int) -> I64:
        value: I64 = digits[start]
        for at in range(start + 1, start + width):
            value = value * 10 + digits[at]
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second, micro = number(11, 2), number(14, 2), number(17, 2), number(20, 6)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)
           & (hour <= 23) & (minute <= 59) & (second <= 59))
    # Days since 1970-01-01 in the proleptic Gregorian calendar, counted from 1 March of year 0 so that
    # the leap day ends a year (H. Hinnant's days_from_civil), as numpy's datetime64 counts them.
    march_year = year - (month <= 2)
    era, year_of_era = np.divmod(march_year, 400)
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146_097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719_468
    return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micro, ok
