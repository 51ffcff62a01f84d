"""fgvc_ref.stats against scipy (test-only): Student's t, Welch's interval and p, and the seed-count rule."""

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fgvc_ref.stats import betainc, pooled_sd, seeds_needed, t_cdf, t_ppf, welch

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

RTOL = 1e-9  # continued fraction to 1e-15 and bisection to 1e-12: far tighter than any reported digit
accuracies = st.lists(st.floats(20.0, 95.0, allow_nan=False), min_size=2, max_size=8)


# --- equivalence ---------------------------------------------------------------------------------


@given(st.floats(0.05, 50.0), st.floats(0.05, 50.0), st.floats(0.0, 1.0))
def test_betainc_equals_scipy(a, b, x):
    assert betainc(a, b, x) == pytest.approx(float(scipy_special.betainc(a, b, x)), rel=RTOL, abs=1e-12)


@given(st.floats(-40.0, 40.0), st.floats(0.5, 200.0))
def test_t_cdf_equals_scipy(t, df):
    assert t_cdf(t, df) == pytest.approx(float(scipy_stats.t.cdf(t, df)), rel=RTOL, abs=1e-12)


@given(st.floats(0.001, 0.999), st.floats(1.0, 200.0))
def test_t_ppf_equals_scipy(q, df):
    assert t_ppf(q, df) == pytest.approx(float(scipy_stats.t.ppf(q, df)), rel=1e-8, abs=1e-9)


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on nearly equal samples
@given(accuracies, accuracies)
def test_welch_interval_and_p_equal_scipy_ttest_ind_unequal_var(a, b):
    ours = welch(a, b)
    ref = scipy_stats.ttest_ind(b, a, equal_var=False)
    if not math.isfinite(ref.statistic):  # zero spread on both sides: scipy says nan, we say the difference itself
        assert ours.low == ours.high == ours.diff
        return
    ci = ref.confidence_interval(0.95)
    assert ours.diff == pytest.approx(sum(b) / len(b) - sum(a) / len(a), abs=1e-9)
    assert ours.df == pytest.approx(float(ref.df), rel=1e-9)
    assert ours.p == pytest.approx(float(ref.pvalue), rel=1e-7, abs=1e-12)
    assert (ours.low, ours.high) == pytest.approx((float(ci.low), float(ci.high)), rel=1e-8, abs=1e-8)


# --- properties ----------------------------------------------------------------------------------


@given(accuracies, accuracies)
def test_verdict_is_the_interval_excluding_zero_and_agrees_with_p(a, b):
    s = welch(a, b)
    assert s.distinguishable == (s.low > 0 or s.high < 0)
    if math.isfinite(s.df) and abs(s.p - 0.05) > 1e-6:
        assert s.distinguishable == (s.p < 0.05)


@given(st.floats(0.1, 10.0), st.floats(0.1, 5.0))
def test_seeds_needed_reach_80_percent_power_by_the_exact_noncentral_t(delta, spread):
    """At the returned n the exact power (noncentral t) is >= 0.79, and at n - 1 it is below 0.81."""
    n = seeds_needed(delta, spread)
    assume(n is not None and n > 2)  # scipy's noncentral t is nan at 2 degrees of freedom and a large shift

    def power(k):
        df, nc = 2 * k - 2, delta / (spread * math.sqrt(2.0 / k))
        q = scipy_stats.t.ppf(0.975, df)
        return scipy_stats.nct.sf(q, df, nc) + scipy_stats.nct.cdf(-q, df, nc)

    assert power(n) >= 0.79
    assert power(n - 1) < 0.81


def test_seeds_needed_grows_as_the_step_shrinks_and_is_none_for_a_zero_step():
    assert seeds_needed(0.0, 1.0) is None
    counts = [seeds_needed(d, 2.0) for d in (4.0, 2.0, 1.0, 0.5)]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert seeds_needed(3.0, 0.0) == 2


# --- examples ------------------------------------------------------------------------------------


def test_a_clear_step_is_distinguishable_and_a_noisy_one_is_not():
    assert welch([68.1, 67.6, 68.7], [54.9, 53.3, 56.5]).distinguishable
    assert not welch([65.4, 64.0, 66.8], [65.3, 63.1, 67.5]).distinguishable


def test_pooled_sd_of_equal_spreads_is_that_spread():
    assert pooled_sd([1.0, 2.0, 3.0], [11.0, 12.0, 13.0]) == pytest.approx(1.0)


def test_welch_refuses_a_single_seed():
    with pytest.raises(ValueError, match=">= 2 seeds"):
        welch([1.0], [2.0, 3.0])
