"""How long customers wait before they cancel, as the forecast needs it: a Weibull fitted to censored waits,
with the uncertainty of its extrapolation.

The waits come binned by the hour (counts, so the fit does not depend on the order they were read in):
per bin, the customers who cancelled after waiting that long, and those who stopped being at risk
without cancelling (a car was allocated, the maker cancelled, or they are still waiting: censored). A
launch's first weeks show only short waits, and the forecast must say how many of the orders ahead will
cancel over the months to come: the shape (does the urge to cancel grow with the wait?) decides that
extrapolation. So the shape is not one estimate but a posterior over a grid: the profile likelihood
(the scale at its best for each shape) times a weak prior, and the scale given the shape is close to
normal in its logarithm. Replications draw (shape, scale) from it; with no cancellation yet, from the
prior alone (median patience about a year, the shape about 1.5), which makes early bands wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BIN_DAYS = 1 / 24
SHAPES = np.exp(np.linspace(math.log(0.4), math.log(4.0), 231))
PRIOR_SHAPE, PRIOR_SHAPE_SD = math.log(1.3), 0.3
PRIOR_MEDIAN, PRIOR_MEDIAN_SD = math.log(365.0), 0.7


@dataclass(frozen=True)
class Waits:
    """Customers' waits by hour bin: how many cancelled after that long, how many were censored there."""

    cancelled: I64
    censored: I64

    @property
    def cancellations(self) -> int:
        return int(self.cancelled.sum())


@dataclass(frozen=True)
class Patience:
    """R draws of a Weibull patience, S(t) = exp(-(t/scale)^shape), t in days."""

    shape: F64
    scale: F64

    def still_waiting(self, age: F64, more: F64 | float) -> F64:
        """For each replication (columns, or broadcast): the share of customers who had waited `age` days
        that are still waiting `more` days later."""
        return np.asarray(np.exp((age / self.scale) ** self.shape - ((age + more) / self.scale) ** self.shape))

    def describe(self) -> dict[str, float]:
        median = self.scale * math.log(2.0) ** (1.0 / self.shape)
        return {"shape": float(np.median(self.shape)), "median_days": float(np.median(median))}


def waits_of(days: F64, cancelled: npt.NDArray[np.bool_]) -> Waits:
    """Bin waits (days) and whether each ended in a cancellation."""
    bins = np.maximum((days / BIN_DAYS).astype(np.int64), 0)
    size = int(bins.max(initial=0)) + 1
    return Waits(np.bincount(bins[cancelled], minlength=size), np.bincount(bins[~cancelled], minlength=size))


def _log_prior(shape: F64, median: F64) -> F64:
    return np.asarray(-0.5 * ((np.log(shape) - PRIOR_SHAPE) / PRIOR_SHAPE_SD) ** 2
                      - 0.5 * ((np.log(median) - PRIOR_MEDIAN) / PRIOR_MEDIAN_SD) ** 2)


def draw(waits: Waits, rng: np.random.Generator, replications: int) -> Patience:
    """One (shape, scale) per replication, drawn from the posterior (from the prior alone while nobody cancelled)."""
    uniforms, normals = rng.random(replications), rng.standard_normal((2, replications))
    events = waits.cancellations
    if events == 0:
        shape = np.exp(PRIOR_SHAPE + PRIOR_SHAPE_SD * normals[0])
        median = np.exp(PRIOR_MEDIAN + PRIOR_MEDIAN_SD * normals[1])
        return Patience(shape, median / np.log(2.0) ** (1.0 / shape))
    days = (np.arange(len(waits.cancelled)) + 0.5) * BIN_DAYS
    at_risk = (waits.cancelled + waits.censored).astype(np.float64)
    sum_log_events = float(waits.cancelled @ np.log(days))
    unit = float(days[-1])
    # For each shape, the scale that maximises the likelihood: scale^k = sum(n t^k) / d (t rescaled so that t^k
    # stays finite).
    powered = (days[None, :] / unit) ** SHAPES[:, None]
    scale = unit * ((powered @ at_risk) / events) ** (1.0 / SHAPES)
    profile = events * np.log(SHAPES) - events * SHAPES * np.log(scale) + (SHAPES - 1) * sum_log_events - events
    posterior = profile + _log_prior(SHAPES, scale * math.log(2.0) ** (1.0 / SHAPES))
    weights = np.exp(posterior - posterior.max())
    cdf = np.cumsum(weights) / weights.sum()
    pick = np.minimum(np.searchsorted(cdf, uniforms), len(SHAPES) - 1)
    shape = SHAPES[pick]
    # The scale's log given the shape: information d k^2 at the maximum, so a standard error of 1/(k sqrt(d)).
    return Patience(shape, scale[pick] * np.exp(normals[1] / (shape * math.sqrt(events))))
