"""Many short strings as one byte array, so numpy can check and slice them a column at a time.

Each string is ASCII-encoded (a non-ASCII character becomes `?`, one byte for one character, so
lengths hold) and followed by a NUL. When no string holds a NUL itself, the NULs give every
string's length without a Python-level pass over them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Joined:
    text: U8
    """The strings' bytes, each followed by a NUL."""
    lengths: npt.NDArray[np.int64] | None
    """Each string's length; None if some string holds a NUL (then only `len` can tell)."""

    @staticmethod
    def of(values: Iterable[str], count: int) -> Joined:
        """`count` strings, joined."""
        if not count:
            return Joined(np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64))
        text = np.frombuffer(("\0".join(values) + "\0").encode("ascii", "replace"), dtype=np.uint8)
        if len(text) % count == 0:  # maybe all of one length: cheaper to check than to find
            width = len(text) // count
            if np.all(text[width - 1::width] == 0) and np.count_nonzero(text == 0) == count:
                return Joined(text, np.full(count, width - 1, dtype=np.int64))
        ends = np.flatnonzero(text == 0)
        if len(ends) != count:
            return Joined(text, None)
        return Joined(text, np.diff(ends, prepend=-1) - 1)

    def rows(self, width: int) -> U8:
        """The strings as a (count, width) matrix, when all are `width` long."""
        return self.text.reshape(-1, width + 1)[:, :width]
