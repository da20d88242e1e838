"""The cars a lane will get: replications of its daily allocations from the forecast's epoch on.

What the log shows is the cars allocated each day: an order's first balance demand is the day its car
was allocated. An order paid in full before its turn gets its car without a demand, which the log shows
only when it is delivered: those cars are counted on the day a lead before their delivery, and for the
last lead of days, not delivered yet, the days' demands are scaled up by the share of cars that came
without one lately (a log with no demands at all leaves those days unknown).

- With a plan in force and at least three planned days observed ("blended"), the cars to come are the
  plan times its adherence (cars allocated over cars planned, in logs). A day's adherence is read as the
  line's own level, plus a drift that wanders around it for a few weeks (an AR(1), correlation time
  DRIFT_DAYS, with the sd the weeks read show), plus the day's noise. A Kalman filter over the days read
  (up to eight weeks) gives both where they stand and how well that is known: the level's uncertainty
  shrinks as days are read (from the plan's PLAN_TRUST before any), a week's dip is read partly as drift,
  which goes back to the level at DRIFT_DAYS. The replications draw the level and the drift from that,
  then the drift to come and the days' noise. When the adherence broke away from its level within those
  weeks by more than the drift explains (a shortfall, a new shift), only the days since are read, and
  the drift to come is widened by half the size of the break.
- With a plan and too little observed ("plan"): the plan itself, trusted within a prior +-15%.
- With no plan ("observed"): the last week's rate, following the trend of the last four weeks for four
  more weeks and flat after, with the same drift.
- With neither ("none"): no cars, and no ETA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

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
        """Cars allocated each day of the lane's history (NaN where not known): the demands, and the cars
        delivered without one, a lead before their delivery. The last lead of days have not had theirs
        delivered yet: there the demands are scaled up by the share of cars that came without one lately
        (not the weeks before: that share grows as customers pay in full while they wait)."""
        out = self.demanded + self.unasked
        recent = slice(HISTORY_DAYS - min(HISTORY_DAYS, math.ceil(self.lead_days)), None)
        out[recent] = self.demanded[recent] / (1 - self.unasked_share) if self.unasked_share < UNREADABLE else np.nan
        out[: HISTORY_DAYS - min(self.open_days, HISTORY_DAYS)] = np.nan
        return out


@dataclass(frozen=True)
class Supply:
    basis: str
    cars: F64
    """(replications, days): cars allocated on each day from the epoch on."""


@dataclass(frozen=True)
class _Level:
    """The log of the cars a day to come relative to a centre: the level it averages (`average`) and how far
    the drift has taken it from there (`drift`), as a joint normal (`mean`, `cov`, in that order); the
    drift's sd and the day-to-day noise."""

    mean: F64
    cov: F64
    drift_sd: float
    noise: float

    @staticmethod
    def unread(average_sd: float, drift_sd: float, noise: float) -> _Level:
        """Nothing read: the average within `average_sd` of the centre, the drift anywhere it goes."""
        return _Level(np.zeros(2), np.diag([average_sd**2, drift_sd**2]), drift_sd, noise)


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
            level = _Level.unread(PLAN_TRUST, DRIFT_SD, DEFAULT_NOISE)
    elif known.any() and np.nansum(allocated) > 0:
        basis, (centre, noise) = "observed", _trend(allocated[known], days)
        # The last week's rate is known to within its noise, the level it goes on at to within PLAN_TRUST.
        trust, week = PLAN_TRUST**2, noise**2 / LEVEL_DAYS
        level = _Level(np.zeros(2), np.array([[trust, -trust], [-trust, trust + week]]), DRIFT_SD, noise)
    else:
        return Supply("none", np.zeros((replications, 1)))
    keep = math.exp(-1 / DRIFT_DAYS)
    back = keep ** np.arange(1, days + 1, dtype=np.float64)
    central = centre * np.exp(level.mean[0] + level.mean[1] * back)
    days = min(days, int(np.searchsorted(np.cumsum(central), wanted)) + ENOUGH_MORE_DAYS)
    centre, back = centre[:days], back[:days]
    average, drifted = level.mean[:, None] + np.linalg.cholesky(level.cov) @ rng.standard_normal((2, replications))
    mean = average[:, None] + drifted[:, None] * back[None, :]
    shocks = rng.standard_normal((replications, days)) * level.drift_sd * math.sqrt(1 - keep * keep)
    drift = _ar1(shocks, keep)  # what the drift does from here on, on top of where it is read to be
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
    """The adherence (log of cars over planned) on the days read (oldest first), read as a level of its own
    plus a drift and day-to-day noise: the level and the drift at the last day read, from the days since
    the last break, if any (a Kalman filter: the level's uncertainty shrinks as days are read, the drift's
    settles where days of noise tell it apart), the drift's sd and the noise."""
    ratios = np.log(np.maximum(cars, 0.5) / planned)  # output varies by a share of itself: no count's + 0.5
    # The noise from one day to the next (a drift hardly moves in a day, and a break moves one difference only).
    steps = np.abs(np.diff(ratios[-TREND_DAYS:]))
    noise = float(np.clip(1.4826 * np.median(steps) / math.sqrt(2), 0.02, 0.5)) if len(ratios) >= 5 else DEFAULT_NOISE
    start, jump = _last_break(ratios, noise)
    read = ratios[start:]
    span = len(read)
    weeks = [float(np.mean(read[i:i + LEVEL_DAYS])) for i in range(span % LEVEL_DAYS, span, LEVEL_DAYS)]
    drift_sd = DRIFT_SD
    if len(weeks) >= 4:  # the weeks' spread around their average, less what the daily noise puts in it, ...
        spread = float(np.var(weeks)) - noise**2 / LEVEL_DAYS * (1 - 1 / len(weeks))
        # ... is the share of the drift's variance that so few weeks of a drift lasting DRIFT_DAYS show
        drift_sd = math.sqrt((max(spread, 0.0) / _spread_share(len(weeks)) + DRIFT_SD**2) / 2)
    keep = math.exp(-1 / DRIFT_DAYS)
    step = np.array([[1.0, 0.0], [0.0, keep]])
    stir = np.diag([0.0, drift_sd**2 * (1 - keep * keep)])
    seen = np.ones(2)  # a day's adherence is the level plus the drift, plus its noise
    mean, cov = np.zeros(2), np.diag([PLAN_TRUST**2, drift_sd**2])
    for day, ratio in enumerate(read.tolist()):
        if day:
            mean, cov = step @ mean, step @ cov @ step.T + stir
        gain = cov @ seen / (seen @ cov @ seen + noise**2)
        mean = mean + gain * (ratio - seen @ mean)
        cov = cov - np.outer(gain, seen @ cov)
    # A line that broke once may break again: the drift to come is wider (the days since read as they are).
    return _Level(mean, (cov + cov.T) / 2, max(drift_sd, jump / 2), noise)


@cache
def _spread_share(weeks: int) -> float:
    """The share of the drift's variance that the spread (np.var) of `weeks` consecutive weekly means shows on
    average: a drift that lasts DRIFT_DAYS moves little from one week to the next, so four weeks show under a
    quarter of it (and eight, 42%). Read as the whole, it made the level look better known than it is: over 300
    simulated lines (tests/projections/test_forecast.py) the 80% range of the next four months' cars held 70%
    of what was built (now 76%), and on the yu7 launch (seeds 1-8) the bands of the standard trim, served last
    under high-trim-first, covered 76% and 75% on average at days 30 and 60 (now 80% and 76%)."""
    keep = math.exp(-1 / DRIFT_DAYS)
    days = np.arange(weeks * LEVEL_DAYS)
    daily = keep ** np.abs(np.subtract.outer(days, days))  # the drift's correlation from day to day
    weekly = np.kron(np.eye(weeks), np.full((1, LEVEL_DAYS), 1 / LEVEL_DAYS))
    covariance = weekly @ daily @ weekly.T
    return float(np.trace(covariance) / weeks - covariance.sum() / weeks**2)


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
