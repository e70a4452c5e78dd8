"""Pooling maths: published values (BCG vaccine trials) and agreement with statsmodels."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.meta_analysis import combine_effects

from extractor.meta import MetaError, chi2_sf, pool, se_from_ci

# BCG vaccine trials (Colditz et al. 1994, JAMA 271:698), the example dataset of metafor
# (`dat.bcg`) and HSAUR (`BCG`): per trial (TB cases vaccinated, n vaccinated, TB cases
# control, n control). Counts as published in HSAUR's BCG data (Rdatasets csv/HSAUR/BCG.csv).
BCG = [
    (4, 123, 11, 139), (6, 306, 29, 303), (3, 231, 11, 220), (62, 13598, 248, 12867),
    (33, 5069, 47, 5808), (180, 1541, 372, 1451), (8, 2545, 10, 629), (505, 88391, 499, 88391),
    (29, 7499, 45, 7277), (17, 1716, 65, 1665), (186, 50634, 141, 27338), (5, 2498, 3, 2341),
    (27, 16913, 29, 17854),
]


def _bcg_log_rr() -> tuple[list[float], list[float]]:
    yi = [math.log((a / n1) / (c / n2)) for a, n1, c, n2 in BCG]
    sei = [math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2) for a, n1, c, n2 in BCG]
    return yi, sei


def test_bcg_fixed_and_dl_match_published_values() -> None:
    # Published values: metafor's test suite (tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r),
    # which checks rma() against Stata `metan ..., rr` (fixedi / randomi) to 4 decimals.
    yi, sei = _bcg_log_rr()
    r = pool(yi, sei, "dl")
    assert r.fixed.estimate == pytest.approx(-0.4303, abs=5e-5)
    assert r.fixed.ci_low == pytest.approx(-0.5097, abs=5e-5)
    assert r.fixed.ci_high == pytest.approx(-0.3509, abs=5e-5)
    assert r.fixed.z == pytest.approx(-10.6247, abs=5e-4)
    assert r.q == pytest.approx(152.2330, abs=5e-4)
    assert r.fixed.ratio == pytest.approx((0.6503, 0.6007, 0.7040), abs=5e-5)
    assert r.random.estimate == pytest.approx(-0.7141, abs=5e-5)
    assert (r.random.ci_low, r.random.ci_high) == pytest.approx((-1.0644, -0.3638), abs=5e-5)
    assert r.random.z == pytest.approx(-3.9952, abs=5e-4)
    assert r.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert r.i2 == pytest.approx(92.1173, abs=5e-4)
    assert r.random.ratio == pytest.approx((0.4896, 0.3449, 0.6950), abs=5e-5)
    assert r.df == 12 and r.p_q < 1e-20


def test_bcg_reml_matches_metafor() -> None:
    # metafor rma(yi, vi, method="REML") on dat.bcg prints tau^2 = 0.3132, estimate -0.7145
    # (metafor documentation / RoBMA vignette "Bayesian Meta-Analysis", metafor counterpart).
    yi, sei = _bcg_log_rr()
    r = pool(yi, sei, "reml")
    assert r.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert r.random.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert r.converged


def _assert_same_as_statsmodels(yi: list[float], sei: list[float]) -> None:
    eff, var = np.array(yi), np.array(sei) ** 2
    ours = {m: pool(yi, sei, m) for m in ("dl", "pm")}
    sm_dl = combine_effects(eff, var, method_re="dl")
    # statsmodels iterates PM until its estimating equation is within atol: tighten it.
    sm_pm = combine_effects(eff, var, method_re="pm", atol=1e-12, maxiter=500)
    assert ours["dl"].fixed.estimate == pytest.approx(sm_dl.mean_effect_fe, abs=1e-6)
    assert ours["dl"].fixed.se == pytest.approx(sm_dl.sd_eff_w_fe, abs=1e-6)
    assert ours["dl"].q == pytest.approx(sm_dl.q, abs=1e-6)
    # statsmodels does not truncate the DL tau² at zero; metafor and we do.
    assert ours["dl"].tau2 == pytest.approx(max(0.0, sm_dl.tau2), abs=1e-6)
    if sm_dl.tau2 >= 0:
        assert ours["dl"].random.estimate == pytest.approx(sm_dl.mean_effect_re, abs=1e-6)
        assert ours["dl"].random.se == pytest.approx(sm_dl.sd_eff_w_re, abs=1e-6)
    if sm_pm.tau2 == 0 and ours["pm"].tau2 > 0:
        # statsmodels stops at 0 when its first Newton step overshoots (estimating equation < 0);
        # check ours solves the Paule-Mandel equation Q(tau²) = k - 1 instead.
        w = 1 / (var + ours["pm"].tau2)
        mu = (w * eff).sum() / w.sum()
        assert (w * (eff - mu) ** 2).sum() == pytest.approx(len(yi) - 1, abs=1e-6)
        return
    assert ours["pm"].tau2 == pytest.approx(sm_pm.tau2, abs=1e-6)
    assert ours["pm"].random.estimate == pytest.approx(sm_pm.mean_effect_re, abs=1e-6)
    assert ours["pm"].random.se == pytest.approx(sm_pm.sd_eff_w_re, abs=1e-6)


def test_equals_statsmodels_on_bcg() -> None:
    _assert_same_as_statsmodels(*_bcg_log_rr())


def test_equals_statsmodels_on_hazard_ratios() -> None:
    # Five made-up trials reporting HR (95% CI): SE from the CI as extract.py derives it.
    trials = [(0.62, 0.48, 0.80), (0.85, 0.70, 1.03), (0.45, 0.30, 0.68), (1.02, 0.80, 1.30), (0.70, 0.55, 0.89)]
    yi = [math.log(hr) for hr, _, _ in trials]
    sei = [se_from_ci(lo, hi, 95) for _, lo, hi in trials]
    _assert_same_as_statsmodels(yi, sei)
    r = pool(yi, sei, "dl")
    assert r.tau2 > 0 and 0 < r.i2 < 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-2.0, 2.0), st.floats(0.05, 1.0)), min_size=2, max_size=25))
def test_equals_statsmodels_on_random_inputs(studies: list[tuple[float, float]]) -> None:
    _assert_same_as_statsmodels([y for y, _ in studies], [s for _, s in studies])


def test_homogeneous_studies_give_zero_tau2_and_random_equals_fixed() -> None:
    yi = [math.log(0.7), math.log(0.71), math.log(0.69)]
    sei = [0.2, 0.25, 0.3]
    for method in ("dl", "reml", "pm"):
        r = pool(yi, sei, method)
        assert r.tau2 == 0.0
        assert r.random.estimate == pytest.approx(r.fixed.estimate)
        assert r.i2 == 0.0
    assert sum(r.fixed.weights) == pytest.approx(100.0)


def test_one_study_pools_to_itself() -> None:
    r = pool([math.log(0.5)], [0.2])
    assert r.fixed.ratio[0] == pytest.approx(0.5)
    assert r.i2 is None and r.p_q is None and "1 study" in r.heterogeneity()


def test_se_from_ci_uses_the_stated_level() -> None:
    assert se_from_ci(0.5, 2.0, 95) == pytest.approx(math.log(4) / (2 * 1.959964), rel=1e-6)
    assert se_from_ci(0.5, 2.0, 90) == pytest.approx(math.log(4) / (2 * 1.644854), rel=1e-6)
    assert se_from_ci(0.5, 2.0, None) == se_from_ci(0.5, 2.0, 95)
    with pytest.raises(MetaError):
        se_from_ci(0.0, 2.0)


@pytest.mark.parametrize("yi, sei, method", [([], [], "dl"), ([0.1], [0.0], "dl"), ([0.1], [0.2], "xx"),
                                             ([0.1, 0.2], [0.2], "dl")])
def test_bad_inputs_raise_one_line_errors(yi: list[float], sei: list[float], method: str) -> None:
    with pytest.raises(MetaError) as e:
        pool(yi, sei, method)
    assert "\n" not in str(e.value)


def test_chi2_sf_matches_scipy() -> None:
    from scipy import stats
    for x, df in [(0.5, 1), (3.2, 4), (30.0, 3), (10.0, 10), (152.233, 12), (0.01, 20)]:
        assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-9)
