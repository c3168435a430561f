"""API error rate: a spike of 5xx on a critical route, or across the whole site.

Each critical route is judged against its own trailing hour. A window shows a spike when it
holds at least ``api_error_min_count`` errors, an error ratio at least
``api_error_spike_factor`` times the usual one (never less than the ``api_error_ratio``
floor), and when so many errors would be less than an ``alpha`` chance (shared between the two
windows, :func:`~nextmonth_health.judge.evidence.split_alpha`) if the ratio were
still the usual one — the usual ratio taken with the uncertainty its hour of traffic
leaves (:func:`~nextmonth_health.judge.stats.ratio_tail`). Two stray errors on a tiny site stay
quiet; a real spike on a busy one stands out. A spike whose ratio reaches
``api_error_critical_ratio`` is critical. While the site's baseline is still being learned
(it just started, or its traffic jumped), or a route's hour saw fewer requests than its
last five minutes, it is judged only against the fixed ``api_error_learning_ratio``. Once an incident is open, the usual ratio it opened against
is kept (the trailing hour fills up with the incident) and the last minute decides when it
is over (:mod:`~nextmonth_health.judge.evidence`).

The site-wide key ``"*"`` (area ``site``) judges every request of the site the same way,
less the critical routes that have an incident open or read as a problem of their own, so
a backend down on every route is found even when no single route is busy, and one failing
route does not raise a second, site-wide incident. While the site-wide incident is open, a
route that starts failing too is part of it (its reading holds at ``elevated``) rather
than an incident of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs

from ..plugin import (
    LENIENT_ALPHA,
    REQUEST,
    SITE_AREA,
    Check,
    Health,
    Reading,
    SiteView,
    UsersOf,
    Window,
    hookimpl,
    past_line,
    ratio_tail,
    reaches_people,
    split_alpha,
    verdict,
)

#: The key of the site-wide reading (its area is ``SITE_AREA``).
SITE_WIDE = "*"


class ApiErrorCheck:
    name = "api_errors"
    interval: float | None = None
    timeout: float | None = None
    routes: Mapping[str, str] | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        site_wide_open = view.incident(self.name, SITE_WIDE) is not None
        hurting: list[str] = []
        for route in s.critical_routes:
            reading = self._judge(
                view,
                route,
                f"API Errors on {route} route",
                s.area_for(route) or "other",
                view.window(REQUEST, route),
                lambda route=route: view.recent(REQUEST, route),  # type: ignore[misc]
                lambda route=route: view.baseline(REQUEST, route),  # type: ignore[misc]
                (route,),
            )
            if view.incident(self.name, route) is not None:
                hurting.append(route)
            elif reading.status.is_problem:
                if site_wide_open:  # part of the site-wide incident already open, not one more
                    reading = attrs.evolve(reading, status=Health.ELEVATED)
                else:
                    hurting.append(route)
            yield reading
        window = _less(view.window(REQUEST), [view.window(REQUEST, r) for r in hurting])
        if site_wide_open or window.bad >= s.api_error_min_count:
            yield self._judge(
                view,
                SITE_WIDE,
                "API Errors across the site",
                SITE_AREA,
                window,
                lambda: _less(view.recent(REQUEST), [view.recent(REQUEST, r) for r in hurting]),
                lambda: _less(view.baseline(REQUEST), [view.baseline(REQUEST, r) for r in hurting]),
                sorted(view.keys(REQUEST).difference(hurting)) if hurting else None,
            )

    def _judge(
        self,
        view: SiteView,
        key: str,
        subject: str,
        area: str,
        window: Window,
        recent_of: Callable[[], Window],
        baseline_of: Callable[[], Window],
        keys: Sequence[str] | None,
    ) -> Reading:
        s = view.settings
        incident = view.incident(self.name, key)
        if incident is None and window.bad < s.api_error_min_count:
            # The common case: too few errors to show anything, in either window.
            quiet = window.ratio < max(s.api_error_recovery_ratio, 1.5 * s.api_error_ratio)
            return Reading(
                check=self.name,
                site=view.site,
                key=key,
                area=area,
                status=Health.OK if quiet else Health.ELEVATED,
                subject=subject,
                value=window.ratio,
                detail={"errors": window.bad, "requests": window.total},
            )
        recent, baseline = recent_of(), baseline_of()
        # The site just started (or its traffic jumped), or this key's hour saw less than
        # its last five minutes: too little to tell what its normal ratio is.
        learning = incident is None and (view.learning(REQUEST) or baseline.total < window.total)
        if incident is not None and incident.threshold is not None:
            usual = incident.threshold
        elif learning:
            usual = s.api_error_learning_ratio
        else:
            usual = baseline.ratio
        reference = max(usual, s.api_error_ratio)
        at_recent, at_window = split_alpha(s.alpha, s)

        def shows(w: Window, alpha: float) -> bool:
            if w.bad < s.api_error_min_count:
                return False
            if learning:
                return past_line(w.bad, w.total, reference, alpha)
            if w.ratio < s.api_error_spike_factor * reference:
                return False
            if incident is not None:  # judged against the frozen usual ratio
                return past_line(w.bad, w.total, reference, alpha)
            return ratio_tail(w.bad, w.total, baseline.bad, baseline.total, floor=s.api_error_ratio) < alpha

        recovery = max(s.api_error_recovery_ratio, 1.5 * reference)
        spike = next((w for w, alpha in ((recent, at_recent), (window, at_window)) if shows(w, alpha)), None)
        hurt = UsersOf(REQUEST, keys, bad_only=True)
        severe = (
            spike is not None
            and spike.ratio >= s.api_error_critical_ratio
            and reaches_people(view, spike, keys, reference)
        )
        health = verdict(
            open_incident=incident is not None,
            calm=incident is not None and _calm(recent, recovery),
            spike=spike is not None,
            severe=severe,
            quiet=window.total == 0 or window.ratio < recovery,
        )
        return Reading(
            check=self.name,
            site=view.site,
            key=key,
            area=area,
            status=health,
            subject=subject,
            value=window.ratio,
            threshold=usual,
            affected_users=view.affected(health, self.name, key, hurt),
            affected_now=view.affected_now(health, self.name, key, hurt),
            detail={
                "errors": window.bad,
                "requests": window.total,
                "recent_errors": recent.bad,
                "recent_requests": recent.total,
                "reference_ratio": reference,
                "learning": learning,
            },
        )


def _calm(recent: Window, recovery: float) -> bool:
    return not past_line(recent.bad, recent.total, recovery, LENIENT_ALPHA)


def _less(whole: Window, parts: Sequence[Window]) -> Window:
    """A window's counts less those of some of its keys (no histogram: not needed here)."""
    if not parts:
        return whole
    rest = Window(whole.signal, whole.start, whole.end, ())
    rest.total = whole.total - sum(p.total for p in parts)
    rest.bad = whole.bad - sum(p.bad for p in parts)
    return rest


@hookimpl
def register_health_checks(register: Callable[[Check], None]) -> None:
    register(ApiErrorCheck())
