"""One incident in full: what happened when, the readings behind it, who it hurt.

Everything is derived from what the store keeps, never invented:

- the **timeline** from the incident's own times (``opened_at``, ``escalated_at``,
  ``updated_at``, ``recovering_since``, ``resolved_at``) and its alert's (``created_at``,
  ``notified_at``, ``acknowledged_at``). The store keeps the latest update only, not each
  one, the latest time the push sinks were told, not each reminder, and when an alert was
  acknowledged, not by whom; the page says so rather than guess;
- the **readings**: the check's value over time around the incident, against the line it
  is judged by (:func:`~nextmonth_health.web.trends.readings_around`), for the bundled
  checks, whose signals are known; a plugin's check shows its last value and threshold;
- **status codes**: the store counts requests and 5xx answers per route, not each code,
  so the page gives those two counts and says that no finer breakdown exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import frozen

from .. import signals as sig
from ..values import Alert, Incident
from . import trends

if TYPE_CHECKING:
    from ..monitor import Monitor
    from ..settings import Settings

__all__ = ["Event", "IncidentDetail", "Lines", "duration_words", "find_incident", "incident_detail", "lines_for"]

#: Incident ids as the tracker makes them (uuid hex); anything else in the URL is a 404.
MAX_ID = 64


@frozen
class Event:
    """One line of the timeline."""

    at: datetime
    kind: str  # opened, alerted, escalated, notified, updated, acknowledged, recovering, resolved
    text: str


@frozen
class IncidentDetail:
    incident: Incident
    alert: Alert | None
    events: tuple[Event, ...]
    readings: trends.Series | None
    check: dict[str, Any]
    requests: dict[str, Any] | None
    duration: float
    lines: Lines
    notes: tuple[str, ...]


def find_incident(monitor: Monitor, incident_id: str) -> Incident | None:
    """An incident the store still keeps (open, or resolved within ``resolved_retention``)."""
    if not incident_id or len(incident_id) > MAX_ID:
        return None
    return next((i for i in monitor.store.incidents() if i.id == incident_id), None)


def _alert_of(monitor: Monitor, incident: Incident) -> Alert | None:
    if incident.alert_id is None:
        return None
    return next((a for a in monitor.store.alerts(incident.site) if a.incident_id == incident.alert_id), None)


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def duration_words(seconds: float) -> str:
    """``3 min``, ``1 h 20 min``, ``2 days 3 h``: a length of time in words."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def timeline(incident: Incident, alert: Alert | None) -> tuple[Event, ...]:
    """The incident's transitions, from the times the store keeps, in order."""
    i = incident
    opened_critical = i.escalated_at is not None and i.escalated_at == i.opened_at
    events = [
        Event(
            i.opened_at,
            "opened",
            "Opened as critical: the admin is alerted."
            if opened_critical
            else "Opened as degraded: visitors in this area see the calm notice.",
        ),
    ]
    if i.escalated_at is not None and not opened_critical:
        events.append(Event(i.escalated_at, "escalated", "Became critical: the admin is alerted."))
    if alert is not None:
        joined = alert.incident_id != i.id
        events.append(
            Event(
                alert.created_at,
                "alerted",
                "Joined the alert already open for this area." if joined else "Alert raised in the admin panel.",
            )
        )
        told = alert.notified_at
        if told is not None and told != alert.created_at:
            events.append(
                Event(
                    told,
                    "notified",
                    f"Latest reminder sent to email and webhooks ({alert.reminders} so far)."
                    if alert.reminders
                    else "Sent to email and webhooks once the maintenance or silence holding it ended.",
                )
            )
        if alert.acknowledged_at is not None:
            events.append(Event(alert.acknowledged_at, "acknowledged", "Acknowledged (marked as read) by an admin."))
    moments = {e.at for e in events} | {i.resolved_at}
    if i.updated_at not in moments:
        events.append(
            Event(i.updated_at, "updated", f"Latest update: {_people(i.affected_users)} hurt since it opened.")
        )
    if i.recovering_since is not None and i.is_open:
        events.append(
            Event(i.recovering_since, "recovering", "Recovering: readings healthy since, waiting out the cool-down.")
        )
    if i.resolved_at is not None:
        events.append(
            Event(
                i.resolved_at,
                "resolved",
                f"Resolved after {duration_words((i.resolved_at - i.opened_at).total_seconds())}.",
            )
        )
    order = ("opened", "escalated", "alerted", "notified", "updated", "acknowledged", "recovering", "resolved")
    return tuple(sorted(events, key=lambda e: (e.at, order.index(e.kind))))


