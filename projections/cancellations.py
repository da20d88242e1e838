"""Cancellation rates, rolling and by cohort, overall and by trim.

Definitions (times are event times; `now` is the fold's clock, the latest occurred_at seen):
- rolling window W days (7 and 28): rate = cancellations with cancelled_at in (now-W, now]
  divided by orders placed in (now-W, now]; None when none were placed. This is the flow
  figure a dashboard shows; it can exceed 1 when a quiet week follows a busy launch.
- cohort (ISO week of placed_at): share = orders of that week cancelled so far divided by
  orders placed that week; also how many of the cohort are delivered and still open.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from projections.orders import US_PER_DAY, Order

WINDOWS_DAYS = (7, 28)
ALL = "*"


@dataclass(slots=True)
class _Times:
    placed: SortedList = field(default_factory=SortedList)
    cancelled: SortedList = field(default_factory=SortedList)


def _count(times: SortedList, start: int, end: int) -> int:
    return int(times.bisect_right(end) - times.bisect_right(start))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


class CancellationProjection:
    def __init__(self) -> None:
        self.times: dict[str, _Times] = defaultdict(_Times)  # by trim, and ALL
        self.cohorts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def placed(self, order: Order) -> None:
        for trim in (ALL, order.trim):
            self.times[trim].placed.add(order.placed_us)
            self.cohorts[(order.cohort, trim)][0] += 1

    def cancelled(self, order: Order, cancelled_us: int) -> None:
        for trim in (ALL, order.trim):
            self.times[trim].cancelled.add(cancelled_us)
            self.cohorts[(order.cohort, trim)][1] += 1

    def delivered(self, order: Order) -> None:
        for trim in (ALL, order.trim):
            self.cohorts[(order.cohort, trim)][2] += 1

    def snapshot(self, now_us: int) -> dict[str, Any]:
        windows = []
        for days in WINDOWS_DAYS:
            start = now_us - days * US_PER_DAY
            for trim in sorted(self.times):
                t = self.times[trim]
                placed, cancelled = _count(t.placed, start, now_us), _count(t.cancelled, start, now_us)
                windows.append({"window_days": days, "trim": trim, "placed": placed,
                                "cancelled": cancelled, "rate": _ratio(cancelled, placed)})
        cohorts = [
            {"cohort": cohort, "trim": trim, "placed": placed, "cancelled": cancelled,
             "delivered": delivered, "open": placed - cancelled - delivered,
             "share_cancelled": _ratio(cancelled, placed)}
            for (cohort, trim), (placed, cancelled, delivered) in sorted(self.cohorts.items())
        ]
        overall = self.times[ALL] if ALL in self.times else _Times()
        return {"windows": windows, "cohorts": cohorts,
                "overall": {"placed": len(overall.placed), "cancelled": len(overall.cancelled),
                            "rate": _ratio(len(overall.cancelled), len(overall.placed))}}
