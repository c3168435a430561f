"""Upload failures: the share of upload attempts failing, against the seed's 10 % line.

The line is judged on evidence, not on the point value of a small sample: a window shows a
problem when at least ``upload_min_attempts`` attempts and ``upload_min_failures``
failures are in it and so many failures would be less than a ``line_alpha`` chance (shared
between the two windows) if no more
than ``upload_failure_ratio`` of uploads failed — the ratio's lower confidence bound is
above the line. People are shown the point value. A problem whose ratio is above
``upload_critical_ratio`` is critical. Once an incident is open, the last minute decides
when it is over: no longer clearly above ``upload_recovery_ratio``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ..plugin import (
    LENIENT_ALPHA,
    UPLOAD,
    Check,
    Reading,
    SiteView,
    UsersOf,
    Window,
    hookimpl,
    past_line,
    reaches_people,
    split_alpha,
    verdict,
)


class UploadFailureCheck:
    name = "upload_failures"
    interval: float | None = None
    timeout: float | None = None
    routes: Mapping[str, str] | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        window = view.window(UPLOAD)
        incident = view.incident(self.name, "")
        # The last minute cannot show what the five minutes around it do not hold.
        quiet = incident is None and (window.bad < s.upload_min_failures or window.total < s.upload_min_attempts)
        recent = window if quiet else view.recent(UPLOAD)

        at_recent, at_window = split_alpha(s.line_alpha, s)

        def shows(w: Window, alpha: float) -> bool:
            return (
                w.total >= s.upload_min_attempts
                and w.bad >= s.upload_min_failures
                and past_line(w.bad, w.total, s.upload_failure_ratio, alpha)
            )

        spike = (
            None
            if quiet
            else next(
                (w for w, alpha in ((recent, at_recent), (window, at_window)) if shows(w, alpha)),
                None,
            )
        )
        hurt = UsersOf(UPLOAD, bad_only=True)
        severe = (
            spike is not None
            and spike.ratio > s.upload_critical_ratio
            and reaches_people(view, spike, None, s.upload_recovery_ratio)
        )
        health = verdict(
            open_incident=incident is not None,
            calm=incident is not None
            and not past_line(recent.bad, recent.total, s.upload_recovery_ratio, LENIENT_ALPHA),
            spike=spike is not None,
            severe=severe,
            quiet=window.bad < s.upload_min_failures or window.ratio < s.upload_recovery_ratio,
        )
        yield Reading(
            check=self.name,
            site=view.site,
            key="",
            area="uploads",
            status=health,
            subject="Media upload failures",
            value=window.ratio,
            threshold=s.upload_failure_ratio,
            affected_users=view.affected(health, self.name, "", hurt),
            affected_now=view.affected_now(health, self.name, "", hurt),
            detail={
                "failed": window.bad,
                "attempts": window.total,
                "recent_failed": recent.bad,
                "recent_attempts": recent.total,
            },
        )


@hookimpl
def register_health_checks(register: Callable[[Check], None]) -> None:
    register(UploadFailureCheck())
