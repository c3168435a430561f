"""Dashboard load time: the p75 of page loads over the window against the seed's 3 s.

The line is judged on evidence, not on the point value of a few samples: "the p75 is above
3 s" means more than a quarter of loads take longer, so a window shows a problem when so
many of its loads are slower than ``page_load_slow_seconds`` that it would be a
less than a ``line_alpha`` chance (shared between the two windows) with only a quarter
of them slow. People are shown the point
p75. A problem whose p75 is above ``page_load_critical_seconds`` is critical. Once an
incident is open, the last minute decides when it is over: its p75 no longer clearly above
``page_load_recovery_seconds``.

Browser beacons are the source; server-side request durations stand in when no beacon
has reported. A minimum number of samples from a minimum number of distinct users keeps
one slow client (or one forged beacon stream) from opening an incident.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ..plugin import (
    LENIENT_ALPHA,
    PAGE_LOAD,
    REQUEST,
    Check,
    Reading,
    SiteView,
    UsersOf,
    Window,
    hookimpl,
    past_line,
    split_alpha,
    verdict,
)

#: The share of loads slower than a p75: a quarter.
_ABOVE_P75 = 0.25


class PageLoadCheck:
    name = "dashboard_load"
    interval: float | None = None
    timeout: float | None = None
    routes: Mapping[str, str] | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        pages = s.dashboard_pages
        signal = PAGE_LOAD
        window = view.window(PAGE_LOAD, pages)
        if window.samples < s.page_load_min_samples:
            signal = REQUEST
            window = view.window(REQUEST, pages)
        source = "beacon" if signal == PAGE_LOAD else "server"
        key = pages[0] if len(pages) == 1 else ",".join(pages)
        incident = view.incident(self.name, key)
        p75 = window.quantile(0.75)
        # The last minute cannot show slow loads the five minutes around it do not hold.
        quiet = incident is None and (p75 is None or window.above(s.page_load_slow_seconds) < s.page_load_min_samples)
        recent = window if quiet else view.recent(signal, pages)

        at_recent, at_window = split_alpha(s.line_alpha, s)

        def shows(w: Window, alpha: float) -> bool:
            n = w.samples
            return n >= s.page_load_min_samples and past_line(w.above(s.page_load_slow_seconds), n, _ABOVE_P75, alpha)

        spike = (
            None
            if quiet
            else next(
                (w for w, alpha in ((recent, at_recent), (window, at_window)) if shows(w, alpha)),
                None,
            )
        )
        # Users are counted only when the time alone would matter: it costs a store read.
        if spike is not None and incident is None and view.users((signal, pages, False)) < s.page_load_min_users:
            spike = None
        health = verdict(
            open_incident=incident is not None,
            calm=incident is not None
            and not past_line(
                recent.above(s.page_load_recovery_seconds),
                recent.samples,
                _ABOVE_P75,
                LENIENT_ALPHA,
            ),
            spike=spike is not None,
            severe=spike is not None and (spike.quantile(0.75) or 0.0) > s.page_load_critical_seconds,
            quiet=p75 is None or window.samples < s.page_load_min_samples or p75 < s.page_load_recovery_seconds,
        )
        hurt = UsersOf(signal, pages, bad_only=signal == PAGE_LOAD)
        yield Reading(
            check=self.name,
            site=view.site,
            key=key,
            area=s.area_for(pages[0]) or "dashboard",
            status=health,
            subject=f"Dashboard load times on {key}",
            value=p75,
            threshold=s.page_load_slow_seconds,
            affected_users=view.affected(health, self.name, key, hurt),
            affected_now=view.affected_now(health, self.name, key, hurt),
            detail={"samples": window.samples, "recent_samples": recent.samples, "source": source},
        )


@hookimpl
def register_health_checks(register: Callable[[Check], None]) -> None:
    register(PageLoadCheck())
