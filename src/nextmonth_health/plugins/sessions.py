"""Session failures: failed logins plus expired sessions, against the trailing hour.

A spike is a Poisson tail test of the window's count against the baseline rate scaled to
the window, with a floor rate so that a quiet hour does not make one failure look like a
storm, a minimum count, and a minimum multiple of the baseline. While an incident is open
the baseline it opened against is kept (the trailing hour fills up with the incident).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..hookspecs import hookimpl
from ..signals import LOGIN, SESSION_EXPIRED
from ..stats import is_poisson_spike, poisson_sf
from ..values import Health, Reading
from ..windows import SiteView


class SessionFailureCheck:
    name = "session_failures"
    interval: float | None = None
    timeout: float | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        logins, expiries = view.window(LOGIN), view.window(SESSION_EXPIRED)
        count = logins.bad + expiries.total
        incident = view.incident(self.name, "")
        if incident is not None and incident.threshold is not None:
            expected = incident.threshold
        else:
            past = view.baseline(LOGIN).bad + view.baseline(SESSION_EXPIRED).total
            expected = past * s.window_seconds / s.baseline_seconds
        mu = max(expected, s.session_floor)
        if count < s.session_min_count or count <= s.session_recovery_factor * mu:
            health = Health.OK
        elif (
            count >= 2 * s.session_min_count
            and count >= s.session_critical_factor * mu
            and poisson_sf(count, mu) < s.alpha
        ):
            health = Health.CRITICAL
        elif is_poisson_spike(
            count, expected, min_count=s.session_min_count, floor=s.session_floor, factor=s.session_spike_factor, alpha=s.alpha
        ):
            health = Health.DEGRADED
        else:
            health = Health.ELEVATED
        yield Reading(
            check=self.name,
            site=view.site,
            key="",
            area="login",
            status=health,
            subject="Session failures (failed logins and expired sessions)",
            value=float(count),
            threshold=expected,
            affected_users=view.affected(health, self.name, "", (LOGIN, None, True), (SESSION_EXPIRED, None, False)),
            detail={"failed_logins": logins.bad, "expired_sessions": expiries.total, "expected": expected},
        )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(SessionFailureCheck())
