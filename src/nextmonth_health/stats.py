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
    "binomial_sf",
    "is_binomial_spike",
    "is_poisson_spike",
    "poisson_sf",
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
    return (
        math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + a * math.log(x)
        + b * math.log1p(-x)
        - math.log(a)
    )


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p).

    Uses P(X >= k) = I_p(k, n - k + 1), the regularised incomplete beta
    function, evaluating whichever side of the symmetry relation converges.
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
    a = float(k)
    b = float(n - k + 1)
    if p < (a + 1.0) / (a + b + 2.0):
        return min(1.0, math.exp(_log_beta_prefactor(a, b, p) + _beta_cf(a, b, p)))
    q = 1.0 - p
    lower = math.exp(_log_beta_prefactor(b, a, q) + _beta_cf(b, a, q))
    return min(1.0, max(0.0, 1.0 - lower))


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
