"""Before/after comparison of a daily series around an opening day (pure, standard library).

Each side's mean comes with a 95% confidence interval from Student's t (the days are treated as
independent observations); the change (after - before) has a Welch interval (unequal
variances, Welch-Satterthwaite degrees of freedom). A side with fewer than two days has no
interval. The methods page of the report states these assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(df: float) -> float:
    """Two-sided 95% t quantile; fractional df round down (conservative); beyond 30 df the
    Cornish-Fisher expansion around 1.96 (error < 0.001)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if df <= 30:
        return _T95[int(df) - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True, slots=True)
class Mean:
    n: int
    mean: float
    low: float | None
    high: float | None
    variance: float


def mean_ci(values: Sequence[float]) -> Mean | None:
    n = len(values)
    if n == 0:
        return None
    m = math.fsum(values) / n
    if n < 2:
        return Mean(n, m, None, None, 0.0)
    var = math.fsum((v - m) ** 2 for v in values) / (n - 1)
    half = t95(n - 1) * math.sqrt(var / n)
    return Mean(n, m, m - half, m + half, var)


@dataclass(frozen=True, slots=True)
class Change:
    before: Mean
    after: Mean
    difference: float
    low: float | None
    high: float | None


def before_after(before: Sequence[float], after: Sequence[float]) -> Change | None:
    b, a = mean_ci(before), mean_ci(after)
    if b is None or a is None:
        return None
    diff = a.mean - b.mean
    if b.n < 2 or a.n < 2:
        return Change(b, a, diff, None, None)
    sb, sa = b.variance / b.n, a.variance / a.n
    se = math.sqrt(sb + sa)
    if se == 0:
        return Change(b, a, diff, diff, diff)
    df = (sb + sa) ** 2 / (sb**2 / (b.n - 1) + sa**2 / (a.n - 1))
    half = t95(df) * se
    return Change(b, a, diff, diff - half, diff + half)
