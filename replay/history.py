"""The log as it happened: fold it with the live engine's reducer and sample the projections daily.

This is the CLI's fold of a log (`orderbank.projections.bank.decoded_lines`, each line applied by
`OrderBank.apply_decoded`), with the stream's reducer. At each midnight UTC the fold passes, the
cheap totals are read off the projections (never a full snapshot of every open order): open
orders per lane and the days to clear them at the lane's trailing throughput, the prepayment
pool, deliveries, cancellations and their rolling rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from orderbank.projections.bank import BankSettings, OrderBank, Verdict, decoded_lines
from orderbank.projections.cancellations import ALL
from orderbank.projections.codec import Rejection
from orderbank.projections.events import Event
from orderbank.projections.orders import US_PER_DAY, iso, micros
from orderbank.projections.pool import FIGURES
from orderbank.replay.source import LineSource

_HELD = FIGURES.index("held")
_REALISED = FIGURES.index("realised")
SAMPLED = ("backlog", "pool", "realised", "delivered", "cancelled", "placed", "cancel_rate_7d", "cancel_rate_28d",
           "clear_days")


class Watcher(Protocol):
    """What else a fold for people to look at keeps (orderbank.replay.audit)."""

    def midnight(self, bank: OrderBank, boundary_us: int) -> None: ...
    def applied(self, bank: OrderBank, event: Event) -> None: ...


@dataclass
class History:
    """One row per day: the projections at the end of that day (midnight UTC)."""

    days: list[str] = field(default_factory=list)
    rows: dict[str, list[float | None]] = field(default_factory=lambda: {name: [] for name in SAMPLED})
    lanes: dict[str, list[int]] = field(default_factory=dict)
    stats: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"days": self.days, **self.rows, "backlog_by_lane": self.lanes, "stats": self.stats}


def _rate(bank: OrderBank, days: int) -> float | None:
    placed, cancelled = bank.cancellations.window(ALL, bank.now_us - days * US_PER_DAY, bank.now_us)
    return cancelled / placed if placed else None


def sample(bank: OrderBank, history: History, boundary_us: int) -> None:
    """Append the bank's totals as of `boundary_us` (the midnight just passed)."""
    lanes = bank.queue.lanes
    backlog = sum(len(lane.open) for lane in lanes.values())
    delivered = sum(len(lane.deliveries) for lane in lanes.values())
    throughput = sum(bank.queue.throughput(name, bank.now_us) for name in lanes)
    placed, cancelled = bank.cancellations.totals()
    row: dict[str, float | None] = {
        "backlog": backlog,
        "pool": sum(sums[_HELD] for sums in bank.pool.buckets.values()) / 100,
        "realised": sum(sums[_REALISED] for sums in bank.pool.buckets.values()) / 100,
        "delivered": delivered,
        "cancelled": cancelled,
        "placed": placed,
        "cancel_rate_7d": _rate(bank, 7), "cancel_rate_28d": _rate(bank, 28),
        "clear_days": backlog / throughput if throughput else None,
    }
    history.days.append(iso(boundary_us - US_PER_DAY)[:10])
    for name, value in row.items():
        history.rows[name].append(value)
    for name, lane in lanes.items():
        column = history.lanes.setdefault(name, [0] * (len(history.days) - 1))
        column.append(len(lane.open))


def replay_history(source: LineSource, settings: BankSettings | None = None,
                   progress: Callable[[int], None] | None = None, watch: Watcher | None = None,
                   until_us: int | None = None) -> tuple[OrderBank, History]:
    """Fold the whole log (or its events up to the first after `until_us`); sample at every midnight the fold's
    clock passes, and at the end. A `watch`er sees the same midnights and every event the bank applied."""
    bank = OrderBank(settings)
    history = History()
    boundary = None
    for number, event in decoded_lines(source.lines()):
        if progress is not None and number % 65_536 == 0:
            progress(number)
        if isinstance(event, Rejection):
            bank.reject(event)
            continue
        at = micros(event.occurred_at)
        if until_us is not None and at > until_us:
            break
        if boundary is None:
            boundary = at - at % US_PER_DAY + US_PER_DAY
        while at >= boundary:  # the fold's clock passes midnight: sample the day that ended
            sample(bank, history, boundary)
            if watch is not None:
                watch.midnight(bank, boundary)
            boundary += US_PER_DAY
        if bank.apply(event) is Verdict.APPLIED and watch is not None:
            watch.applied(bank, event)
    if boundary is not None:
        sample(bank, history, boundary)
    history.stats = bank.stats()
    return bank, history
