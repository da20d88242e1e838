"""Means and 95% confidence intervals over replications (Student's t)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from orderbank.projections.errors import ConfigError

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5% quantile of t with df degrees of freedom (normal-limit interpolation past 30)."""
    if df < 1:
        raise ConfigError("t975: needs at least one degree of freedom")
    return _T975[df - 1] if df <= len(_T975) else 1.960 + (2.042 - 1.960) * 30 / df


def interval(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean and 95% interval of replicated values; bounds are None with fewer than two."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return {"mean": None, "low": None, "high": None}
    mean = sum(known) / len(known)
    if len(known) < 2:
        return {"mean": mean, "low": None, "high": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in known) / (len(known) - 1))
    half = t975(len(known) - 1) * sd / math.sqrt(len(known))
    return {"mean": mean, "low": mean - half, "high": mean + half}
