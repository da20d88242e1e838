"""Cancellation rates, rolling and by cohort, overall and by trim.

Definitions (times are event times; `now` is the fold's clock, the latest occurred_at seen):
- rolling window W days (7 and 28): rate = cancellations with cancelled_at in (now-W, now]
  divided by orders placed in (now-W, now]; None when none were placed. This is the flow
  figure a dashboard shows; it can exceed 1 when a quiet week follows a busy launch.
- cohort (ISO week of placed_at): share = orders of that week cancelled so far divided by
  orders placed that week; also how many of the cohort are delivered and still open.
Every figure is given per trim and for all trims together (trim `*`); the reducer keeps counts
per trim only and adds them up when asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from orderbank.projections.orders import US_PER_DAY, Order

WINDOWS_DAYS = (7, 28)
ALL = "*"


@dataclass(slots=True)
class _Times:
    placed: SortedList = field(default_factory=SortedList)
    cancelled: SortedList = field(default_factory=SortedList)

    def window(self, start: int, end: int) -> tuple[int, int]:
        """Orders placed and cancelled in (start, end]."""
        return _count(self.placed, start, end), _count(self.cancelled, start, end)


def _count(times: SortedList, start: int, end: int) -> int:
    return int(times.bisect_right(end) - times.bisect_right(start))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


class CancellationProjection:
    def __init__(self) -> None:
        self.times: dict[str, _Times] = defaultdict(_Times)  # by trim
        self.cohorts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # by (cohort, trim)

    def placed(self, order: Order) -> None:
        self.times[order.trim].placed.add(order.placed_us)
        self.cohorts[(order.cohort, order.trim)][0] += 1

    def cancelled(self, order: Order, cancelled_us: int) -> None:
        self.times[order.trim].cancelled.add(cancelled_us)
        self.cohorts[(order.cohort, order.trim)][1] += 1

    def delivered(self, order: Order) -> None:
        self.cohorts[(order.cohort, order.trim)][2] += 1

    def window(self, trim: str, start: int, end: int) -> tuple[int, int]:
        """Orders of a trim (or ALL) placed and cancelled in (start, end]."""
        trims = self.times.values() if trim == ALL else [self.times[trim]] if trim in self.times else []
        counts = [t.window(start, end) for t in trims]
        return sum(placed for placed, _ in counts), sum(cancelled for _, cancelled in counts)

    def totals(self) -> tuple[int, int]:
        """Orders placed and cancelled, ever."""
        return (sum(len(t.placed) for t in self.times.values()),
                sum(len(t.cancelled) for t in self.times.values()))

    def snapshot(self, now_us: int) -> dict[str, Any]:
        trims = sorted([ALL, *self.times]) if self.times else []
        windows = {(days, trim): self.window(trim, now_us - days * US_PER_DAY, now_us)
                   for days in WINDOWS_DAYS for trim in trims}
        cohorts: dict[tuple[str, str], list[int]] = {}
        for (cohort, trim), counts in self.cohorts.items():
            cohorts[(cohort, trim)] = counts
            every = cohorts.setdefault((cohort, ALL), [0, 0, 0])
            for i, count in enumerate(counts):
                every[i] += count
        return snapshot_of(windows, cohorts, self.totals())


def snapshot_of(windows: Mapping[tuple[int, str], Sequence[int]], cohorts: Mapping[tuple[str, str], Sequence[int]],
                overall: Sequence[int]) -> dict[str, Any]:
    """The cancellation snapshot from its counts, rates worked out here: orders placed and cancelled
    by (window days, trim), placed, cancelled and delivered by (cohort, trim), placed and cancelled overall."""
    return {
        "windows": [{"window_days": days, "trim": trim, "placed": placed, "cancelled": cancelled,
                     "rate": _ratio(cancelled, placed)}
                    for (days, trim), (placed, cancelled) in sorted(windows.items())],
        "cohorts": [{"cohort": cohort, "trim": trim, "placed": placed, "cancelled": cancelled,
                     "delivered": delivered, "open": placed - cancelled - delivered,
                     "share_cancelled": _ratio(cancelled, placed)}
                    for (cohort, trim), (placed, cancelled, delivered) in sorted(cohorts.items())],
        "overall": {"placed": overall[0], "cancelled": overall[1], "rate": _ratio(overall[1], overall[0])},
    }
