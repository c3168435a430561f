"""API error rate: a spike of 5xx on a critical route within the window.

Degraded needs a minimum count of errors *and* an error ratio significantly above the
trailing hour's (binomial tail, with a floor ratio), so two stray errors on a tiny site
stay quiet while a real spike on a busy one still stands out. A ratio far above the safe
line is critical at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..hookspecs import hookimpl
from ..signals import REQUEST
from ..stats import is_binomial_spike
from ..values import Health, Reading
from ..windows import SiteView


class ApiErrorCheck:
    name = "api_errors"
    interval: float | None = None
    timeout: float | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        for route in s.critical_routes:
            window = view.window(REQUEST, route)
            baseline = view.baseline(REQUEST, route)
            floor = max(baseline.ratio, s.api_error_ratio)
            errors, ratio = window.bad, window.ratio
            if window.total == 0 or ratio < s.api_error_recovery_ratio:
                health = Health.OK
            elif errors >= s.api_error_min_count and ratio >= s.api_error_critical_ratio:
                health = Health.CRITICAL
            elif is_binomial_spike(
                errors, window.total, baseline.ratio, min_count=s.api_error_min_count, floor=s.api_error_ratio, alpha=s.alpha
            ):
                health = Health.DEGRADED
            else:
                health = Health.ELEVATED
            yield Reading(
                check=self.name,
                site=view.site,
                key=route,
                area=s.area_for(route) or "other",
                status=health,
                subject=f"API Errors on {route} route",
                value=ratio,
                threshold=floor,
                affected_users=len(window.bad_users),
                detail={"errors": errors, "requests": window.total, "baseline_ratio": baseline.ratio},
            )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(ApiErrorCheck())
