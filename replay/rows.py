"""The decoded events of a log as columns (`Rows`): one row per event, in log order.

This is what the loader holds between decoding and folding: numpy columns that every event type
fills alike (`minor` is the list price, amount or refund; `when` is placed_at, due_at or
delivered_at), plus the columns of one type (the rest of its rows hold 0, or -1 for a code).
Strings are codes into `Names`; order ids are zero-padded bytes read as 64-bit words, so orders
are grouped by sorting numbers, not Python strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from orderbank.replay.orderlog import I32, I64
from orderbank.replay.shapes import NO_MONEY

I8 = npt.NDArray[np.int8]
I16 = npt.NDArray[np.int16]
Words = npt.NDArray[np.uint64]
_Code = TypeVar("_Code", np.int16, np.int32)
_MIX = np.uint64(0x9E3779B97F4A7C15)


class Codes(dict[str, int]):
    """Codes 0, 1, ... for strings in order of first sight: a new string gets the next code when
    looked up, so a whole column is coded in one pass (`of`)."""

    def __init__(self, *placeholders: str) -> None:
        super().__init__(dict.fromkeys(placeholders, -1))
        self.names: list[str] = []

    def __missing__(self, name: str) -> int:
        self[name] = code = len(self.names)
        self.names.append(name)
        return code

    def of(self, values: Iterable[str], count: int, dtype: type[_Code]) -> npt.NDArray[_Code]:
        return np.fromiter(map(self.__getitem__, values), dtype, count)


class Names:
    """The few distinct strings of a log, coded: currencies (-1: an event without money), models, trims."""

    def __init__(self) -> None:
        self.currency, self.model, self.trim = Codes(NO_MONEY.currency), Codes(), Codes()


@dataclass(frozen=True)
class Rows:
    """Decoded events, one row each, in log order."""

    line: I64
    """The event's line number in the log (1 = first non-blank line)."""
    kind: I8
    """orderbank.replay.shapes.PLACED, DEMANDED, ..."""
    event: Words
    """A digest of the event id: rows with one id have one digest (two ids may share one, rarely)."""
    order: Words
    """The order id's bytes, zero-padded to whole 64-bit words (equal rows = the same order)."""
    seq: I64
    at: I64
    """occurred_at, microseconds since the epoch."""
    when: I64
    """placed_at, due_at or delivered_at; NEVER for the other types."""
    minor: I64
    """The list price, amount or refund in minor units; 0 for the types without money."""
    currency: I16
    """Code of `minor`'s currency in Names; -1 for the types without money."""
    deposit: I64
    deposit_currency: I16
    trim_rank: I16
    model: I32
    trim: I32
    detail: I8
    """PaymentDemanded: index of its purpose; OrderCancelled: index of its reason (CANCEL_REASONS)."""

    def __len__(self) -> int:
        return len(self.line)

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        """The rows of one or more blocks, in order (order ids padded to the widest block's). Empties
        `parts` and lets each block's column go once copied, so the log is held about once, not twice."""
        width = max(part.order.shape[1] for part in parts)
        pending = {f.name: [getattr(part, f.name) for part in parts] for f in fields(Rows)}
        parts.clear()
        pending["order"] = [_widen(words, width) for words in pending["order"]]
        columns = {name: np.concatenate(pending.pop(name)) for name in list(pending)}
        return Rows(**columns)


def _widen(words: Words, width: int) -> Words:
    """Order ids as `width` words (more zero padding)."""
    if words.shape[1] == width:
        return words
    out = np.zeros((len(words), width), dtype=np.uint64)
    out[:, : words.shape[1]] = words
    return out


def hash_rows(columns: Iterable[Words], count: int) -> Words:
    """A 64-bit hash of each of `count` rows of words, given column by column: equal rows, equal hashes."""
    mixed = np.zeros(count, dtype=np.uint64)
    for column in columns:  # wrapping around: a hash, not a sum
        np.multiply(np.bitwise_xor(mixed, column, out=mixed), _MIX, out=mixed)
    return mixed
