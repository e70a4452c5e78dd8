"""Inverse-variance pooling of log ratios: fixed effect and random effects.

Pure Python (no numpy/scipy at run time) so the maths is readable and testable on its
own: report.py selects the studies, plot.py draws them, this module only pools.
Conventions follow metafor's `rma(yi, sei = sei)`: DL is truncated at 0, PM and REML
are iterated to convergence, I² = (Q - df) / Q for the fixed-effect Q (as metan and
`meta::metagen` report it), Wald z confidence intervals.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from .errors import ExtractorError

METHODS: tuple[str, ...] = ("dl", "reml", "pm")
METHOD_NAMES = {"dl": "DerSimonian-Laird", "reml": "REML", "pm": "Paule-Mandel"}


class MetaError(ExtractorError):
    """Inputs that cannot be pooled (no studies, non-positive SE, unknown method)."""


@dataclass(frozen=True)
class Pooled:
    """One pooled estimate on the log scale, with its Wald CI and test."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p: float
    weights: tuple[float, ...]  # relative weights in %, summing to 100

    @property
    def ratio(self) -> tuple[float, float, float]:
        """(estimate, ci_low, ci_high) back on the ratio scale."""
        return math.exp(self.estimate), math.exp(self.ci_low), math.exp(self.ci_high)


@dataclass(frozen=True)
class MetaResult:
    """Fixed and random effects for one set of studies, plus heterogeneity."""

    k: int
    fixed: Pooled
    random: Pooled
    method: str
    tau2: float
    q: float
    df: int
    p_q: float | None
    i2: float | None  # percent; None when k == 1
    h2: float | None
    converged: bool = True
    yi: tuple[float, ...] = field(default_factory=tuple)
    sei: tuple[float, ...] = field(default_factory=tuple)

    def heterogeneity(self) -> str:
        """One line for tables and plots, e.g. 'Q = 12.3 (df 4, p = 0.015); I² = 67%; τ² = 0.041 (REML)'."""
        if self.k < 2:
            return "not estimable (1 study)"
        p = format_p(self.p_q)
        return (f"Q = {self.q:.2f} (df {self.df}, p {p if p.startswith('<') else '= ' + p}); "
                f"I\u00b2 = {self.i2:.0f}%; \u03c4\u00b2 = {self.tau2:.3g} ({METHOD_NAMES[self.method]})")


def format_p(p: float | None) -> str:
    if p is None:
        return "NA"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def se_from_ci(low: float, high: float, level: float | None = 95.0) -> float:
    """SE of a log ratio from its CI: (ln U - ln L) / (2 z), z from the stated level (95 if unknown)."""
    if low is None or high is None or low <= 0 or high <= low:
        raise MetaError(f"cannot derive an SE from the interval {low}-{high}")
    lvl = level if level and 50 < level < 100 else 95.0
    z = NormalDist().inv_cdf(0.5 + lvl / 200.0)
    return (math.log(high) - math.log(low)) / (2.0 * z)


def pool(yi: Sequence[float], sei: Sequence[float], method: str = "dl",
         level: float = 95.0) -> MetaResult:
    """Pool log effects `yi` with standard errors `sei` (fixed effect and `method` random effects)."""
    if method not in METHODS:
        raise MetaError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    k = len(yi)
    if k == 0:
        raise MetaError("no studies to pool")
    if len(sei) != k:
        raise MetaError("yi and sei differ in length")
    if any(not (s > 0 and math.isfinite(s)) for s in sei) or any(not math.isfinite(y) for y in yi):
        raise MetaError("every study needs a finite estimate and a positive standard error")
    vi = [s * s for s in sei]
    crit = NormalDist().inv_cdf(0.5 + level / 200.0)
    fixed = _weighted(yi, vi, 0.0, crit)
    w = [1.0 / v for v in vi]
    q = sum(wi * (y - fixed.estimate) ** 2 for wi, y in zip(w, yi))
    df = k - 1
    converged = True
    if k == 1:
        tau2 = 0.0
    elif method == "dl":
        c = sum(w) - sum(wi * wi for wi in w) / sum(w)
        tau2 = max(0.0, (q - df) / c)
    elif method == "pm":
        tau2, converged = _tau2_pm(yi, vi)
    else:
        tau2, converged = _tau2_reml(yi, vi)
    random = _weighted(yi, vi, tau2, crit)
    i2 = h2 = p_q = None
    if k > 1:
        i2 = max(0.0, (q - df) / q) * 100.0 if q > 0 else 0.0
        h2 = q / df
        p_q = chi2_sf(q, df)
    return MetaResult(k=k, fixed=fixed, random=random, method=method, tau2=tau2, q=q, df=df,
                      p_q=p_q, i2=i2, h2=h2, converged=converged, yi=tuple(yi), sei=tuple(sei))


