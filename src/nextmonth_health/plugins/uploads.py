"""Upload failures: the share of upload attempts failing in the window (the seed's 10 %)."""

from __future__ import annotations

from collections.abc import Iterator

from ..hookspecs import hookimpl
from ..signals import UPLOAD
from ..values import Health, Reading
from ..windows import SiteView


class UploadFailureCheck:
    name = "upload_failures"
    interval: float | None = None
    timeout: float | None = None

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        s = view.settings
        window = view.window(UPLOAD)
        ratio = window.ratio
        trusted = window.total >= s.upload_min_attempts and window.bad >= s.upload_min_failures
        if window.total == 0 or ratio < s.upload_recovery_ratio:
            health = Health.OK
        elif trusted and ratio > s.upload_critical_ratio:
            health = Health.CRITICAL
        elif trusted and ratio > s.upload_failure_ratio:
            health = Health.DEGRADED
        elif not trusted and window.bad < s.upload_min_failures:
            health = Health.OK
        else:
            health = Health.ELEVATED
        yield Reading(
            check=self.name,
            site=view.site,
            key="",
            area="uploads",
            status=health,
            subject="Media upload failures",
            value=ratio,
            threshold=s.upload_failure_ratio,
            affected_users=view.affected(health, self.name, "", (UPLOAD, None, True)),
            detail={"failed": window.bad, "attempts": window.total},
        )


@hookimpl
def register_health_checks(register):  # type: ignore[no-untyped-def]
    register(UploadFailureCheck())
