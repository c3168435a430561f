"""Dashboard load time: the p75 of page loads over the window against the seed's 3 s.

Browser beacons are the source; server-side request durations stand in when no beacon
has reported. A minimum number of samples from a minimum number of distinct users keeps
one slow client (or one forged beacon stream) from opening an incident.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..hookspecs import hookimpl
from ..signals import PAGE_LOAD, REQUEST
from ..values import Health, Reading
from ..windows import SiteView


class PageLoadCheck:
    name = "dashboard_load"
    interval: float | None = None
    timeout: float | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        pages = s.dashboard_pages
        signal = PAGE_LOAD
        window = view.window(PAGE_LOAD, pages)
        if window.samples < s.page_load_min_samples:
            signal = REQUEST
            window = view.window(REQUEST, pages)
        source = "beacon" if signal == PAGE_LOAD else "server"
        p75 = window.quantile(0.75)
        # Users are counted only when the time alone would matter: it costs a store read.
        if (
            p75 is None
            or window.samples < s.page_load_min_samples
            or p75 < s.page_load_recovery_seconds
            or view.users((signal, pages, False)) < s.page_load_min_users
        ):
            health = Health.OK
        elif p75 > s.page_load_critical_seconds:
            health = Health.CRITICAL
        elif p75 > s.page_load_slow_seconds:
            health = Health.DEGRADED
        else:
            health = Health.ELEVATED
        key = pages[0] if len(pages) == 1 else ",".join(pages)
        affected = view.affected(health, self.name, key, (signal, pages, signal == PAGE_LOAD))
        yield Reading(
            check=self.name,
            site=view.site,
            key=key,
            area=s.area_for(pages[0]) or "dashboard",
            status=health,
            subject=f"Dashboard load times on {key}",
            value=p75,
            threshold=s.page_load_slow_seconds,
            affected_users=affected,
            detail={"samples": window.samples, "source": source},
        )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(PageLoadCheck())
