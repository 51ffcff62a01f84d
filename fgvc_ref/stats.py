"""Is a step real? Welch's t interval for a difference of means over seeds, and the seeds a step needs.

Welch, "The generalization of 'Student's' problem when several different population variances are
involved", Biometrika 34, 1947. For accuracies ``a`` (n_a seeds, sample variance v_a) and ``b``:

    d  = mean(b) - mean(a)                      the step, in points
    se = sqrt(v_a / n_a + v_b / n_b)
    nu = se^4 / ((v_a/n_a)^2 / (n_a - 1) + (v_b/n_b)^2 / (n_b - 1))    Welch-Satterthwaite
    t  = d / se,   p = 2 * (1 - F_nu(|t|)),   95% interval  d +- F_nu^-1(0.975) * se

where ``F_nu`` is Student's t CDF, ``F_nu(t) = 1 - I_x(nu/2, 1/2) / 2`` for t >= 0 with
``x = nu / (nu + t^2)`` and ``I`` the regularised incomplete beta function (continued fraction,
Press et al., Numerical Recipes, 3rd ed., section 6.4); the quantile is found by bisection. A step
is *distinguishable from zero* when its interval excludes 0 (p < 0.05).

Seeds needed for a step of size ``delta`` given a per-seed spread ``s``: the smallest ``n`` per stage
with ``n >= 2 ((q_{0.975} + q_{0.80}) s / delta)^2``, the quantiles taken from Student's t with
``2n - 2`` degrees of freedom: 80% power for a two-sided 5% test with equal spreads (the usual
shifted-central-t approximation of the noncentral t; tests/test_stats.py checks it against the
exact noncentral power). Convention: matches ``scipy.stats.ttest_ind(equal_var=False)`` and its
``confidence_interval``; scipy is not needed at run time.
"""

from __future__ import annotations

import math
import statistics
from typing import NamedTuple


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student's t CDF with ``df`` (real, > 0) degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (bisection on the CDF to 1e-12)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q!r}")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
    return 0.5 * (lo + hi)


class Step(NamedTuple):
    diff: float  # mean(b) - mean(a), points
    low: float  # 95% interval (Welch t)
    high: float
    df: float
    p: float

    @property
    def distinguishable(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def welch(a: list[float], b: list[float], level: float = 0.95) -> Step:
    """Welch's interval and two-sided p for ``mean(b) - mean(a)``; needs >= 2 values on each side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs >= 2 seeds on each side, got {len(a)} and {len(b)}")
    d = statistics.fmean(b) - statistics.fmean(a)
    wa, wb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(wa + wb)
    if se == 0.0:  # no spread at all: the difference is what it is
        return Step(d, d, d, math.inf, 1.0 if d == 0 else 0.0)
    df = (wa + wb) ** 2 / (wa**2 / (len(a) - 1) + wb**2 / (len(b) - 1))
    half = t_ppf(0.5 + level / 2.0, df) * se
    return Step(d, d - half, d + half, df, 2.0 * (1.0 - t_cdf(abs(d / se), df)))


def seeds_needed(delta: float, spread: float, *, power: float = 0.8, level: float = 0.95, limit: int = 10_000) -> int | None:
    """Seeds per stage for an 80%-power two-sided test to see a true step ``delta`` (module docstring); None
    when ``delta`` is 0 (nothing to see) or more than ``limit`` seeds would be needed."""
    if delta == 0:
        return None
    if spread == 0:
        return 2
    normal = statistics.NormalDist()
    z = 2.0 * ((normal.inv_cdf(0.5 + level / 2.0) + normal.inv_cdf(power)) * spread / delta) ** 2  # normal quantiles: a lower bound
    if z > limit:
        return None
    for n in range(max(2, math.ceil(z)), limit + 1):
        df = 2 * n - 2
        if n >= 2 * ((t_ppf(0.5 + level / 2.0, df) + t_ppf(power, df)) * spread / delta) ** 2:
            return n
    return None


def pooled_sd(a: list[float], b: list[float]) -> float:
    """``sqrt((v_a + v_b) / 2)``: the per-seed spread of two stages, as the seed count rule assumes it equal."""
    return math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2.0)
