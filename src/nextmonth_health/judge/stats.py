"""Tail probabilities and spike tests used by the health checks.

A check alerts only when a count is *significantly* above its baseline: a tiny
site with two stray errors must stay quiet, while a large site must not be able
to hide a real spike inside its volume.  Raw ratios cannot do both, so the
checks ask "how unlikely is this count if nothing changed?" using Poisson
(events per window) and binomial (bad out of total) upper tails.

The tails are computed through the regularised incomplete gamma and beta
functions, evaluated in log-space with ``math.lgamma`` and continued
fractions, so they stay finite for counts up to ``10**7`` and simply return
``0.0`` when the true probability underflows a float.
"""

from __future__ import annotations

import math

__all__ = [
    "beta_binomial_sf",
    "binomial_sf",
    "count_tail",
    "is_binomial_spike",
    "is_poisson_spike",
    "negative_binomial_sf",
    "past_line",
    "poisson_sf",
    "ratio_tail",
]

_EPS = 1e-15
_TINY = 1e-300


def _clean(x: float) -> float:
    """Map NaN and negative rates to 0 so callers never see an exception."""
    x = float(x)
    if math.isnan(x) or x < 0.0:
        return 0.0
    return x


def _max_iter(*sizes: float) -> int:
    """Iteration budget: these expansions need O(sqrt(size)) terms near the mean."""
    return 200 + int(20.0 * math.sqrt(max(sizes)))


def _gamma_p_series(a: float, x: float) -> float:
    """log of sum_{n>=0} x^n / (a(a+1)...(a+n)); convergent and accurate for x < a + 1."""
    ap = a
    term = total = 1.0 / a
    for _ in range(_max_iter(a, x)):
        ap += 1.0
        term *= x / ap
        total += term
        if term < total * _EPS:
            break
    return math.log(total)


def _lentz(an: float, bn: float, c: float, d: float) -> tuple[float, float, float]:
    """One modified-Lentz step of a continued fraction: the new ``c``, ``d`` and the factor."""
    d = bn + an * d
    if abs(d) < _TINY:
        d = _TINY
    c = bn + an / c
    if abs(c) < _TINY:
        c = _TINY
    d = 1.0 / d
    return c, d, d * c


def _gamma_q_cf(a: float, x: float) -> float:
    """log of the continued fraction for Q(a, x) (modified Lentz); for x >= a + 1."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _max_iter(a, x)):
        b += 2.0
        c, d, delta = _lentz(-i * (i - a), b, c, d)
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.log(h)


def _log_gamma_prefactor(a: float, x: float) -> float:
    return a * math.log(x) - x - math.lgamma(a)


def poisson_sf(k: int, mu: float) -> float:
    """P(X >= k) for X ~ Poisson(mu).

    Uses the identity P(X >= k) = P(k, mu), the regularised lower incomplete
    gamma function, so no factorials or long sums of pmf terms are needed.
    """
    k = int(k)
    if k <= 0:
        return 1.0
    mu = _clean(mu)
    if mu <= 0.0:
        return 0.0
    if math.isinf(mu):
        return 1.0
    a = float(k)
    log_pre = _log_gamma_prefactor(a, mu)
    if mu < a + 1.0:
        return min(1.0, math.exp(log_pre + _gamma_p_series(a, mu)))
    q = math.exp(log_pre + _gamma_q_cf(a, mu))
    return min(1.0, max(0.0, 1.0 - q))


def _beta_cf(a: float, b: float, x: float) -> float:
    """log of the continued fraction for I_x(a, b); converges fast for x < (a+1)/(a+b+2)."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _max_iter(a, b)):
        m2 = 2 * m
        c, d, delta = _lentz(m * (b - m) * x / ((qam + m2) * (a + m2)), 1.0, c, d)
        h *= delta
        c, d, delta = _lentz(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), 1.0, c, d)
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.log(h)


def _log_beta_prefactor(a: float, b: float, x: float) -> float:
    """log of x^a (1-x)^b / (a B(a, b)) without ever forming the huge gammas."""
    return math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x) - math.log(a)


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 < x < 1,
    evaluating whichever side of the symmetry relation converges."""
    if x < (a + 1.0) / (a + b + 2.0):
        return min(1.0, math.exp(_log_beta_prefactor(a, b, x) + _beta_cf(a, b, x)))
    y = 1.0 - x
    lower = math.exp(_log_beta_prefactor(b, a, y) + _beta_cf(b, a, y))
    return min(1.0, max(0.0, 1.0 - lower))


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p).

    Uses P(X >= k) = I_p(k, n - k + 1), the regularised incomplete beta function.
    """
    k = int(k)
    n = int(n)
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    p = _clean(p)
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return _betainc(float(k), float(n - k + 1), p)


def negative_binomial_sf(k: int, r: float, p: float) -> float:
    """P(X >= k) for X ~ NegativeBinomial(r, p): failures before the r-th success, each
    try succeeding with probability p; ``r`` may be any positive number.

    It is what a Poisson count looks like when its rate is itself uncertain (a gamma
    posterior): the count a window can show given what a baseline saw. Uses
    P(X >= k) = I_(1-p)(k, r).
    """
    k = int(k)
    if k <= 0:
        return 1.0
    r = _clean(r)
    p = _clean(p)
    if r <= 0.0 or p >= 1.0:
        return 0.0
    if p <= 0.0:
        return 1.0
    return _betainc(float(k), r, 1.0 - p)


