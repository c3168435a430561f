"""Session failures: failed logins plus expired sessions, against the trailing hour.

The usual count is measured against the site's traffic, not the clock: the hour's failed
sign-ins per sign-in attempt and its expired sessions per request served (per attempt, on
a site whose requests are not recorded), so a busier morning expects more mistyped
passwords, and a baseline that holds only the last twenty minutes still gives the right
rates. A window shows a spike when its count is at least ``session_min_count``, at least
``session_spike_factor`` times the count expected for its traffic (never less than
``session_floor`` per five minutes, so a quiet hour does not make one failure look like a
storm), and when so many would be less than an ``alpha`` chance (shared between the two
windows) at the usual rates, taken with the uncertainty the hour's count leaves
(:func:`~nextmonth_health.judge.stats.count_tail`). It is critical at ``session_critical_factor``
times the expected count, or when sign-in itself is broken: the failed share of sign-ins
significantly above ``session_learning_ratio``. While the site's baseline is still being
learned, only failed sign-ins count, judged against sign-in attempts: a spike is a share
significantly above ``session_learning_ratio``. While an incident is open, the count it
opened against is kept (the ``threshold``, per five minutes), and the last minute decides
when it is over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from ..plugin import (
    LENIENT_ALPHA,
    LOGIN,
    REQUEST,
    SESSION_EXPIRED,
    Check,
    Health,
    Reading,
    SiteView,
    UsersOf,
    Window,
    count_tail,
    hookimpl,
    past_line,
    poisson_sf,
    split_alpha,
    verdict,
)


class _Expect:
    """How many failures a window should hold, at the baseline hour's rates: failed
    sign-ins per sign-in attempt, expired sessions per request served (per attempt, on a
    site whose requests are not recorded)."""

    __slots__ = ("per_attempt", "per_request", "traffic")

    def __init__(self, per_attempt: float, per_request: float, traffic: str) -> None:
        self.per_attempt = per_attempt
        self.per_request = per_request
        self.traffic = traffic

    @classmethod
    def of(cls, view: SiteView) -> _Expect:
        tries, expired = view.baseline(LOGIN), view.baseline(SESSION_EXPIRED)
        traffic = REQUEST if view.window(REQUEST).total else LOGIN
        served = view.baseline(traffic).total
        return cls(tries.ratio, expired.total / served if served else 0.0, traffic)

    def __call__(self, tries: Window, served: Window) -> float:
        return self.per_attempt * tries.total + self.per_request * served.total


class _Spike(NamedTuple):
    """Failures that stood out: how many, how many were expected, over which attempts."""

    failures: int  # not ``count``: that name is tuple.count
    expected: float
    tries: Window


#: Who counts as hurt: people whose sign-in failed, or whose session expired.
_HURT = (UsersOf(LOGIN, bad_only=True), UsersOf(SESSION_EXPIRED))


class SessionFailureCheck:
    name = "session_failures"
    interval: float | None = None
    timeout: float | None = None
    routes: Mapping[str, str] | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        logins, expiries = view.window(LOGIN), view.window(SESSION_EXPIRED)
        count = logins.bad + expiries.total
        incident = view.incident(self.name, "")
        if incident is None and count < s.session_min_count:
            # The common case: too few failures to show anything, in either window.
            detail: dict[str, object] = {"failed_logins": logins.bad, "expired_sessions": expiries.total}
            yield self._reading(view, Health.OK, count, None, detail)
            return
        floor = float(s.session_floor)
        fast = s.fast_window_seconds / s.window_seconds
        if incident is not None:
            # Judged as it opened: against the count it expected, or (none kept) on the learning line.
            learning = incident.threshold is None
            expected = max(incident.threshold or 0.0, floor)
            usual, expect = 0.0, _Expect(0.0, 0.0, REQUEST)
        else:
            expect = _Expect.of(view)
            learning = view.learning(expect.traffic)
            usual = view.baseline(LOGIN).bad + view.baseline(SESSION_EXPIRED).total
            expected = max(expect(logins, view.window(expect.traffic)), floor)
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
            expected_recent = max(expect(recent_logins, view.recent(expect.traffic)), floor * fast)
        at_recent, at_window = split_alpha(s.alpha, s)

        def shows(n: int, mean: float, tries: Window, least: float, alpha: float) -> bool:
            if learning:
                return tries.bad >= s.session_min_count and past_line(
                    tries.bad, tries.total, s.session_learning_ratio, alpha
                )
            if n < s.session_min_count or n < s.session_spike_factor * mean:
                return False
            if incident is not None:  # judged against the count it opened against
                return poisson_sf(n, mean) < alpha
            # The usual rate is known from the hour's ``usual`` failures: its uncertainty.
            return count_tail(n, mean, usual, usual, floor=least) < alpha

        candidates = (
            (recent, expected_recent, recent_logins, floor * fast, at_recent),
            (count, expected, logins, floor, at_window),
        )
        spike = next(
            (
                _Spike(n, mean, tries)
                for n, mean, tries, least, alpha in candidates
                if shows(n, mean, tries, least, alpha)
            ),
            None,
        )
        if incident is None:
            calm = False
        elif learning:
            calm = not past_line(recent_logins.bad, recent_logins.total, s.session_learning_ratio, LENIENT_ALPHA)
        else:
            calm = poisson_sf(recent, s.session_recovery_factor * expected_recent) >= LENIENT_ALPHA
        severe = (
            spike is not None
            and not learning
            and (
                (
                    spike.failures >= 2 * s.session_min_count
                    and spike.failures >= s.session_critical_factor * spike.expected
                )
                # Or sign-in itself is broken: most attempts fail, whatever the usual count.
                or any(
                    past_line(w.bad, w.total, s.session_learning_ratio, LENIENT_ALPHA) for w in (recent_logins, logins)
                )
            )
            # People, not one account hammered: more people hurt than failures usually come.
            and poisson_sf(view.users(*_HURT, seconds=spike.tries.end - spike.tries.start), spike.expected) < s.alpha
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
            affected_now=view.affected_now(health, self.name, "", *_HURT),
            detail=detail,
        )


@hookimpl
def register_health_checks(register: Callable[[Check], None]) -> None:
    register(SessionFailureCheck())
