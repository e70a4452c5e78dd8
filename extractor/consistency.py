"""Internal-consistency checks of one extracted result, and ln(ratio) with its SE for meta-analysis.

Published numbers are sometimes wrong (typos, a CI copied from another row, a p-value that
contradicts its interval). We never fix them: we store flags next to the record, so a reviewer
can filter or look again. Every check allows for the rounding of numbers as written.
"""
from __future__ import annotations

import math
import re
from statistics import NormalDist

__all__ = ["check", "log_asymmetry", "parse_p", "z_for_level", "FLAGS", "ASYMMETRY_TOLERANCE",
           "COUNT_TOLERANCE"]

RATIO_KINDS = frozenset({"hazard_ratio", "odds_ratio", "risk_ratio", "ratio"})
RATE_KINDS = frozenset({"rate", "percent"})

# ln(value) may sit off the midpoint of ln(low), ln(high) by this share of the half-width, after
# allowing every number its rounding. Of the 930 cued ratios with a CI found in 5,286 real
# abstracts (../shared/corpus/real.xml.gz), 4.5% are asymmetric beyond what rounding explains
# (typos, CIs symmetric on the linear scale, exact CIs) and 2.4% by more than this tolerance,
# which spares the slight asymmetry of exact CIs (flagged ratios leave the meta-analysis).
ASYMMETRY_TOLERANCE = 0.02
# percentage points between a written percent and 100 * n / n_total (rounding, truncation)
COUNT_TOLERANCE = 1.0

FLAGS = {
    "non_finite": "value or CI bound is NaN or infinite",
    "nonpositive_ratio": "a ratio at or below 0",
    "nonpositive_ci": "a ratio CI bound at or below 0",
    "ci_not_ordered": "lower CI bound not below the upper one",
    "value_outside_ci": "the point estimate lies outside its CI",
    "asymmetric_ci": "ln(ratio) far from the midpoint of ln(lower), ln(upper)",
    "p_ci_disagree": "p-value and CI disagree about significance at the CI's level",
    "unparsed_p_value": "the p-value text is not a number we can read",
    "unusual_ci_level": "a CI level outside 50-99.99%: 95 is assumed for the SE",
    "p_out_of_range": "a p-value above 1",
    "rate_over_100": "a percentage above 100",
    "negative_value": "a percentage or duration below 0",
    "ci_outside_0_100": "a percentage CI bound outside 0-100",
    "count_exceeds_total": "n larger than n_total",
    "zero_total": "n_total is 0",
    "count_percent_mismatch": "the percent differs from 100 * n / n_total beyond rounding",
}

_P = re.compile(r"^\s*(?P<op><=|>=|[<>≤≥=])?\s*(?P<num>\d*\.?\d+)(?:\s*[x×]\s*10\s*-\s*(?P<exp>\d+)|e-(?P<exp2>\d+))?\s*$")


def _half_unit(x: float) -> float:
    """Half a unit of the last written decimal of x (0.38 -> 0.005); x came from written text."""
    s = repr(float(x))
    if "e" in s or "." not in s:
        return 0.5
    decimals = len(s.split(".")[1].rstrip("0")) if s.split(".")[1].rstrip("0") else 0
    return 0.5 * 10 ** -decimals


def _level(level: float | None) -> float:
    """The CI level to compute with: as stated when plausible (50-99.99), else 95."""
    return float(level) if level is not None and 50 <= level < 100 else 95.0


def z_for_level(level: float | None) -> float:
    """Two-sided normal quantile for a CI level in percent (95 when unstated or implausible)."""
    return NormalDist().inv_cdf(1 - (1 - _level(level) / 100) / 2)


def log_asymmetry(value: float, low: float, high: float) -> float:
    """Smallest |ln v - mid| / half-width over the rounding box of the three numbers (0 = symmetric)."""
    hv, hl, hu = _half_unit(value), _half_unit(low), _half_unit(high)
    if min(value, low, high) <= 0 or high <= low or low - hl <= 0 or value - hv <= 0:
        return 0.0
    d_min = math.log(value - hv) - (math.log(low + hl) + math.log(high + hu)) / 2
    d_max = math.log(value + hv) - (math.log(low - hl) + math.log(high - hu)) / 2
    if d_min <= 0 <= d_max:
        return 0.0
    return min(abs(d_min), abs(d_max)) / ((math.log(high) - math.log(low)) / 2)


