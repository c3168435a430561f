"""The admin's alert text, in the seed's calm voice, and how it follows its incident."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from ..values import Alert, Incident

__all__ = ["alert_for", "alert_message", "incident_url", "resolution_message"]


def incident_url(admin_url: str, incident_id: str) -> str:
    """The incident's page under the admin view at ``admin_url``: a stable address alert
    texts and sinks (the email plugin's link) can carry."""
    return f"{admin_url}/incidents/{quote(incident_id, safe='')}"


def _users(n: int) -> str:
    return f"{n} user" if n == 1 else f"{n} users"


def _subjects(incidents: Sequence[Incident]) -> str:
    subjects = list(dict.fromkeys(i.summary for i in incidents))
    return subjects[0] if len(subjects) == 1 else ", ".join(subjects[:-1]) + " and " + subjects[-1]


def alert_message(incidents: Sequence[Incident]) -> str:
    """The seed's calm alert: "⚡ Health Alert: API Errors on /media-upload route have …"."""
    users = max(i.affected_users for i in incidents)
    if all(not i.is_open for i in incidents):
        return (
            "✓ Health Alert resolved:\n"
            f"{_subjects(incidents)} are back within safe thresholds.\n"
            f"Impact was detected for {_users(users)}.\n"
            "Monitoring active."
        )
    return (
        "⚡ Health Alert:\n"
        f"{_subjects(incidents)} have exceeded safe thresholds.\n"
        f"Impact detected for {_users(users)}.\n"
        "Monitoring active."
    )


def resolution_message(incident: Incident) -> str:
    return f"✓ Resolved: {incident.summary} are back within safe thresholds.\nMonitoring active."


def alert_for(alert_id: str, members: Sequence[Incident], now: datetime) -> Alert:
    """The alert ``alert_id`` as of ``now``, derived from the incidents that share it.

    Derived from incidents alone, so every process computes the same alert and an update
    replaces the stored one in place (stores keep its earliest ``created_at``). The first
    incident to turn critical names it; impact is the largest among its incidents.
    """
    ordered = sorted(members, key=lambda i: (i.id != alert_id, i.escalated_at or now, i.id))
    primary = ordered[0]
    still_open = any(i.is_open for i in ordered)
    return Alert(
        incident_id=alert_id,
        site=primary.site,
        message=alert_message(ordered),
        created_at=min(i.escalated_at or now for i in ordered),
        updated_at=now,
        check=primary.check,
        key=primary.key,
        area=primary.area,
        affected_users=max(i.affected_users for i in ordered),
        resolved_at=None if still_open else max(i.resolved_at or now for i in ordered),
        incident_ids=tuple(i.id for i in ordered),
    )
