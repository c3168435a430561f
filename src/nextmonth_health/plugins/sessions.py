"""Session failures: failed logins plus expired sessions, against the trailing hour.

The usual count is measured against the site's traffic, not the clock: the hour's failures
per sign-in attempt (per request served, on a site whose sign-ins are not recorded), so a
busier morning expects more mistyped passwords, and a baseline that holds only the last
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
from ..stats import count_tail, past_line, poisson_sf
from ..values import Health, Reading
from ..windows import SiteView, Window

#: Who counts as hurt: people whose sign-in failed, or whose session expired.
_HURT = ((LOGIN, None, True), (SESSION_EXPIRED, None, False))


class SessionFailureCheck:
    name = "session_failures"
    interval: float | None = None
    timeout: float | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        logins, expiries = view.window(LOGIN), view.window(SESSION_EXPIRED)
        count = logins.bad + expiries.total
        incident = view.incident(self.name, "")
        if incident is None and count < s.session_min_count:
            # The common case: too few failures to show anything, in either window.
            detail = {"failed_logins": logins.bad, "expired_sessions": expiries.total}
            yield self._reading(view, Health.OK, count, None, detail)
            return
        # Failures are expected in proportion to sign-in attempts (to requests, on a site
        # whose sign-ins are not recorded).
        traffic = LOGIN if logins.total else REQUEST
        fast = s.fast_window_seconds / s.window_seconds
        floor = float(s.session_floor)
        if incident is not None:
            # Judged as it opened: against the count it expected, or (none kept) on the learning line.
            learning = incident.threshold is None
            expected = max(incident.threshold or 0.0, floor)
            usual = baseline_traffic = per_request = 0.0
        else:
            learning = view.learning(traffic)
            usual = view.baseline(LOGIN).bad + view.baseline(SESSION_EXPIRED).total
            baseline_traffic = view.baseline(traffic).total
            per_request = usual / baseline_traffic if baseline_traffic else 0.0
            expected = max(per_request * view.window(traffic).total, floor)
            if (logins.bad < s.session_min_count) if learning else (count <= expected):
                # No more than usual in the five minutes: no spike there, nor in their last minute.
                detail = {
                    "failed_logins": logins.bad,
                    "expired_sessions": expiries.total,
                    "expected": expected,
                }
                yield self._reading(view, Health.OK, count, None if learning else expected, detail)
                return
        recent_logins, recent_expiries = view.recent(LOGIN), view.recent(SESSION_EXPIRED)
        recent = recent_logins.bad + recent_expiries.total
        if incident is not None:
            expected_recent = expected * fast
        else:
            expected_recent = max(per_request * view.recent(traffic).total, floor * fast)
        half = s.alpha / 2

        def shows(n: int, mean: float, tries: Window, window_traffic: int, least: float) -> bool:
            if learning:
                return tries.bad >= s.session_min_count and past_line(
                    tries.bad, tries.total, s.session_learning_ratio, half
                )
            if n < s.session_min_count or n < s.session_spike_factor * mean:
                return False
            if incident is not None:  # judged against the count it opened against
                return poisson_sf(n, mean) < half
            return count_tail(n, window_traffic, usual, baseline_traffic, floor=least) < half

        candidates = (
            (recent, expected_recent, recent_logins, view.recent(traffic).total, floor * fast),
            (count, expected, logins, view.window(traffic).total, floor),
        )
        spike = next(
            (
                (n, mean, tries)
                for n, mean, tries, seen, least in candidates
                if shows(n, mean, tries, seen, least)
            ),
            None,
        )
        if incident is None:
            calm = False
        elif learning:
            calm = not past_line(
                recent_logins.bad, recent_logins.total, s.session_learning_ratio, LENIENT_ALPHA
            )
        else:
            calm = poisson_sf(recent, s.session_recovery_factor * expected_recent) >= LENIENT_ALPHA
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
                    past_line(w.bad, w.total, s.session_learning_ratio, LENIENT_ALPHA)
                    for w in (recent_logins, logins)
                )
            )
            # People, not one account hammered: more people hurt than failures usually come.
            and poisson_sf(view.users(*_HURT, seconds=spike[2].end - spike[2].start), spike[1])
            < s.alpha
        )
        health = verdict(
            open_incident=incident is not None,
            calm=calm,
            spike=spike is not None,
            severe=severe,
            quiet=count <= s.session_recovery_factor * expected,
        )
        detail = {
            "failed_logins": logins.bad,
            "expired_sessions": expiries.total,
            "recent": recent,
            "expected": expected,
            "learning": learning,
        }
        yield self._reading(view, health, count, None if learning else expected, detail)

    def _reading(
        self,
        view: SiteView,
        health: Health,
        count: int,
        expected: float | None,
        detail: dict[str, object],
    ) -> Reading:
        open_now = view.incident(self.name, "") is not None
        return Reading(
            check=self.name,
            site=view.site,
            key="",
            area="login",
            status=health,
            subject="Session failures (failed logins and expired sessions)",
            value=float(count),
            threshold=expected,
            affected_users=view.affected(health, self.name, "", *_HURT),
            affected_now=view.users(*_HURT) if health is not Health.OK and open_now else None,
            detail=detail,
        )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(SessionFailureCheck())