def _check_info(monitor: Monitor, name: str) -> dict[str, Any]:
    """Which check raised it and which plugin registered that check."""
    check = next((c for c in monitor.checks if c.name == name), None)
    if check is None:
        return {"name": name, "plugin": None, "bundled": False, "installed": False}
    module = type(check).__module__
    plugin = None
    for plugin_name, registered in monitor.plugin_manager.list_name_plugin():
        if getattr(registered, "__name__", None) == module or type(registered).__module__ == module:
            plugin = plugin_name
            break
    bundled = module.startswith("nextmonth_health.plugins.")
    if bundled and (plugin is None or plugin == module):
        plugin = module.rsplit(".", 1)[1]
    return {
        "name": name,
        "plugin": plugin or module,
        "bundled": bundled,
        "installed": True,
    }


def _requests(monitor: Monitor, incident: Incident, reads: trends.Reads) -> dict[str, Any]:
    """Requests and 5xx answers on the incident's route(s) from the window that opened it
    (``window_seconds`` before it opened) until it resolved."""
    s = monitor.settings_for(incident.site)
    now = monitor.clock.now()
    opened = int(incident.opened_at.timestamp()) - s.window_seconds
    closed = int(incident.resolved_at.timestamp()) if incident.resolved_at is not None else int(now) + 1
    keys = None if incident.key == "*" else {incident.key}
    exact = opened >= now - s.history_seconds
    if exact:
        rows = reads.rows(sig.REQUEST, 0, opened - opened % s.bucket_seconds, closed)
    else:
        rows = reads.rows(sig.REQUEST, trends.HOUR, opened - opened % trends.HOUR, closed)
    total = bad = 0
    for row in rows:
        if keys is None or row.key in keys:
            total += row.total
            bad += row.bad
    return {
        "requests": total,
        "errors_5xx": bad,
        "counted": "by bucket" if exact else "by whole hours (older buckets are kept hourly)",
        "status_codes": None,
        "why_no_codes": "The store counts requests and 5xx answers per route, not each status code, "
        "so there is no breakdown by code.",
    }


def incident_detail(monitor: Monitor, incident: Incident) -> IncidentDetail:
    s = monitor.settings_for(incident.site)
    alert = _alert_of(monitor, incident)
    measure = trends.measure_for(s, incident.check, incident.key)
    reads = trends.Reads(monitor, incident.site)
    readings = trends.readings_around(monitor, incident, measure, reads) if measure is not None else None
    end = incident.resolved_at.timestamp() if incident.resolved_at is not None else monitor.clock.now()
    notes = []
    if measure is None:
        notes.append(
            "This check comes from a plugin that does not say which signal it reads, so only its "
            "latest value and threshold are shown."
        )
    lines = lines_for(s, incident)
    return IncidentDetail(
        incident=incident,
        alert=alert,
        events=timeline(incident, alert),
        readings=readings,
        check=_check_info(monitor, incident.check),
        requests=_requests(monitor, incident, reads) if incident.check == "api_errors" else None,
        duration=max(0.0, end - incident.opened_at.timestamp()),
        lines=lines,
        notes=tuple(notes),
    )


@frozen
class Lines:
    """The numbers an incident is read against, as its chart draws them."""

    threshold: float | None
    label: str
    baseline: float | None
    unit: str


def lines_for(settings: Settings, incident: Incident) -> Lines:
    """The line drawn for an incident's check (the same as its trend chart's), and the usual
    level it was judged against where the check measures against its own history.

    For ``api_errors`` and ``session_failures`` the incident's stored ``threshold`` is that
    usual level (the trailing hour's error ratio, the failures expected per five minutes);
    for the other bundled checks it is the fixed line; for a plugin's check, whatever it said.
    """
    measure = trends.measure_for(settings, incident.check, incident.key)
    if measure is None:
        return Lines(incident.threshold, "threshold", None, "value")
    baseline = incident.threshold if measure.check in ("api_errors", "session_failures") else None
    return Lines(measure.threshold, measure.threshold_label or "threshold", baseline, measure.unit)
