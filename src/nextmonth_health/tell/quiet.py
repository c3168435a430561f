"""Planned quiet: the maintenance windows and silences that hold alerts back at a site.

The admin schedules them (Python, the admin view, the JSON API, the command line); every
store keeps them, so every worker and host honours them. The evaluator reads them once a
pass and hands each site's to the incident tracker, which still records every incident
but marks the transitions it must not push (``Transition.muted``). Notices read the
maintenance windows too: people at an area under planned work see that, not an incident.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from attrs import frozen

from ..values import Incident, MaintenanceWindow, Notice, Silence, timestamp

__all__ = [
    "DEFAULT_SILENCE_SECONDS",
    "MAINTENANCE",
    "MAX_SECONDS",
    "SILENCE",
    "Quiet",
    "new_silence",
    "new_window",
    "planned_notice",
]

#: ``Transition.muted`` for what a maintenance window held back, and for a silence.
MAINTENANCE = "maintenance"
SILENCE = "silence"


@frozen
class Quiet:
    """A site's maintenance windows and silences that have not ended yet."""

    windows: tuple[MaintenanceWindow, ...] = ()
    silences: tuple[Silence, ...] = ()

    @classmethod
    def by_site(
        cls, windows: Iterable[MaintenanceWindow], silences: Iterable[Silence], at: datetime
    ) -> dict[str, Quiet]:
        """Those not ended at ``at``, per site; a site with none has no entry."""
        found: dict[str, tuple[list[MaintenanceWindow], list[Silence]]] = {}
        for window in windows:
            if window.ends_at > at:
                found.setdefault(window.site, ([], []))[0].append(window)
        for silence in silences:
            if silence.ends_at > at:
                found.setdefault(silence.site, ([], []))[1].append(silence)
        return {site: cls(tuple(w), tuple(s)) for site, (w, s) in found.items()}

    def maintenance_for(self, incident: Incident, at: datetime) -> MaintenanceWindow | None:
        """The window covering the incident at ``at``: one for its area before a site-wide one."""
        covering = [w for w in self.windows if w.covers(incident, at)]
        covering.sort(key=lambda w: (w.area is None, w.starts_at))
        return covering[0] if covering else None

    def silence_for(self, incident: Incident, at: datetime) -> Silence | None:
        return next((s for s in self.silences if s.covers(incident, at)), None)

    def muted(self, incident: Incident, at: datetime) -> str | None:
        """Why nothing about the incident is pushed at ``at`` (:data:`MAINTENANCE` or
        :data:`SILENCE`), or None."""
        if self.maintenance_for(incident, at) is not None:
            return MAINTENANCE
        if self.silence_for(incident, at) is not None:
            return SILENCE
        return None


#: No maintenance and no silence: what most sites have.
NONE = Quiet()

#: A silence lasts two hours unless told otherwise; neither it nor a window may last over a week.
DEFAULT_SILENCE_SECONDS = 2 * 3600.0
MAX_SECONDS = 7 * 86_400.0
_MAX_REASON = 500


def _text(name: str, value: object, limit: int = _MAX_REASON) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{name} must be text of at most {limit} characters, got {value!r}")
    return " ".join(value.split())


def _span(seconds: object, what: str) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ValueError(f"{what} must be a number of seconds, got {seconds!r}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{what} must be more than 0 seconds and at most a week, got {seconds!r}")
    return float(seconds)


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be a datetime with a time zone (e.g. UTC), got {value!r}")
    return value


def new_window(
    site: str,
    now: float,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    duration: float | None = None,
    reason: str = "",
    area: str | None = None,
) -> MaintenanceWindow:
    """A maintenance window from what the admin gave, checked: it starts at ``start`` (now
    when None) and ends at ``end`` or after ``duration`` seconds (one of them), within a week."""
    created = timestamp(now)
    starts = created if start is None else _aware(start, "start")
    if (end is None) == (duration is None):
        raise ValueError("give the window an end or a duration (one of them)")
    ends = starts + timedelta(seconds=_span(duration, "duration")) if end is None else _aware(end, "end")
    if ends <= created:
        raise ValueError(f"the window ends before now ({ends.isoformat()}): nothing to plan")
    _span((ends - starts).total_seconds(), "the window (end - start)")
    if area is not None and (not isinstance(area, str) or not area.strip() or len(area) > 100):
        raise ValueError(f"area must be an area's name (e.g. 'uploads'), or None for the whole site, got {area!r}")
    return MaintenanceWindow(
        id=uuid.uuid4().hex,
        site=site,
        starts_at=starts,
        ends_at=ends,
        reason=_text("reason", reason),
        area=area,
        created_at=created,
    )


def new_silence(
    site: str, now: float, check: str, key: str | None = None, *, duration: float, reason: str = ""
) -> Silence:
    """A silence of ``check`` (on ``key``, or every key) from now for ``duration`` seconds, checked."""
    if not isinstance(check, str) or not check.strip():
        raise ValueError(f"check must be a check's name (e.g. 'api_errors'), got {check!r}")
    if key is not None and not isinstance(key, str):
        raise ValueError(f"key must be text (a route, a page) or None for every key, got {key!r}")
    created = timestamp(now)
    return Silence(
        id=uuid.uuid4().hex,
        site=site,
        check=check,
        key=key,
        starts_at=created,
        ends_at=created + timedelta(seconds=_span(duration, "duration")),
        reason=_text("reason", reason),
        created_at=created,
    )


#: The bundled words for planned work: calm, no blame, nothing the monitor cannot know (no
#: time it will be over, no reason the admin wrote: that is for the admin).
PLANNED_TITLES: Mapping[str, str] = MappingProxyType(
    {
        "uploads": "Uploads are getting planned care",
        "bookings": "Bookings are getting planned care",
        "portal": "The portal is getting planned care",
        "login": "Signing in is getting planned care",
        "dashboard": "Your dashboard is getting planned care",
    }
)
PLANNED_TITLE = "Planned care in progress"
PLANNED_MESSAGE = (
    "We're making planned improvements here, so this part of the site may be briefly unavailable. "
    "Please try again a little later — thank you for your patience."
)


def planned_notice(incident: Incident) -> Notice:
    """The planned-maintenance notice at the incident's area, in the bundled words."""
    return Notice(
        area=incident.area,
        site=incident.site,
        title=PLANNED_TITLES.get(incident.area, PLANNED_TITLE),
        message=PLANNED_MESSAGE,
        severity=incident.severity,
        kind=MAINTENANCE,
    )
