"""The ETA backtest: fold a log to cutoffs, forecast every open order, and compare with what happened.

At each cutoff (a UTC midnight, a number of days after the log's first one) the bank holds exactly the
events before it; every open order gets the forecast's band (`eta_low`, `eta`, `eta_high`) and the trailing
rule's date (position / deliveries a day over the last 28 days), as the live views would have shown
them then. The fold goes on to the end of the log, which says what became of each of those orders:
delivered (when), cancelled, or still not delivered when the log ends. Those delivered are scored:
the share whose delivery fell inside the band (its coverage; the band is 80%), the median absolute
error and the mean error (bias, + = too late) of the median, in days; the others are counted apart.
The forecast's figures are also given for each trim (`by_trim`): under high-trim-first a standard trim waits
longest, so its dates reach furthest past what the log has shown, and a launch's luck shows most in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from orderbank.projections.bank import OrderBank
from orderbank.projections.events import Event
from orderbank.projections.lanefacts import NEVER
from orderbank.projections.orders import US_PER_DAY, Status, iso

I64 = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
DEFAULT_DAYS = (1, 7, 30, 60, 120, 180)
METHODS = ("forecast", "trailing")


@dataclass(frozen=True)
class Cutoff:
    """What the views showed at a cutoff: every open order and its bands (microseconds, NEVER: none)."""

    day: int
    at_us: int
    order_ids: list[str]
    low: I64
    mid: I64
    high: I64
    trailing: I64
    bases: dict[str, str]


def forecasts_at(bank: OrderBank, at_us: int, day: int) -> Cutoff:
    """Every open order's band and trailing-rule date, read at `at_us`."""
    ids: list[str] = []
    bands, trailing = [], []
    bases = {}
    for name in sorted(bank.queue.lanes):
        lane = bank.queue.lanes[name]
        ahead = bank.queue.forecast(name, at_us)
        positions = np.arange(1, len(lane.open) + 1, dtype=np.int64)
        ids += list(lane.order_ids())
        bands.append(ahead.of(positions))
        per_day = bank.queue.throughput(name, at_us)
        trailing.append(at_us + (positions / per_day * US_PER_DAY).astype(np.int64) if per_day > 0
                        else np.full(len(positions), NEVER, dtype=np.int64))
        bases[name] = ahead.basis
    every = np.concatenate(bands, axis=1) if bands else np.zeros((3, 0), dtype=np.int64)
    return Cutoff(day, at_us, ids, every[0], every[1], every[2],
                  np.concatenate(trailing) if trailing else np.zeros(0, dtype=np.int64), bases)


class Backtest:
    """Collects the cutoffs as a fold passes their midnights (a watcher of orderbank.replay.history.replay_history),
    then scores them against the folded bank (`summary`)."""

    def __init__(self, days: Sequence[int] = DEFAULT_DAYS) -> None:
        self.pending = sorted(set(days))
        self.cutoffs: list[Cutoff] = []
        self.origin: int | None = None

    def midnight(self, bank: OrderBank, boundary_us: int) -> None:
        """The fold's clock passed `boundary_us`; the bank holds every event before it."""
        if self.origin is None:
            self.origin = boundary_us - US_PER_DAY  # the first midnight passed ends the log's first day
        day = (boundary_us - self.origin) // US_PER_DAY
        if self.pending and day == self.pending[0]:
            self.pending.pop(0)
            self.cutoffs.append(forecasts_at(bank, boundary_us, day))

    def applied(self, bank: OrderBank, event: Event) -> None:
        """Nothing to keep of each event: what became of the orders, the folded bank says at the end."""

    def summary(self, bank: OrderBank) -> dict[str, Any]:
        """Every cutoff's figures, against what the whole log says became of the orders."""
        return {"policy": bank.settings.policy.name, "cutoffs": [score(bank, cutoff) for cutoff in self.cutoffs],
                "beyond_log": list(self.pending)}


def score(bank: OrderBank, cutoff: Cutoff) -> dict[str, Any]:
    """One cutoff's figures, for the forecast and the trailing rule, against what became of the orders; and the
    forecast's for each trim."""
    orders = [bank.orders[order_id] for order_id in cutoff.order_ids]
    status = np.array([order.status is Status.DELIVERED for order in orders], dtype=bool)
    cancelled = np.array([order.status is Status.CANCELLED for order in orders], dtype=bool)
    actual = np.array([order.closed_us if order.status is Status.DELIVERED else NEVER for order in orders],
                      dtype=np.int64)
    everyone = np.ones(len(orders), dtype=bool)
    out: dict[str, Any] = {"day": cutoff.day, "at": iso(cutoff.at_us), "basis": cutoff.bases,
                           **_fates(cutoff, everyone, status, cancelled, actual)}
    for method, mid in zip(METHODS, (cutoff.mid, cutoff.trailing), strict=True):
        out[method] = _figures(cutoff, mid, everyone, status, actual, band=method == "forecast")
    trims = np.array([order.trim for order in orders], dtype=object)
    out["by_trim"] = {
        trim: {**_fates(cutoff, chosen, status, cancelled, actual),
               "forecast": _figures(cutoff, cutoff.mid, chosen, status, actual, band=True)}
        for trim in sorted(set(trims.tolist())) for chosen in [trims == trim]}
    return out


def _fates(cutoff: Cutoff, chosen: Flags, status: Flags, cancelled: Flags, actual: I64) -> dict[str, Any]:
    """How many of the chosen orders were open at the cutoff, what became of them, and how long the delivered
    ones waited."""
    delivered = chosen & status
    return {"open": int(chosen.sum()), "delivered_later": int(delivered.sum()),
            "cancelled_later": int((chosen & cancelled).sum()),
            "never_delivered": int((chosen & ~status & ~cancelled).sum()),
            "median_wait_days": _median((actual[delivered] - cutoff.at_us) / US_PER_DAY)}


def _figures(cutoff: Cutoff, mid: I64, chosen: Flags, status: Flags, actual: I64, band: bool) -> dict[str, Any]:
    """One method's figures over the chosen orders: which had a date, and the error of those delivered (and,
    for the forecast, how its band held)."""
    known = mid[chosen] != NEVER
    scored = chosen & (mid != NEVER) & status
    error = (mid[scored] - actual[scored]) / US_PER_DAY
    figures: dict[str, Any] = {
        "with_eta": int(known.sum()), "share_with_eta": float(known.mean()) if len(known) else None,
        "scored": int(scored.sum()), "median_abs_error_days": _median(np.abs(error)),
        "mean_error_days": float(error.mean()) if len(error) else None,
    }
    if band:
        low, high = cutoff.low[scored], cutoff.high[scored]
        hit = actual[scored]
        figures["coverage"] = float(((low <= hit) & (hit <= high)).mean()) if len(hit) else None
        figures["below"] = {"10": _share(hit < low), "50": _share(hit < mid[scored]), "90": _share(hit < high)}
        figures["band_days"] = _median((high - low) / US_PER_DAY)
    return figures


def _median(values: npt.NDArray[np.float64]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _share(flags: npt.NDArray[np.bool_]) -> float | None:
    return float(flags.mean()) if len(flags) else None
