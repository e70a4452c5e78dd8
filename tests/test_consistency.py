"""consistency.check: each flag, ln(ratio) and SE, and no exception on any floats."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractor.consistency import FLAGS, check, log_asymmetry, parse_p, z_for_level


def flags(*a, **k) -> list[str]:
    return check(*a, **k)[0]


def test_clean_hazard_ratio_has_no_flags_and_gives_log_and_se() -> None:
    f, log_value, se = check("hazard_ratio", 0.38, 0.25, 0.59, 95, "<0.001")
    assert f == []
    assert log_value == pytest.approx(math.log(0.38))
    assert se == pytest.approx((math.log(0.59) - math.log(0.25)) / (2 * 1.959964), rel=1e-5)


def test_se_uses_the_stated_level() -> None:
    se95 = check("odds_ratio", 1.5, 1.1, 2.0, 95)[2]
    se90 = check("odds_ratio", 1.5, 1.1, 2.0, 90)[2]
    se_default = check("odds_ratio", 1.5, 1.1, 2.0, None)[2]
    assert se_default == se95
    assert se90 == pytest.approx(se95 * 1.959964 / 1.644854, rel=1e-5)
    assert z_for_level(97.5) == pytest.approx(2.241403, rel=1e-5)
    assert z_for_level(99) == pytest.approx(2.575829, rel=1e-5)


def test_implausible_level_falls_back_to_95() -> None:
    f, _, se = check("hazard_ratio", 0.7, 0.5, 0.98, 1e-56)
    assert "unusual_ci_level" in f
    assert se == check("hazard_ratio", 0.7, 0.5, 0.98, 95)[2]


def test_value_outside_ci() -> None:
    assert "value_outside_ci" in flags("hazard_ratio", 0.9, 0.25, 0.59)
    assert "value_outside_ci" in flags("median", 3.0, 4.0, 6.0)
    assert "value_outside_ci" in flags("rate", 30.0, 40.0, 60.0)
    assert "value_outside_ci" not in flags("hazard_ratio", 0.59, 0.25, 0.59)  # on the bound is fine


def test_ci_not_ordered() -> None:
    assert "ci_not_ordered" in flags("risk_ratio", 0.7, 0.9, 0.5)
    assert "ci_not_ordered" in flags("median", 7.0, 9.0, 5.0)


def test_asymmetric_ci_beyond_rounding() -> None:
    assert "asymmetric_ci" in flags("hazard_ratio", 0.80, 0.30, 0.85)
    # symmetric on the log scale, and a near-miss explained by rounding to 2 decimals: no flag
    assert "asymmetric_ci" not in flags("hazard_ratio", 0.50, 0.25, 1.00)
    assert "asymmetric_ci" not in flags("hazard_ratio", 0.38, 0.25, 0.59)
    assert log_asymmetry(0.5, 0.25, 1.0) == 0.0
    assert log_asymmetry(0.80, 0.30, 0.85) > 0.05


def test_p_disagrees_with_ci() -> None:
    assert "p_ci_disagree" in flags("hazard_ratio", 0.70, 0.55, 0.90, 95, "0.40")   # CI excludes 1, p large
    assert "p_ci_disagree" in flags("odds_ratio", 1.10, 0.90, 1.40, 95, "<0.001")   # CI holds 1, p tiny
    assert "p_ci_disagree" not in flags("odds_ratio", 1.10, 0.90, 1.40, 95, "0.35")
    assert "p_ci_disagree" not in flags("hazard_ratio", 0.70, 0.55, 0.90, 95, "=0.004")
    # at 99% CI a p of 0.03 with a CI holding 1 is consistent
    assert "p_ci_disagree" not in flags("hazard_ratio", 0.80, 0.62, 1.03, 99, "0.03")


def test_nonpositive_ratio_and_ci() -> None:
    f, log_value, se = check("hazard_ratio", 0.0, -0.1, 0.5)
    assert "nonpositive_ratio" in f and "nonpositive_ci" in f
    assert log_value is None and se is None


def test_rates() -> None:
    assert "rate_over_100" in flags("rate", 112.0)
    assert "negative_value" in flags("rate", -3.0)
    assert "ci_outside_0_100" in flags("rate", 95.0, 90.0, 101.0)
    assert "count_exceeds_total" in flags("rate", 50.0, n=60, n_total=50)
    assert "zero_total" in flags("rate", 0.0, n=0, n_total=0)
    assert "count_percent_mismatch" in flags("rate", 30.0, n=12, n_total=95)
    assert flags("rate", 12.6, n=12, n_total=95) == []
    assert flags("percent", 91.3, n=63, n_total=69) == []


def test_p_values() -> None:
    assert parse_p("<0.001") == (0.0, 0.001)
    assert parse_p("<.001") == (0.0, 0.001)
    assert parse_p("0.03") == pytest.approx((0.025, 0.035))
    assert parse_p(">0.05") == (0.05, 1.0)
    assert parse_p("1.2x10-5")[1] == pytest.approx(1.2e-5)  # type: ignore[index]
    assert parse_p("n.s.") is None
    assert "unparsed_p_value" in flags("hazard_ratio", 0.5, 0.3, 0.8, p_value="ns")
    assert "p_out_of_range" in flags("hazard_ratio", 0.5, 0.3, 0.8, p_value="3.2")


def test_non_finite() -> None:
    assert check("hazard_ratio", math.nan) == (["non_finite"], None, None)
    assert check("median", 3.0, math.inf, 4.0)[0] == ["non_finite"]


def test_every_flag_is_documented() -> None:
    seen = set()
    for args, kw in [(("hazard_ratio", 0.9, 0.25, 0.59), {}), (("risk_ratio", 0.7, 0.9, 0.5), {}),
                     (("hazard_ratio", 0.80, 0.30, 0.85), {}), (("hazard_ratio", 0.7, 0.55, 0.9, 95, "0.4"), {}),
                     (("hazard_ratio", 0.0, -0.1, 0.5), {}), (("rate", 112.0, -1.0, 101.0), {}),
                     (("rate", 50.0), {"n": 60, "n_total": 50}), (("rate", 0.0), {"n": 0, "n_total": 0}),
                     (("rate", 30.0), {"n": 12, "n_total": 95}), (("hazard_ratio", 0.5), {"p_value": "x"}),
                     (("median", -1.0), {}), (("hazard_ratio", math.nan), {}),
                     (("hazard_ratio", 0.5), {"p_value": "4"}), (("hazard_ratio", 1.0, 0.5, 1.0, 1e-56), {})]:
        seen.update(check(*args, **kw)[0])
    assert seen <= set(FLAGS)
    assert seen == set(FLAGS)


_F = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["hazard_ratio", "odds_ratio", "risk_ratio", "rate", "median", "ratio", "percent"]),
       st.floats(allow_nan=True, allow_infinity=True), _F, _F, _F,
       st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["<0.001", "0.03", "<.001", "1e-5"])),
       st.one_of(st.none(), st.integers(-5, 10**6)), st.one_of(st.none(), st.integers(-5, 10**6)))
def test_arbitrary_inputs_never_raise(kind, value, low, high, level, p, n, total) -> None:
    f, log_value, se = check(kind, value, low, high, level, p, n, total)
    assert set(f) <= set(FLAGS)
    assert log_value is None or math.isfinite(log_value)
    assert se is None or (math.isfinite(se) and se > 0)