def _weighted(yi: Sequence[float], vi: Sequence[float], tau2: float, crit: float) -> Pooled:
    w = [1.0 / (v + tau2) for v in vi]
    sw = sum(w)
    est = sum(wi * y for wi, y in zip(w, yi)) / sw
    se = math.sqrt(1.0 / sw)
    z = est / se
    p = 2.0 * NormalDist().cdf(-abs(z))
    return Pooled(estimate=est, se=se, ci_low=est - crit * se, ci_high=est + crit * se, z=z, p=p,
                  weights=tuple(100.0 * wi / sw for wi in w))


def _q_tau(yi: Sequence[float], vi: Sequence[float], tau2: float) -> float:
    w = [1.0 / (v + tau2) for v in vi]
    mu = sum(wi * y for wi, y in zip(w, yi)) / sum(w)
    return sum(wi * (y - mu) ** 2 for wi, y in zip(w, yi))


def _tau2_pm(yi: Sequence[float], vi: Sequence[float], tol: float = 1e-12) -> tuple[float, bool]:
    """Paule-Mandel: the tau² at which the generalised Q equals k - 1 (bisection; Q falls in tau²)."""
    target = len(yi) - 1
    if _q_tau(yi, vi, 0.0) <= target:
        return 0.0, True
    lo, hi = 0.0, max(1.0, max(vi))
    while _q_tau(yi, vi, hi) > target:
        hi *= 2.0
        if hi > 1e12:
            return hi, False
    for _ in range(300):
        mid = 0.5 * (lo + hi)
        if _q_tau(yi, vi, mid) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol * max(1.0, hi):
            break
    return 0.5 * (lo + hi), True


def _tau2_reml(yi: Sequence[float], vi: Sequence[float], tol: float = 1e-12,
               maxiter: int = 1000) -> tuple[float, bool]:
    """REML by the fixed-point iteration tau² = Σw²((y-μ)² - v)/Σw² + 1/Σw, truncated at 0."""
    tau2 = 0.0
    for _ in range(maxiter):
        w = [1.0 / (v + tau2) for v in vi]
        sw = sum(w)
        mu = sum(wi * y for wi, y in zip(w, yi)) / sw
        sw2 = sum(wi * wi for wi in w)
        new = sum(wi * wi * ((y - mu) ** 2 - v) for wi, y, v in zip(w, yi, vi)) / sw2 + 1.0 / sw
        new = max(0.0, new)
        if abs(new - tau2) < tol * max(1.0, tau2):
            return new, True
        tau2 = new
    return tau2, False


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X ~ chi²(df): the regularised upper incomplete gamma Q(df/2, x/2)."""
    if x <= 0:
        return 1.0
    return _gammaincc(df / 2.0, x / 2.0)


def _gammaincc(a: float, x: float) -> float:
    # Numerical Recipes: series for x < a + 1, Lentz continued fraction otherwise.
    lead = math.exp(-x + a * math.log(x) - math.lgamma(a))
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * lead)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return lead * h
