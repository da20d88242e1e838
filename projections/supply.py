"""The cars a lane will get: replications of its daily allocations from the forecast's epoch on.

What the log shows is the cars allocated each day: an order's first balance demand is the day its car
was allocated. An order paid in full before its turn gets its car without a demand, which the log shows
only when it is delivered; so the days' demands are scaled up by the share of the last two weeks'
deliveries that came without one (and a log with no demands at all is read from its deliveries, dated a
lead back, which leaves its last lead of days unknown).

- With a plan in force and at least three planned days observed ("blended"), the cars to come are the
  plan times its adherence (cars allocated over cars planned). A production line's adherence drifts
  around its average over a few weeks: the last week's adherence goes back to the average of the
  days read (up to eight weeks) at DRIFT_DAYS, and the replications draw the drift to come (an AR(1)
  in logs with the sd the weeks read show) and the average's own uncertainty. When the adherence
  broke away from its level within those weeks by more than the drift explains (a shortfall, a new
  shift), only the days since count, and the drift's sd is widened by half the size of the break.
- With a plan and too little observed ("plan"): the plan itself, trusted within a prior +-15%.
- With no plan ("observed"): the last week's rate, following the trend of the last four weeks for four
  more weeks and flat after, with the same drift.
- With neither ("none"): no cars, and no ETA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
HISTORY_DAYS = 56
LEVEL_DAYS, TREND_DAYS = 7, 28
MIN_OBSERVED_DAYS = 3
ENOUGH_MORE_DAYS = 60
UNREADABLE = 0.9  # when this share of deliveries or more came without a demand, demands say too little
PLAN_TRUST = 0.15  # log sd of a plan's adherence before any of it is observed
DRIFT_DAYS = 20.0  # how long a production line's drift from its average lasts (AR(1) correlation time)
DRIFT_SD = 0.03  # prior sd of that drift (log); the weeks read refine it
AVERAGE_SD_FLOOR = 0.04  # however many days were read, the average to come is not known better (the model's own doubt)
BREAK = 4.0  # a jump in the adherence this many times what drift and noise explain is a break
DEFAULT_NOISE = 0.1
BASES = ("blended", "plan", "observed", "none")


@dataclass(frozen=True)
class Observed:
    """The HISTORY_DAYS days before the epoch (oldest first): cars allocated with a demand, and cars delivered
    without one dated a lead before their delivery; what share of the last deliveries came without one,
    and how many days the lane has had orders (the days before are not zeros, they are not the lane's)."""

    demanded: F64
    unasked: F64
    unasked_share: float
    lead_days: float
    open_days: int

    def allocations(self) -> F64:
        """Cars allocated each day of the lane's history (NaN where not known)."""
        if self.unasked_share < UNREADABLE:
            out = self.demanded / (1 - self.unasked_share)
        else:  # a log without demands: only days a lead or more ago are known, from their deliveries
            out = self.demanded + self.unasked
            out[HISTORY_DAYS - min(HISTORY_DAYS, math.ceil(self.lead_days)):] = np.nan
        out[: HISTORY_DAYS - min(self.open_days, HISTORY_DAYS)] = np.nan
        return out


@dataclass(frozen=True)
class Supply:
    basis: str
    cars: F64
    """(replications, days): cars allocated on each day from the epoch on."""


@dataclass(frozen=True)
class _Level:
    """The log of the cars a day to come relative to a centre: where it starts (`now`, known within `now_sd`),
    the average it drifts back to (within `average_sd`), the drift's sd and the day-to-day noise. With no
    day observed (`now_sd` None) it starts at its average."""

    now: float
    now_sd: float | None
    average: float
    average_sd: float
    drift_sd: float
    noise: float


def cars_to_come(planned_before: F64, planned: F64, observed: Observed, rng: np.random.Generator,
                 replications: int, wanted: float) -> Supply:
    """`planned_before`: the plan's cars on each history day; `planned`: on each day to come (zeros: no plan).
    The paths run until the central forecast has brought `wanted` cars, and two months more (or to the
    last day planned): a replication that needs more is one whose car does not come within the horizon."""
    days = len(planned)
    allocated = observed.allocations()
    known = ~np.isnan(allocated)
    if planned.sum() > 0 or planned_before.sum() > 0:
        planned_days = known & (planned_before > 0)
        if planned_days.sum() >= MIN_OBSERVED_DAYS:
            basis, centre = "blended", planned
            level = _drifting(allocated[planned_days], planned_before[planned_days])
        else:
            basis, centre = "plan", planned
            level = _Level(0.0, None, 0.0, PLAN_TRUST, DRIFT_SD, DEFAULT_NOISE)
    elif known.any() and np.nansum(allocated) > 0:
        basis, (centre, noise) = "observed", _trend(allocated[known], days)
        level = _Level(0.0, noise / math.sqrt(LEVEL_DAYS), 0.0, PLAN_TRUST, DRIFT_SD, noise)
    else:
        return Supply("none", np.zeros((replications, 1)))
    keep = math.exp(-1 / DRIFT_DAYS)
    back = keep ** np.arange(1, days + 1, dtype=np.float64)
    central = centre * np.exp(level.average + (level.now - level.average) * back)
    days = min(days, int(np.searchsorted(np.cumsum(central), wanted)) + ENOUGH_MORE_DAYS)
    centre, back, central = centre[:days], back[:days], central[:days]
    average = level.average + level.average_sd * rng.standard_normal(replications)[:, None]
    now = average if level.now_sd is None else level.now + level.now_sd * rng.standard_normal(replications)[:, None]
    mean = average + (now - average) * back[None, :]
    shocks = rng.standard_normal((replications, days)) * level.drift_sd * math.sqrt(1 - keep * keep)
    drift = _ar1(shocks, keep)  # the drift to come, from zero (the last week's level is known)
    daily = rng.standard_normal((replications, days)) * level.noise
    cars = centre[None, :] * np.exp(mean + drift + daily)
    return Supply(basis, cars)


def _ar1(shocks: F64, keep: float, block: int = 64) -> F64:
    """x[t] = keep * x[t-1] + shocks[t] from x[-1] = 0, along each row: a block of days at a time, as a
    product with the block's matrix of keep^(t-s)."""
    lags = np.arange(block)
    within = np.tril(keep ** np.maximum(lags[:, None] - lags[None, :], 0))
    out = np.empty_like(shocks)
    state = np.zeros(shocks.shape[0])
    for start in range(0, shocks.shape[1], block):
        chunk = shocks[:, start:start + block]
        size = chunk.shape[1]
        out[:, start:start + size] = chunk @ within[:size, :size].T + state[:, None] * keep ** (lags[:size] + 1)
        state = out[:, start + size - 1]
    return out


def _drifting(cars: F64, planned: F64) -> _Level:
    """The adherence (log of cars over planned) on the days read (oldest first): the last week's, the
    average it drifts back to (that of the days since the last break, if any), their uncertainty, the
    drift's sd and the day-to-day noise."""

    def level(days: slice) -> float:
        return math.log(max(float(cars[days].sum()), 0.5) / float(planned[days].sum()))

    ratios = np.log((cars + 0.5) / planned)
    deviations = np.abs(ratios[-TREND_DAYS:] - np.median(ratios[-TREND_DAYS:]))
    noise = float(np.clip(1.4826 * np.median(deviations), 0.02, 0.5)) if len(ratios) >= 5 else DEFAULT_NOISE
    start, jump = _last_break(ratios, noise)
    now, average = level(slice(-LEVEL_DAYS, None)), level(slice(start, None))
    span = len(cars) - start
    weeks = [level(slice(i, i + LEVEL_DAYS)) for i in range(start + span % LEVEL_DAYS, len(cars), LEVEL_DAYS)]
    drift_sd = DRIFT_SD
    if len(weeks) >= 4:  # the weeks' spread around their average, less what the daily noise puts in it
        spread = float(np.var(weeks)) - noise**2 / LEVEL_DAYS
        drift_sd = math.sqrt((max(spread, 0.0) + DRIFT_SD**2) / 2)
    drift_sd = max(drift_sd, jump / 2)  # a line that broke once may break again: a wider drift
    # The average of n days of a drift lasting DRIFT_DAYS is worth about n / (2 DRIFT_DAYS) independent looks
    # (one at least).
    looks = max(1.0, span / (2 * DRIFT_DAYS))
    average_sd = max(1 / math.sqrt(1 / PLAN_TRUST**2 + looks / drift_sd**2), AVERAGE_SD_FLOOR)
    return _Level(now, noise / math.sqrt(min(len(cars), LEVEL_DAYS)), average, average_sd, drift_sd, noise)


def _last_break(ratios: F64, noise: float) -> tuple[int, float]:
    """Where the adherence last broke away from its level (a shortfall, a new shift) and by how much (log);
    (0, 0) if it did not: the split of the days read whose two sides differ the most for their sizes, when
    that difference is more than BREAK times what a drift and the days' noise explain."""
    days = len(ratios)
    if days < 2 * LEVEL_DAYS:
        return 0, 0.0
    sums = np.concatenate(([0.0], np.cumsum(ratios)))
    splits = np.arange(LEVEL_DAYS, days - LEVEL_DAYS + 1)
    jumps = (sums[-1] - sums[splits]) / (days - splits) - sums[splits] / splits
    best = int(np.argmax(np.abs(jumps) * np.sqrt(splits * (days - splits) / days)))
    split, jump = int(splits[best]), float(abs(jumps[best]))
    explained = math.sqrt(DRIFT_SD**2 + noise**2 / min(split, days - split))
    return (split, jump) if jump > BREAK * explained else (0, 0.0)


def _trend(allocated: F64, days: int) -> tuple[F64, float]:
    """The last week's rate carried on by the last four weeks' trend for four weeks, then flat; the day-to-day
    noise (log) around that trend."""
    recent = allocated[-TREND_DAYS:]
    level = float(recent[-LEVEL_DAYS:].mean())
    x = np.arange(len(recent), dtype=np.float64)
    slope, noise = 0.0, DEFAULT_NOISE
    if len(recent) >= MIN_OBSERVED_DAYS:
        slope, intercept = (float(v) for v in np.polyfit(x, recent, 1))
        fitted = np.maximum(intercept + slope * x, 0.5)
        noise = float(np.clip(np.std(np.log((recent + 1) / (fitted + 1))), 0.02, 0.5)) if len(recent) >= 5 else noise
    ahead = np.minimum(np.arange(days) + (LEVEL_DAYS + 1) / 2, TREND_DAYS)
    return np.asarray(np.maximum(level + slope * ahead, max(0.2 * level, 0.5)), dtype=np.float64), noise