def beta_binomial_sf(k: int, n: int, a: float, b: float) -> float:
    """P(X >= k) for X ~ BetaBinomial(n, a, b): ``n`` tries whose success probability is
    itself uncertain, distributed Beta(a, b).

    It is what a ratio looks like when the usual ratio is only known from a sample (a
    beta posterior): how many of a window's ``n`` requests can fail given what a
    baseline saw. The tail is summed term by term from the nearer end, in log space; the
    terms fall off geometrically past the mode, so a far tail costs a few dozen terms.
    """
    k = int(k)
    n = int(n)
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    a = _clean(a)
    b = _clean(b)
    if a <= 0.0:
        return 0.0
    if b <= 0.0:
        return 1.0
    log_norm = math.lgamma(n + 1) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) - math.lgamma(n + a + b)

    def log_pmf(x: int) -> float:
        return log_norm - math.lgamma(x + 1) - math.lgamma(n - x + 1) + math.lgamma(x + a) + math.lgamma(n - x + b)

    mean = n * a / (a + b)
    upper = k > mean
    x = k if upper else k - 1
    term = math.exp(log_pmf(x))
    total = term
    while True:
        if upper:
            if x >= n:
                break
            term *= (n - x) * (x + a) / ((x + 1) * (n - x - 1 + b))
            x += 1
        else:
            if x <= 0:
                break
            term *= x * (n - x + b) / ((n - x + 1) * (x - 1 + a))
            x -= 1
        total += term
        if term < total * _EPS and (x > mean if upper else x < mean):
            break
    total = min(1.0, total)
    return total if upper else max(0.0, 1.0 - total)


def is_poisson_spike(
    count: int,
    baseline_rate: float,
    *,
    min_count: int,
    floor: float,
    factor: float,
    alpha: float,
) -> bool:
    """True when ``count`` events is both large and improbable under the baseline.

    ``floor`` keeps a near-zero baseline from turning every stray event into a
    spike; ``factor`` demands a practically relevant jump, not just a
    statistically detectable one on a busy site.
    """
    count = int(count)
    if count < min_count:
        return False
    rate = max(_clean(baseline_rate), _clean(floor))
    if count < _clean(factor) * rate:
        return False
    return poisson_sf(count, rate) < alpha


def is_binomial_spike(
    bad: int,
    total: int,
    baseline_ratio: float,
    *,
    min_count: int,
    floor: float,
    alpha: float,
) -> bool:
    """True when ``bad`` out of ``total`` is both large and improbable under the baseline ratio."""
    bad = int(bad)
    total = int(total)
    if total <= 0 or bad < min_count:
        return False
    ratio = max(_clean(baseline_ratio), _clean(floor))
    if bad / total <= ratio:
        return False
    return binomial_sf(bad, total, ratio) < alpha


def ratio_tail(bad: int, total: int, usual_bad: int, usual_total: int, *, floor: float = 0.0) -> float:
    """How likely ``bad`` or more failures out of ``total`` are if the ratio were still
    what a baseline showed (``usual_bad`` out of ``usual_total``), never less than ``floor``.

    The usual ratio is only known from its sample, so it is taken with its uncertainty:
    a Beta posterior (Jeffreys prior) of the baseline, and the window's count from the
    beta-binomial it predicts. An hour of 30 requests says little about normal, and the
    answer is cautious; an hour of 14,400 says much, and it is sharp. A baseline whose
    ratio is under ``floor`` is taken as the floor itself (a binomial), so a spotless hour
    does not make one error look impossible.
    """
    a = _clean(usual_bad) + 0.5
    b = max(_clean(usual_total) - _clean(usual_bad), 0.0) + 0.5
    floor = _clean(floor)
    if a < floor * (a + b):
        return binomial_sf(bad, total, floor)
    return beta_binomial_sf(bad, total, a, b)


def count_tail(count: int, exposure: float, usual_count: float, usual_exposure: float, *, floor: float = 0.0) -> float:
    """How likely ``count`` or more events are in a window of ``exposure`` if they still
    came as often as a baseline showed (``usual_count`` in ``usual_exposure``), never
    expecting fewer than ``floor`` in the window.

    Exposure is whatever the events come with: seconds, or better the site's requests,
    so that a busier hour expects more failed sign-ins and a half-filled baseline (a
    site that started twenty minutes ago) still gives the right rate. As with
    :func:`ratio_tail`, the usual rate is taken with its uncertainty (a gamma posterior),
    which makes the window's count negative-binomial: a baseline of a few events gives a
    cautious answer, a long busy one a sharp one. Below the floor, it is Poisson at the
    floor.
    """
    usual_exposure = _clean(usual_exposure)
    exposure = _clean(exposure)
    if usual_exposure <= 0.0 or exposure <= 0.0:
        return poisson_sf(count, floor)
    shape = _clean(usual_count) + 0.5
    if shape * exposure / usual_exposure < _clean(floor):
        return poisson_sf(count, floor)
    return negative_binomial_sf(count, shape, usual_exposure / (usual_exposure + exposure))


def past_line(bad: int, total: int, line: float, alpha: float) -> bool:
    """Whether ``bad`` of ``total`` are surely more than ``line`` of them: so many would be
    a less-than-``alpha`` chance if no more than ``line`` of them went bad — the ratio's
    lower confidence bound is past the line. Answers at once, with no tail to compute,
    when the ratio itself is not past the line (what a healthy pass asks every time).
    """
    return total > 0 and bad > line * total and binomial_sf(bad, total, line) < alpha
