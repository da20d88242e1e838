"""ISO 8601 UTC timestamps to integer microseconds, a whole column at a time.

The log writer (`projections.orders.iso`) writes `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or
`YYYY-MM-DDTHH:MM:SSZ` on a whole second; the columnar loader keeps only strings of those two
shapes on its fast path and parses them here: the
separators and digits are checked with numpy, the fields by numpy's datetime64 parser (which
rejects a month, day, hour, minute or second out of range). A column that fails raises
`NotCanonical`, and the loader falls back to the exact (pydantic) decoder rather than guess.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CANONICAL_LENGTH = 27
"""len('2025-06-26T14:00:00.017130Z')"""
WHOLE_SECOND_LENGTH = 20
"""len('2025-06-26T14:00:00Z')"""

_SEPARATOR_AT = np.array([4, 7, 10, 13, 16, 19, 26])
_SEPARATORS = np.frombuffer(b"--T::.Z", dtype=np.uint8)
_DIGIT_AT = np.array([i for i in range(CANONICAL_LENGTH) if i not in set(_SEPARATOR_AT.tolist())])


class NotCanonical(ValueError):
    """A value the fast path kept that is not in its canonical form after all."""


def fixed_width(values: list[str], width: int, name: str) -> npt.NDArray[np.uint8]:
    """ASCII strings of one width as a (len(values), width) byte matrix; `NotCanonical` otherwise."""
    try:
        raw = "".join(values).encode("ascii")
    except UnicodeEncodeError:
        raise NotCanonical(f"a {name} holds a non-ASCII character") from None
    if len(raw) != width * len(values):
        raise NotCanonical(f"a {name} is not {width} characters long")
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width)


def parse_canonical(values: list[str]) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch of canonical UTC timestamps; `NotCanonical` if any is not."""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    whole = lengths == WHOLE_SECOND_LENGTH
    if not whole.any():
        return _parse_fixed(values)
    out = np.empty(len(values), dtype=np.int64)
    rows = np.flatnonzero(whole)
    out[rows] = _parse_fixed([values[i][:-1] + ".000000Z" for i in rows.tolist()])
    rows = np.flatnonzero(~whole)
    out[rows] = _parse_fixed([values[i] for i in rows.tolist()])
    return out


def _parse_fixed(values: list[str]) -> npt.NDArray[np.int64]:
    if not values:
        return np.zeros(0, dtype=np.int64)
    chars = fixed_width(values, CANONICAL_LENGTH, "timestamp")
    if not np.array_equal(chars[:, _SEPARATOR_AT], np.broadcast_to(_SEPARATORS, (len(values), 7))):
        raise NotCanonical("a timestamp is not shaped YYYY-MM-DDTHH:MM:SS.ffffffZ")
    if not np.all(chars[:, _DIGIT_AT] - np.uint8(ord("0")) <= 9):
        raise NotCanonical("a timestamp has a non-digit where a digit belongs")
    naive = np.ascontiguousarray(chars[:, :-1]).view(f"S{CANONICAL_LENGTH - 1}").ravel()
    try:
        return naive.astype("datetime64[us]").astype(np.int64)
    except ValueError as exc:
        raise NotCanonical(f"a timestamp is out of range: {exc}") from None
