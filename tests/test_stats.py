"""Tests for the Poisson/binomial tails and the spike decisions built on them."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nextmonth_health.judge.stats import (
    beta_binomial_sf,
    binomial_sf,
    count_tail,
    is_binomial_spike,
    is_poisson_spike,
    negative_binomial_sf,
    past_line,
    poisson_sf,
    ratio_tail,
)


def _poisson_sf_direct(k: int, mu: float) -> float:
    """Reference for small inputs: 1 - sum of the pmf below k."""
    return 1.0 - sum(math.exp(-mu) * mu**j / math.factorial(j) for j in range(k))


def _binomial_sf_direct(k: int, n: int, p: float) -> float:
    return math.fsum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


class TestPoissonSf:
    def test_known_value(self) -> None:
        expected = 1 - math.exp(-1.0) * (1 + 1 + 0.5)
        assert poisson_sf(3, 1.0) == pytest.approx(expected, rel=1e-12)
        assert poisson_sf(3, 1.0) == pytest.approx(0.0803014, abs=1e-7)

    def test_k_one_is_one_minus_p0(self) -> None:
        for mu in (1e-9, 0.3, 7.0, 250.0):
            assert poisson_sf(1, mu) == pytest.approx(-math.expm1(-mu), rel=1e-10)

    @pytest.mark.parametrize("mu", [0.5, 3.0, 12.5, 40.0])
    def test_matches_direct_sum(self, mu: float) -> None:
        for k in range(60):
            ref = _poisson_sf_direct(k, mu)
            if ref > 1e-9:
                assert poisson_sf(k, mu) == pytest.approx(ref, rel=1e-8), k

    def test_edges(self) -> None:
        assert poisson_sf(0, 5.0) == 1.0
        assert poisson_sf(-3, 5.0) == 1.0
        assert poisson_sf(1, 0.0) == 0.0
        assert poisson_sf(1, -2.0) == 0.0
        assert poisson_sf(1, math.nan) == 0.0
        assert poisson_sf(0, math.nan) == 1.0
        assert poisson_sf(5, math.inf) == 1.0

    def test_huge_and_underflow(self) -> None:
        assert poisson_sf(10_000, 100.0) == 0.0
        tiny = poisson_sf(430, 100.0)
        assert 0.0 < tiny < 1e-120
        assert poisson_sf(1, 1e-300) == pytest.approx(1e-300, rel=1e-9)
        assert poisson_sf(10_000_000, 10_000_000.0) == pytest.approx(0.5, abs=1e-3)
        assert poisson_sf(10_040_000, 10_000_000.0) == pytest.approx(6.30547161523e-37, rel=1e-6)

    def test_large_mu_near_mean_is_half(self) -> None:
        # Mean of Poisson(mu) is mu, median ~ mu + 1/3: the tail at the mean is just over 1/2.
        for mu in (1e4, 1e5, 1e6):
            assert 0.5 < poisson_sf(int(mu), mu) < 0.51

    @settings(max_examples=200, deadline=None)
    @given(
        k=st.integers(min_value=0, max_value=5_000),
        mu=st.floats(min_value=0.0, max_value=5_000.0, allow_nan=False),
    )
    def test_monotone_and_bounded(self, k: int, mu: float) -> None:
        here = poisson_sf(k, mu)
        assert 0.0 <= here <= 1.0
        assert poisson_sf(k + 1, mu) <= here * (1 + 1e-9) + 1e-300
        assert poisson_sf(k, mu * 1.1 + 0.01) >= here * (1 - 1e-9)


class TestBinomialSf:
    def test_known_value(self) -> None:
        expected = 1 - 0.9**10 - 10 * 0.1 * 0.9**9
        assert binomial_sf(2, 10, 0.1) == pytest.approx(expected, rel=1e-12)
        assert binomial_sf(2, 10, 0.1) == pytest.approx(0.2639011, abs=1e-7)

    @pytest.mark.parametrize(("n", "p"), [(1, 0.3), (10, 0.1), (37, 0.5), (60, 0.93), (200, 0.02)])
    def test_matches_direct_sum(self, n: int, p: float) -> None:
        for k in range(n + 2):
            ref = _binomial_sf_direct(k, n, p)
            if ref > 1e-9:
                assert binomial_sf(k, n, p) == pytest.approx(ref, rel=1e-8), k

    def test_edges(self) -> None:
        assert binomial_sf(0, 10, 0.5) == 1.0
        assert binomial_sf(-1, 10, 0.5) == 1.0
        assert binomial_sf(11, 10, 0.5) == 0.0
        assert binomial_sf(1, 10, 0.0) == 0.0
        assert binomial_sf(1, 10, -0.5) == 0.0
        assert binomial_sf(1, 10, math.nan) == 0.0
        assert binomial_sf(10, 10, 1.0) == 1.0
        assert binomial_sf(3, 10, 1.5) == 1.0
        assert binomial_sf(1, 0, 0.5) == 0.0
        assert binomial_sf(10, 10, 0.3) == pytest.approx(0.3**10, rel=1e-12)

    def test_symmetry(self) -> None:
        # X ~ B(n, p)  <=>  n - X ~ B(n, 1 - p), so P(X >= k) = 1 - P(X' >= n - k + 1).
        for n, p in [(25, 0.3), (400, 0.07), (10_001, 0.5)]:
            for k in (1, n // 3, n // 2, n - 1):
                assert binomial_sf(k, n, p) == pytest.approx(1.0 - binomial_sf(n - k + 1, n, 1.0 - p), abs=1e-9)

    def test_poisson_limit(self) -> None:
        # The binomial/Poisson gap is O(k^2 / n), i.e. ~4e-5 here.
        n = 10_000_000
        for k in (1, 5, 10, 20):
            assert binomial_sf(k, n, 5.0 / n) == pytest.approx(poisson_sf(k, 5.0), rel=1e-4)

    def test_huge_n(self) -> None:
        v = binomial_sf(60_000, 1_000_000, 0.05)
        assert math.isfinite(v)
        assert 0.0 <= v < 1e-100
        assert 0.0 < binomial_sf(56_000, 1_000_000, 0.05) < 1e-150
        assert binomial_sf(5_000_001, 10_000_001, 0.5) == pytest.approx(0.5, abs=1e-6)
        assert binomial_sf(1, 10_000_000, 1e-300) == pytest.approx(1e-293, rel=1e-6)
        assert binomial_sf(10_000_000, 10_000_000, 1e-3) == 0.0

    @settings(max_examples=200, deadline=None)
    @given(
        n=st.integers(min_value=1, max_value=100_000),
        frac=st.floats(min_value=0.0, max_value=1.0),
        p=st.floats(min_value=0.0, max_value=1.0),
    )
    def test_monotone_and_bounded(self, n: int, frac: float, p: float) -> None:
        k = round(frac * n)
        here = binomial_sf(k, n, p)
        assert 0.0 <= here <= 1.0
        assert binomial_sf(k + 1, n, p) <= here * (1 + 1e-9) + 1e-300
        assert binomial_sf(k, n, min(1.0, p * 1.05 + 1e-6)) >= here * (1 - 1e-9)
        assert binomial_sf(k, n + 1, p) >= here * (1 - 1e-9)


class TestSpikes:
    def test_two_of_three_is_not_a_spike(self) -> None:
        assert not is_binomial_spike(2, 3, 0.0, min_count=5, floor=0.001, alpha=0.001)

    def test_fifty_of_thousand_vs_one_percent_is_a_spike(self) -> None:
        assert is_binomial_spike(50, 1000, 0.01, min_count=5, floor=0.001, alpha=0.001)

    def test_volume_does_not_hide_or_fake_spikes(self) -> None:
        assert not is_binomial_spike(120, 100_000, 0.001, min_count=5, floor=0.0, alpha=0.001)
        assert is_binomial_spike(300, 100_000, 0.001, min_count=5, floor=0.0, alpha=0.001)

    def test_floor_raises_baseline(self) -> None:
        assert is_binomial_spike(10, 1000, 0.0, min_count=5, floor=0.001, alpha=0.001)
        assert not is_binomial_spike(10, 1000, 0.0, min_count=5, floor=0.01, alpha=0.001)

    def test_binomial_degenerate_inputs(self) -> None:
        assert not is_binomial_spike(0, 0, 0.01, min_count=0, floor=0.0, alpha=0.05)
        assert not is_binomial_spike(5, 0, 0.01, min_count=1, floor=0.0, alpha=0.05)
        assert not is_binomial_spike(10, 100, 0.5, min_count=1, floor=0.0, alpha=0.05)
        assert is_binomial_spike(40, 100, math.nan, min_count=1, floor=0.1, alpha=0.001)
        assert is_binomial_spike(40, 100, -1.0, min_count=1, floor=0.1, alpha=0.001)

    def test_boundaries(self) -> None:
        # alpha=1 disables the significance test so only the thresholds decide.
        assert not is_binomial_spike(10, 1000, 0.01, min_count=1, floor=0.0, alpha=1.0)
        assert is_binomial_spike(11, 1000, 0.01, min_count=1, floor=0.0, alpha=1.0)
        assert is_binomial_spike(11, 1000, 0.01, min_count=11, floor=0.0, alpha=1.0)
        assert not is_binomial_spike(11, 1000, 0.01, min_count=12, floor=0.0, alpha=1.0)
        assert is_poisson_spike(3, 1.0, min_count=3, floor=0.0, factor=3.0, alpha=1.0)
        assert not is_poisson_spike(3, 1.0, min_count=4, floor=0.0, factor=3.0, alpha=1.0)
        assert not is_poisson_spike(2, 1.0, min_count=1, floor=0.0, factor=3.0, alpha=1.0)

    def test_poisson_spike(self) -> None:
        kw = {"min_count": 5, "floor": 1.0, "factor": 3.0, "alpha": 0.001}
        assert not is_poisson_spike(2, 0.0, **kw)
        assert not is_poisson_spike(4, 0.0, **kw)
        assert is_poisson_spike(8, 0.1, **kw)
        assert not is_poisson_spike(120, 100.0, **kw)
        assert is_poisson_spike(400, 100.0, **kw)
        assert is_poisson_spike(8, math.nan, **kw)

    def test_poisson_factor_blocks_significant_but_small_jumps(self) -> None:
        # 12_000 vs 10_000/window is ~20 sigma, but only a 1.2x jump.
        assert is_poisson_spike(12_000, 10_000.0, min_count=5, floor=1.0, factor=1.1, alpha=1e-6)
        assert not is_poisson_spike(12_000, 10_000.0, min_count=5, floor=1.0, factor=2.0, alpha=1e-6)

    def test_poisson_alpha_blocks_large_factor_on_tiny_counts(self) -> None:
        # 6 events vs a floor of 2 is 3x, but P(X >= 6 | mu=2) ~ 0.0166.
        assert not is_poisson_spike(6, 0.0, min_count=5, floor=2.0, factor=3.0, alpha=0.001)
        assert is_poisson_spike(6, 0.0, min_count=5, floor=2.0, factor=3.0, alpha=0.05)


try:
    import scipy.stats as scipy_stats
except ImportError:  # pragma: no cover - scipy is optional
    scipy_stats = None


@pytest.mark.skipif(scipy_stats is None, reason="scipy not installed")
def test_cross_check_against_scipy() -> None:
    # Kept to moderate sizes: scipy's own pdtrc loses digits (~3%) for mu ~ 1e7.
    rnd = random.Random(20240601)
    for _ in range(2_000):
        mu = 10 ** rnd.uniform(-3, 5)
        k = max(0, int(mu + rnd.gauss(0, 1) * 6 * math.sqrt(mu)) + rnd.randint(-3, 3))
        ref = float(scipy_stats.poisson.sf(k - 1, mu))
        if ref > 1e-280:
            assert poisson_sf(k, mu) == pytest.approx(ref, rel=1e-6), (k, mu)

        n = int(10 ** rnd.uniform(0, 5))
        p = 10 ** rnd.uniform(-6, 0) if rnd.random() < 0.8 else rnd.random()
        sd = math.sqrt(n * p * (1 - p))
        k = max(0, int(n * p + rnd.gauss(0, 1) * 6 * sd) + rnd.randint(-3, 3))
        ref = float(scipy_stats.binom.sf(k - 1, n, p))
        if ref > 1e-280:
            assert binomial_sf(k, n, p) == pytest.approx(ref, rel=1e-6), (k, n, p)


# The predictive tails: a window judged against what a baseline sample says normal is.


def _beta_binomial_sf_direct(k: int, n: int, a: float, b: float) -> float:
    def log_pmf(x: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(x + 1)
            - math.lgamma(n - x + 1)
            + math.lgamma(x + a)
            + math.lgamma(n - x + b)
            - math.lgamma(n + a + b)
            + math.lgamma(a + b)
            - math.lgamma(a)
            - math.lgamma(b)
        )

    return math.fsum(math.exp(log_pmf(x)) for x in range(k, n + 1))


def _negative_binomial_sf_direct(k: int, r: float, p: float) -> float:
    def pmf(x: int) -> float:
        return math.exp(math.lgamma(x + r) - math.lgamma(x + 1) - math.lgamma(r) + r * math.log(p) + x * math.log1p(-p))

    return 1.0 - math.fsum(pmf(x) for x in range(k))


class TestBetaBinomialSf:
    @pytest.mark.parametrize(
        ("n", "a", "b"), [(10, 0.5, 0.5), (150, 2.5, 180.5), (1200, 144.5, 14256.5), (40, 30.0, 3.0)]
    )
    def test_matches_direct_sum(self, n: int, a: float, b: float) -> None:
        for k in range(0, n + 1, max(1, n // 40)):
            ref = _beta_binomial_sf_direct(k, n, a, b)
            if ref > 1e-250:
                assert beta_binomial_sf(k, n, a, b) == pytest.approx(ref, rel=1e-9, abs=1e-15), k

    def test_edges(self) -> None:
        assert beta_binomial_sf(0, 10, 1.0, 1.0) == 1.0
        assert beta_binomial_sf(11, 10, 1.0, 1.0) == 0.0
        assert beta_binomial_sf(3, 10, 0.0, 1.0) == 0.0
        assert beta_binomial_sf(3, 10, 1.0, 0.0) == 1.0

    def test_a_sharp_baseline_is_the_binomial(self) -> None:
        # Beta(1e6 p, 1e6 (1 - p)) is all but a point mass at p.
        assert beta_binomial_sf(12, 300, 1e4, 99e4) == pytest.approx(binomial_sf(12, 300, 0.01), rel=1e-2)

    def test_an_uncertain_baseline_is_more_cautious(self) -> None:
        # Two errors in 180 requests: the usual ratio could well be 3 %, so 8 of 150 surprise less.
        assert beta_binomial_sf(8, 150, 2.5, 178.5) > 10 * binomial_sf(8, 150, 2.5 / 181)


class TestNegativeBinomialSf:
    @pytest.mark.parametrize(("r", "p"), [(0.5, 0.9), (12.5, 0.92), (300.0, 0.5), (3.0, 0.1)])
    def test_matches_direct_sum(self, r: float, p: float) -> None:
        for k in range(0, 200, 3):
            ref = _negative_binomial_sf_direct(k, r, p)
            if ref > 1e-9:
                assert negative_binomial_sf(k, r, p) == pytest.approx(ref, rel=1e-7), k

    def test_edges(self) -> None:
        assert negative_binomial_sf(0, 2.0, 0.5) == 1.0
        assert negative_binomial_sf(1, 0.0, 0.5) == 0.0
        assert negative_binomial_sf(1, 2.0, 1.0) == 0.0
        assert negative_binomial_sf(1, 2.0, 0.0) == 1.0


class TestRatioTail:
    def test_a_spotless_hour_is_judged_at_the_floor(self) -> None:
        assert ratio_tail(7, 150, 0, 14_400, floor=0.01) == binomial_sf(7, 150, 0.01)

    def test_the_baseline_ratio_with_its_uncertainty(self) -> None:
        assert ratio_tail(25, 1200, 144, 14_400, floor=0.01) == beta_binomial_sf(25, 1200, 144.5, 14_256.5)

    def test_more_history_means_sharper_answers(self) -> None:
        thin, thick = ratio_tail(12, 300, 3, 150, floor=0.01), ratio_tail(12, 300, 30, 1500, floor=0.01)
        assert thick < thin < 1.0

    def test_an_empty_baseline_proves_nothing(self) -> None:
        assert ratio_tail(60, 150, 0, 0, floor=0.01) > 0.1


class TestCountTail:
    def test_against_exposure_not_the_clock(self) -> None:
        # Twelve failures per 1,000 requests last hour: 40 in a window of 1,000 requests is a
        # storm, 40 in a window of 3,300 requests is a busy morning.
        assert count_tail(40, 1000, 144, 12_000) < 1e-8
        assert count_tail(40, 3300, 144, 12_000) > 0.3

    def test_the_floor(self) -> None:
        assert count_tail(5, 300, 0, 3600, floor=1.0) == poisson_sf(5, 1.0)
        assert count_tail(5, 0, 10, 3600, floor=1.0) == poisson_sf(5, 1.0)

    @settings(max_examples=100, deadline=None)
    @given(
        count=st.integers(min_value=0, max_value=500),
        usual=st.integers(min_value=0, max_value=5000),
        exposure=st.floats(min_value=1.0, max_value=1e5),
    )
    def test_bounded_and_monotone(self, count: int, usual: int, exposure: float) -> None:
        here = count_tail(count, exposure, usual, 1e5, floor=1.0)
        assert 0.0 <= here <= 1.0
        assert count_tail(count + 1, exposure, usual, 1e5, floor=1.0) <= here * (1 + 1e-9) + 1e-300


def test_past_line_is_the_lower_confidence_bound_past_the_line() -> None:
    assert not past_line(3, 30, 0.1, 1e-4), "10 % of 30: the point value is on the line"
    assert not past_line(0, 0, 0.1, 1e-4)
    assert past_line(15, 30, 0.1, 1e-4) == (binomial_sf(15, 30, 0.1) < 1e-4)
    assert past_line(15, 30, 0.1, 1e-4)
    assert not past_line(5, 30, 0.1, 1e-4), "17 % of 30 could still be 10 %"
