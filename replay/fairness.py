"""Who was served out of turn: overtakes between the order sequence and the service sequence.

Within a lane, order i is overtaken by order j when i was placed first (lower ordinal: rank by
placed_at, then order_id) and j got a car while i was still waiting (i was allocated later,
cancelled later, or never left). Counting such pairs is a dominance count, done exactly with
numpy one bit of the values' ranks at a time (a few passes: the values are days). Kendall's tau
compares the order and service sequences of the orders that were served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from orderbank.replay.orderlog import I64, Flags


@dataclass(frozen=True)
class Fairness:
    orders: int
    served: int
    overtakes: int
    """Pairs (i, j): i placed first, j got a car while i still waited."""
    largest_overtake: int
    """The most places in the order sequence by which one order jumped a waiting one."""
    overtaken: int
    """Orders overtaken at least once."""
    served_inversions: int
    """Pairs of served orders served in the reverse of their order sequence."""

    @property
    def kendall_tau(self) -> float | None:
        """Rank correlation of order and service sequence among served orders: 1 = first come first served."""
        pairs = self.served * (self.served - 1) // 2
        return 1.0 - 2.0 * self.served_inversions / pairs if pairs else None

    @property
    def share_overtaken(self) -> float | None:
        return self.overtaken / self.orders if self.orders else None

    def __add__(self, other: Fairness) -> Fairness:
        return Fairness(self.orders + other.orders, self.served + other.served, self.overtakes + other.overtakes,
                        max(self.largest_overtake, other.largest_overtake), self.overtaken + other.overtaken,
                        self.served_inversions + other.served_inversions)


NOBODY = Fairness(0, 0, 0, 0, 0, 0)


def count_inversions(values: I64, counted: Flags | None = None) -> int:
    """Pairs i < j with values[i] > values[j] (and counted[j], when given). Ties are not inversions."""
    n = len(values)
    if n < 2:
        return 0
    codes = _small_codes(values)
    asked = np.ones(n, dtype=bool) if counted is None else counted
    total = 0
    # values[i] > values[j] where their codes first differ, from the top, at a bit that i has and j has not:
    # one pass per bit counts, among the orders sharing the codes' higher bits, the pairs so split.
    for bit in reversed(range(int(codes.max()).bit_length())):
        group = codes >> (bit + 1)
        sequence = np.argsort(group, kind="stable")  # by group, in index order within each
        ones = ((codes[sequence] >> bit) & 1).astype(np.int64)
        sizes = np.bincount(group)
        before = np.cumsum(ones) - ones  # ones earlier in the sequence...
        before -= np.repeat(before[np.cumsum(sizes) - sizes], sizes)  # ...and in the same group
        total += int(before[(ones == 0) & asked[sequence]].sum())
    return total


def _small_codes(values: I64) -> npt.NDArray[np.int16] | I64:
    """Integers in the values' order (equal values, equal codes), as few bits as cheaply found: days with a
    far-off "never" take 16 bits without a sort, which numpy's stable argsort then sorts by radix."""
    top = values.max()
    below = values != top
    low, high = int(values.min()), int(values.max(where=below, initial=values.min()))
    if high - low < np.iinfo(np.int16).max:
        return np.where(below, values - low, high - low + 1).astype(np.int16)
    distinct, codes = np.unique(values, return_inverse=True)
    dense: I64 = codes.reshape(len(values)).astype(np.int64)
    return dense.astype(np.int16) if len(distinct) <= np.iinfo(np.int16).max else dense


def fairness(exit_us: I64, served: Flags) -> Fairness:
    """Overtakes in one lane. Both arrays are in order sequence (by ordinal); `exit_us` is when
    each order stopped waiting (allocated, cancelled, or int64 max if it never did), `served`
    marks the allocated ones."""
    n = len(exit_us)
    if n == 0:
        return NOBODY
    never = np.iinfo(np.int64).max
    served_at = np.where(served, exit_us, never)
    soonest_later = np.concatenate((np.minimum.accumulate(served_at[::-1])[::-1][1:], [never]))
    overtaken = int((soonest_later < exit_us).sum())
    longest_wait_before = np.maximum.accumulate(exit_us)
    first_still_waiting = np.searchsorted(longest_wait_before, exit_us[served], side="right")
    jumps = np.flatnonzero(served) - first_still_waiting
    return Fairness(
        orders=n, served=int(served.sum()), overtakes=count_inversions(exit_us, served),
        largest_overtake=int(max(jumps.max(initial=0), 0)), overtaken=overtaken,
        served_inversions=count_inversions(exit_us[served]),
    )
