"""API error rate: a spike of 5xx on a critical route within the window.

Degraded needs a minimum count of errors, an error ratio at least ``api_error_spike_factor``
times the trailing hour's (never judged against less than the ``api_error_ratio`` floor)
*and* a binomial tail test against that reference, so two stray errors on a tiny site stay
quiet while a real spike on a busy one still stands out. A ratio above the safe line is
critical at once. A route has recovered once its ratio is under 1.5 times the usual one
(or ``api_error_recovery_ratio``), the usual one being frozen when the incident opened,
because by then the trailing hour is full of the incident itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..hookspecs import hookimpl
from ..signals import REQUEST
from ..stats import binomial_sf
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
            incident = view.incident(self.name, route)
            usual = incident.threshold if incident is not None and incident.threshold is not None else None
            if usual is None:
                usual = view.baseline(REQUEST, route).ratio
            reference = max(usual, s.api_error_ratio)
            errors, ratio = window.bad, window.ratio
            significant = errors >= s.api_error_min_count
            if window.total == 0 or ratio < max(s.api_error_recovery_ratio, 1.5 * usual):
                health = Health.OK
            elif significant and ratio >= s.api_error_critical_ratio:
                health = Health.CRITICAL
            elif (
                significant
                and ratio >= s.api_error_spike_factor * reference
                and binomial_sf(errors, window.total, reference) < s.alpha
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
                threshold=usual,
                affected_users=view.affected(health, self.name, route, (REQUEST, route, True)),
                detail={"errors": errors, "requests": window.total, "reference_ratio": reference},
            )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(ApiErrorCheck())
