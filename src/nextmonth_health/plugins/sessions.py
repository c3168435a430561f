"""Session failures: failed logins plus expired sessions, against the trailing hour.

The usual count is measured against the site's traffic, not the clock: the hour's failures
per request it served (per sign-in attempt, on a site whose requests are not recorded), so
a busier morning expects more mistyped passwords, and a baseline that holds only the last
twenty minutes still gives the right rate. A window shows a spike when its count is at
least ``session_min_count``, at least ``session_spike_factor`` times the count expected
for its traffic (never less than ``session_floor`` per five minutes, so a quiet hour does
not make one failure look like a storm), and when so many would be a one-in-``2 / alpha``
chance at the usual rate, taken with the uncertainty its hour leaves
(:func:`~nextmonth_health.stats.count_tail`). It is critical at ``session_critical_factor``
times the expected count, or when sign-in itself is broken: the failed share of sign-ins
significantly above ``session_learning_ratio``. While the site's baseline is still being learned, only failed
sign-ins count, judged against sign-in attempts: a spike is a share significantly above
``session_learning_ratio``. While an incident is open, the count it opened against is kept
(the ``threshold``, per five minutes), and the last minute decides when it is over.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..evidence import LENIENT_ALPHA, verdict
from ..hookspecs import hookimpl
from ..signals import LOGIN, REQUEST, SESSION_EXPIRED
from ..stats import binomial_sf, count_tail, poisson_sf
from ..values import Health, Reading
from ..windows import SiteView, Window


class SessionFailureCheck:
    name = "session_failures"
    interval: float | None = None
    timeout: float | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        logins, expiries = view.window(LOGIN), view.window(SESSION_EXPIRED)
        recent_logins, recent_expiries = view.recent(LOGIN), view.recent(SESSION_EXPIRED)
        count = logins.bad + expiries.total
        recent = recent_logins.bad + recent_expiries.total
        incident = view.incident(self.name, "")
        traffic = REQUEST if view.window(REQUEST).total else LOGIN
        fast = s.fast_window_seconds / s.window_seconds
        floor = float(s.session_floor)
        if incident is not None:
            # Judged as it opened: against the count it expected, or (none kept) on the learning line.
            learning = incident.threshold is None
            expected = max(incident.threshold or 0.0, floor)
            expected_recent = expected * fast
            usual = baseline_traffic = 0.0
        else:
            learning = view.learning(traffic)
            usual = view.baseline(LOGIN).bad + view.baseline(SESSION_EXPIRED).total
            baseline_traffic = view.baseline(traffic).total
            per_request = usual / baseline_traffic if baseline_traffic else 0.0
            expected = max(per_request * view.window(traffic).total, floor)
            expected_recent = max(per_request * view.recent(traffic).total, floor * fast)
        half = s.alpha / 2

        def shows(n: int, mean: float, tries: Window, window_traffic: int, least: float) -> bool:
            if learning:
                return (
                    tries.bad >= s.session_min_count
                    and binomial_sf(tries.bad, tries.total, s.session_learning_ratio) < half
                )
            if n < s.session_min_count or n < s.session_spike_factor * mean:
                return False
            if incident is not None:  # judged against the count it opened against
                return poisson_sf(n, mean) < half
            return count_tail(n, window_traffic, usual, baseline_traffic, floor=least) < half

        spike = next(
            (
                (n, mean)
                for n, mean, tries, window_traffic, least in (
                    (
                        recent,
                        expected_recent,
                        recent_logins,
                        view.recent(traffic).total,
                        floor * fast,
                    ),
                    (count, expected, logins, view.window(traffic).total, floor),
                )
                if shows(n, mean, tries, window_traffic, least)
            ),
            None,
        )
        if learning:
            calm = (
                binomial_sf(recent_logins.bad, recent_logins.total, s.session_learning_ratio)
                >= LENIENT_ALPHA
            )
        else:
            calm = poisson_sf(recent, s.session_recovery_factor * expected_recent) >= LENIENT_ALPHA
        hurt = ((LOGIN, None, True), (SESSION_EXPIRED, None, False))
        severe = (
            spike is not None
            and not learning
            and (
                (
                    spike[0] >= 2 * s.session_min_count
                    and spike[0] >= s.session_critical_factor * spike[1]
                )
                # Or sign-in itself is broken: most attempts fail, whatever the usual count.
                or any(
                    binomial_sf(w.bad, w.total, s.session_learning_ratio) < LENIENT_ALPHA
                    for w in (recent_logins, logins)
                )
            )
            # People, not one account hammered: more people hurt than failures usually come.
            and poisson_sf(view.users(*hurt), expected) < LENIENT_ALPHA
        )
        health = verdict(
            open_incident=incident is not None,
            calm=calm,
            spike=spike is not None,
            severe=severe,
            quiet=count < s.session_min_count or count <= s.session_recovery_factor * expected,
        )
        yield Reading(
            check=self.name,
            site=view.site,
            key="",
            area="login",
            status=health,
            subject="Session failures (failed logins and expired sessions)",
            value=float(count),
            threshold=None if learning else expected,
            affected_users=view.affected(health, self.name, "", *hurt),
            affected_now=view.users(*hurt)
            if health is not Health.OK and incident is not None
            else None,
            detail={
                "failed_logins": logins.bad,
                "expired_sessions": expiries.total,
                "recent": recent,
                "expected": expected,
                "learning": learning,
            },
        )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(SessionFailureCheck())
