"""The value types that cross the SDK's boundaries.

Everything here is a frozen attrs class or a string enum: readings flow from checks to the
incident tracker, incidents and alerts flow to sinks and the admin view, notices flow to
users. Enum members compare equal to their string values, so ``incident.status == "open"``
holds and JSON stays plain.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from attrs import field, frozen

__all__ = [
    "SITE_AREA",
    "Alert",
    "Health",
    "Incident",
    "IncidentStatus",
    "MaintenanceWindow",
    "Notice",
    "Reading",
    "Severity",
    "Silence",
    "Transition",
    "TransitionKind",
    "timestamp",
]


#: The area of a problem across the whole site: its notice is shown in every area.
SITE_AREA = "site"


class Health(enum.StrEnum):
    """What one check says about one key of one site right now.

    ``ELEVATED`` is the hysteresis band: not bad enough to open an incident, not healthy
    enough to count towards resolving one. ``UNKNOWN`` (a check that failed or timed out)
    changes nothing, so a broken probe can neither raise nor clear an incident.
    """

    OK = "ok"
    ELEVATED = "elevated"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    #: Degraded or critical: a reading that opens or updates an incident. An attribute of
    #: each member, not a property: a pass asks a dozen times a site.
    is_problem: bool

    def __init__(self, value: str) -> None:
        self.is_problem = value in ("degraded", "critical")


class Severity(enum.StrEnum):
    """How bad an incident is: degraded shows users a notice, critical also alerts the admin."""

    DEGRADED = "degraded"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return 2 if self is Severity.CRITICAL else 1


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class TransitionKind(enum.StrEnum):
    """What happened to an incident during one evaluation pass."""

    OPENED = "opened"
    ESCALATED = "escalated"
    UPDATED = "updated"
    RESOLVED = "resolved"
    #: An unacknowledged critical alert told again (``alert_repeat_seconds`` after the last
    #: time), or told for the first time once the maintenance or silence that held it ended.
    REMINDED = "reminded"


def _health(value: Health | str) -> Health:
    # Checks pass members: skip the enum lookup, paid six times a site every pass.
    return value if value.__class__ is Health else Health(value)


def _freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _ids(ids: Iterable[str]) -> tuple[str, ...]:
    # A typed ``tuple``: with the bare builtin the attrs plugin types the argument Iterable[_T_co].
    return tuple(ids)


def timestamp(seconds: float) -> datetime:
    """A clock reading (Unix seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


@frozen
class Reading:
    """One check's verdict on one key (a route, a page, or ``""``) of one site.

    ``subject`` names the problem for the admin ("API Errors on /media-upload route") and
    never reaches users; ``area`` is the user-facing place a notice is shown at.
    ``affected_users`` counts the distinct people hurt since the key's incident opened
    (:meth:`SiteView.affected <nextmonth_health.judge.windows.SiteView.affected>`), or in the
    window when none is open; ``affected_now`` those hurt in the window, when the check
    counted them apart.
    """

    check: str
    site: str
    key: str
    area: str
    status: Health = field(converter=_health)
    subject: str
    value: float | None = None
    threshold: float | None = None
    affected_users: int = 0
    detail: Mapping[str, Any] = field(factory=dict, converter=_freeze)
    affected_now: int | None = None


@frozen
class Incident:
    """One problem, from first detection to resolution: one per (site, check, key).

    ``severity`` only ever rises during an incident's life, so a wobbling signal cannot
    produce a stream of alerts. ``affected_users`` counts the distinct people hurt since it
    opened (the union, never going down): what "Impact detected for N users" says;
    ``affected_now`` those hurt in the latest window. ``maintenance_id`` names the
    maintenance window it was seen in, if any: it happened during planned work.
    """

    id: str
    site: str
    check: str
    area: str
    key: str
    severity: Severity = field(converter=Severity)
    status: IncidentStatus = field(converter=IncidentStatus)
    affected_users: int
    opened_at: datetime
    summary: str
    updated_at: datetime
    resolved_at: datetime | None = None
    escalated_at: datetime | None = None
    recovering_since: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    alert_id: str | None = None
    affected_now: int = 0
    maintenance_id: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is IncidentStatus.OPEN


@frozen
class Alert:
    """The admin's calm notification for a critical problem, updated in place as impact grows.

    ``incident_id`` is the first incident to turn critical; ``incident_ids`` lists every
    incident of the same area folded into this one alert. ``notified_at`` is when the
    push sinks (email, webhook) were last told of it — None while a maintenance window or
    a silence holds it back — and ``reminders`` how many times they were told again.
    """

    incident_id: str
    site: str
    message: str
    created_at: datetime
    updated_at: datetime
    check: str = ""
    key: str = ""
    area: str = ""
    affected_users: int = 0
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    incident_ids: tuple[str, ...] = field(default=(), converter=_ids)
    notified_at: datetime | None = None
    reminders: int = 0

    @property
    def is_active(self) -> bool:
        return self.resolved_at is None


@frozen
class MaintenanceWindow:
    """Planned work on a site, or on one ``area`` of it, from ``starts_at`` to ``ends_at``.

    While it runs, incidents in its scope are still recorded (marked with its id), no alert
    is pushed for them, and people there see a planned-maintenance notice instead of the
    incident's. It ends by itself; ending it early moves ``ends_at``.
    """

    id: str
    site: str
    starts_at: datetime
    ends_at: datetime
    reason: str = ""
    area: str | None = None
    created_at: datetime | None = None

    def is_active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def covers(self, incident: Incident, at: datetime) -> bool:
        """Whether the incident is in this window's scope at ``at``: the site's, in its area
        (a site-wide problem is bigger than work on one area, so only a site-wide window
        covers it)."""
        return incident.site == self.site and self.is_active(at) and (self.area is None or self.area == incident.area)


@frozen
class Silence:
    """No alerts or reminders for one check (and ``key``, or every key when None) of a site
    until ``ends_at``: the admin knows and is on it. Incidents stay visible, marked silenced."""

    id: str
    site: str
    check: str
    starts_at: datetime
    ends_at: datetime
    key: str | None = None
    reason: str = ""
    created_at: datetime | None = None

    def is_active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def covers(self, incident: Incident, at: datetime) -> bool:
        return (
            incident.site == self.site
            and incident.check == self.check
            and (self.key is None or self.key == incident.key)
            and self.is_active(at)
        )


@frozen
class Notice:
    """What a user sees at an area of the site while something there is being looked after.

    Carries no codes, numbers or internal names: only words written for people. ``kind``
    is ``"care"`` (something is being looked after), or ``"maintenance"`` for planned work
    the admin scheduled.
    """

    area: str
    site: str
    title: str
    message: str
    severity: Severity = field(default=Severity.DEGRADED, converter=Severity)
    kind: str = "care"


@frozen
class Transition:
    """A change to an incident that sinks hear about; ``alert`` is set once it is critical.

    A ``quiet`` one is stored but not announced: the count of people creeping up between
    announcements (see the incident tracker). A ``muted`` one (``"maintenance"`` or
    ``"silence"``) is stored and logged but not handed to the sinks.
    """

    kind: TransitionKind = field(converter=TransitionKind)
    incident: Incident
    previous: Incident | None = None
    alert: Alert | None = None
    quiet: bool = False
    muted: str | None = None
