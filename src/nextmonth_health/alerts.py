"""The admin's alert text, in the seed's calm voice, and how it follows its incident."""

from __future__ import annotations

from datetime import datetime

from .values import Alert, Incident

__all__ = ["alert_for", "alert_message", "resolution_message"]


def _users(n: int) -> str:
    return f"{n} user" if n == 1 else f"{n} users"


def alert_message(incident: Incident) -> str:
    """ "⚡ Health Alert: API Errors on /media-upload route have exceeded safe thresholds. …" """
    return (
        "⚡ Health Alert:\n"
        f"{incident.summary} have exceeded safe thresholds.\n"
        f"Impact detected for {_users(incident.affected_users)}.\n"
        "Monitoring active."
    )


def resolution_message(incident: Incident) -> str:
    return f"✓ Resolved: {incident.summary} are back within safe thresholds.\nMonitoring active."


def alert_for(incident: Incident, now: datetime) -> Alert:
    """The incident's one alert as of ``now``: born when the incident turned critical.

    Derived from the incident alone, so every process computes the same alert and an
    update replaces the stored one in place rather than adding another.
    """
    return Alert(
        incident_id=incident.id,
        site=incident.site,
        message=alert_message(incident),
        created_at=incident.escalated_at or now,
        updated_at=now,
        check=incident.check,
        key=incident.key,
        area=incident.area,
        affected_users=incident.affected_users,
        resolved_at=incident.resolved_at,
    )