def parse_p(p_value: str) -> tuple[float, float] | None:
    """The range a written p-value allows: "<0.001" -> (0, 0.001), "0.03" -> (0.025, 0.035)."""
    m = _P.match(p_value.replace(",", "."))
    if not m:
        return None
    x = float(m.group("num"))
    exp = m.group("exp") or m.group("exp2")
    if exp:
        x *= 10 ** -int(exp)
    op = m.group("op") or "="
    if op in ("<", "≤", "<="):
        return 0.0, x
    if op in (">", "≥", ">="):
        return x, 1.0
    h = 0.5 * 10 ** -len(m.group("num").split(".")[1]) if "." in m.group("num") and not exp else 0.0
    return max(0.0, x - h), x + h


def _finite(*xs: float | None) -> bool:
    return all(x is None or math.isfinite(x) for x in xs)


def _ratio(value: float, low: float | None, high: float | None, level: float | None,
           p_value: str | None, flags: list[str]) -> tuple[float | None, float | None]:
    if value <= 0:
        flags.append("nonpositive_ratio")
    log_value = math.log(value) if value > 0 else None
    se = None
    if low is not None and high is not None:
        if low <= 0 or high <= 0:
            flags.append("nonpositive_ci")
        if low >= high:
            flags.append("ci_not_ordered")
        elif not (low - _half_unit(low) <= value <= high + _half_unit(high)):
            flags.append("value_outside_ci")
        elif value > 0 and low > 0:
            if log_asymmetry(value, low, high) > ASYMMETRY_TOLERANCE:
                flags.append("asymmetric_ci")
            se = (math.log(high) - math.log(low)) / (2 * z_for_level(level))
        if p_value is not None and low < high and low > 0:
            rng = parse_p(p_value)
            if rng is not None and rng[0] <= 1:
                alpha = 1 - _level(level) / 100
                excludes_one = low > 1 or high < 1
                includes_one = low < 1 < high
                if (excludes_one and rng[0] > alpha) or (includes_one and rng[1] < alpha):
                    flags.append("p_ci_disagree")
    return log_value, se


def _rate(value: float, low: float | None, high: float | None, n: int | None, n_total: int | None,
          flags: list[str]) -> None:
    if value > 100:
        flags.append("rate_over_100")
    if value < 0:
        flags.append("negative_value")
    if low is not None and high is not None and (low < 0 or high > 100):
        flags.append("ci_outside_0_100")
    if n is not None and n_total is not None:
        if n_total == 0:
            flags.append("zero_total")
        elif n > n_total:
            flags.append("count_exceeds_total")
        elif abs(100.0 * n / n_total - value) > COUNT_TOLERANCE:
            flags.append("count_percent_mismatch")


def check(kind: str, value: float, ci_low: float | None = None, ci_high: float | None = None,
          ci_level: float | None = None, p_value: str | None = None, n: int | None = None,
          n_total: int | None = None) -> tuple[list[str], float | None, float | None]:
    """Flags for one result, and (ratios only) ln(value) and its SE from the CI.

    `kind` is a Measurement kind (hazard_ratio, odds_ratio, risk_ratio, rate, median) or a
    Mention type (ratio, percent, duration). Never raises on odd numbers: it flags them.
    """
    flags: list[str] = []
    if not _finite(value, ci_low, ci_high):
        return ["non_finite"], None, None
    if ci_level is not None and not 50 <= ci_level < 100:
        flags.append("unusual_ci_level")
    if p_value is not None:
        rng = parse_p(p_value)
        if rng is None:
            flags.append("unparsed_p_value")
        elif rng[0] > 1:
            flags.append("p_out_of_range")
    log_value = se = None
    if kind in RATIO_KINDS:
        log_value, se = _ratio(value, ci_low, ci_high, ci_level, p_value, flags)
    else:
        if ci_low is not None and ci_high is not None:
            if ci_low >= ci_high:
                flags.append("ci_not_ordered")
            elif not (ci_low - _half_unit(ci_low) <= value <= ci_high + _half_unit(ci_high)):
                flags.append("value_outside_ci")
        if kind in RATE_KINDS:
            _rate(value, ci_low, ci_high, n, n_total, flags)
        elif value < 0:
            flags.append("negative_value")
    return flags, log_value, se
