"""How long customers wait before they cancel: estimated from censored waits, then sampled.

Each order contributes one wait (in days): until the customer cancelled (an observed patience),
or until it stopped being at risk without cancelling (a car was allocated, the maker cancelled
it, or the log ended): a right-censored wait, "patience at least this long". Two estimators:
Kaplan-Meier (nonparametric; the default) and a Weibull fitted by maximum likelihood with
censoring (shape > 1 means the urge to cancel grows with waiting). Both sample patience
conditioned on the wait already survived: T | T > w.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from orderbank.projections.errors import ConfigError, LogError
from orderbank.replay.orderlog import Flags

F64 = npt.NDArray[np.float64]


class Patience(Protocol):
    """A fitted patience distribution that can be sampled beyond a wait already survived."""

    def survival(self, days: F64) -> F64: ...
    def draw_beyond(self, waited: F64, rng: np.random.Generator) -> F64: ...
    def describe(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class KaplanMeier:
    """The product-limit estimate: S just after each distinct cancellation time."""

    times: F64
    at_risk: npt.NDArray[np.int64]
    events: npt.NDArray[np.int64]
    surv: F64

    def survival(self, days: F64) -> F64:
        """S(t): the share of customers still patient after t days."""
        index = np.searchsorted(self.times, days, side="right")
        return np.concatenate(([1.0], self.surv))[index]

    def draw_beyond(self, waited: F64, rng: np.random.Generator) -> F64:
        """Inverse-transform draws from S(t)/S(w); `inf` past the last observed cancellation."""
        target = rng.random(len(waited)) * self.survival(waited)
        index = np.searchsorted(-self.surv, -target, side="left")  # first time with S(t) <= target
        out = np.full(len(waited), np.inf)
        inside = index < len(self.times)
        out[inside] = self.times[index[inside]]
        return out

    def describe(self) -> dict[str, object]:
        median = self.times[np.searchsorted(-self.surv, -0.5, side="left")] if np.any(self.surv <= 0.5) else None
        return {"estimator": "kaplan-meier", "cancellations": int(self.events.sum()),
                "median_days": None if median is None else float(median),
                "surviving_at_last_time": float(self.surv[-1]) if len(self.surv) else 1.0}


def kaplan_meier(days: F64, cancelled: Flags) -> KaplanMeier:
    """Kaplan-Meier from waits in days; `cancelled` False marks a censored wait."""
    order = np.argsort(days, kind="stable")
    d, c = days[order], cancelled[order]
    times, first = np.unique(d, return_index=True)
    events = np.add.reduceat(c.astype(np.int64), first) if len(d) else np.zeros(0, np.int64)
    at_risk = len(d) - first
    keep = events > 0
    times, events, at_risk = times[keep], events[keep], at_risk[keep]
    surv = np.cumprod(1.0 - events / at_risk).astype(np.float64)
    return KaplanMeier(times.astype(np.float64), at_risk.astype(np.int64), events.astype(np.int64), surv)


@dataclass(frozen=True)
class Weibull:
    """S(t) = exp(-(t/scale)^shape); hazard rises with waiting when shape > 1."""

    shape: float
    scale: float

    def survival(self, days: F64) -> F64:
        return np.exp(-((np.maximum(days, 0.0) / self.scale) ** self.shape))

    def draw_beyond(self, waited: F64, rng: np.random.Generator) -> F64:
        """Closed form: the cumulative hazard beyond w is (w/scale)^shape plus an Exp(1) draw."""
        hazard = (np.maximum(waited, 0.0) / self.scale) ** self.shape + rng.exponential(1.0, len(waited))
        return np.asarray(self.scale * hazard ** (1.0 / self.shape), dtype=np.float64)

    def describe(self) -> dict[str, object]:
        return {"estimator": "weibull", "shape": round(self.shape, 6), "scale_days": round(self.scale, 6),
                "median_days": round(self.scale * math.log(2.0) ** (1.0 / self.shape), 6)}


_SMALLEST_DAYS = 1.0 / 86_400  # a wait of zero would put log(0) in the likelihood


def fit_weibull(days: F64, cancelled: Flags) -> Weibull:
    """Maximum likelihood with right censoring. The scale is profiled out:
    scale^k = sum(t^k) / d for d cancellations; the shape solves the profile score, a
    decreasing function of k, by bisection on log k."""
    t = np.maximum(days, _SMALLEST_DAYS)
    d = int(cancelled.sum())
    if d == 0:
        raise LogError("patience: no cancellation in the log, nothing to fit")
    log_t = np.log(t)
    mean_log_events = float(log_t[cancelled].sum()) / d
    unit = float(t.max())  # rescale so t^k stays finite for large k

    def score(k: float) -> float:
        powered = (t / unit) ** k
        return 1.0 / k + mean_log_events - float((powered * log_t).sum() / powered.sum())

    low, high = math.log(0.02), math.log(50.0)
    for _ in range(100):
        mid = (low + high) / 2
        if score(math.exp(mid)) > 0:
            low = mid
        else:
            high = mid
    shape = math.exp((low + high) / 2)
    scale = unit * float((((t / unit) ** shape).sum() / d) ** (1.0 / shape))
    return Weibull(shape, scale)


ESTIMATORS = ("km", "weibull")


def estimate(days: F64, cancelled: Flags, estimator: str) -> Patience:
    if estimator == "km":
        return kaplan_meier(days, cancelled)
    if estimator == "weibull":
        return fit_weibull(days, cancelled)
    raise ConfigError(f"patience estimator {estimator!r}: use one of {', '.join(ESTIMATORS)}")
