"""What is posted: which transitions, as what JSON, under which deduplication key."""

from __future__ import annotations

from typing import Any

import nextmonth_health as nmh
from nextmonth_health.plugin import resolution_message, to_dict

from ._config import WebhookConfig

__all__ = ["dedup_key", "payload", "text_of", "wanted"]


def wanted(transition: nmh.Transition, config: WebhookConfig) -> bool:
    """Whether a transition is posted under ``config``.

    With ``only_alerts`` (the default) only what concerns an admin alert is posted, and
    an alert's resolution only once its last incident has resolved — several incidents
    of one area share one alert, and the channel hears about it once.
    """
    if transition.kind.value not in config.kinds:
        return False
    if not config.only_alerts:
        return True
    alert = transition.alert
    if alert is None:
        return False
    if transition.kind is nmh.TransitionKind.RESOLVED:
        return alert.resolved_at is not None
    return True


def dedup_key(transition: nmh.Transition) -> str:
    """One transition, one key: ``incident id : kind : when``.

    ``when`` is the alert's ``updated_at`` when there is an alert (it moves on every
    change the admin should hear about), else the incident's. The same transition handed
    over twice — a retried delivery, a second leader — gets the same key.
    """
    alert = transition.alert
    if alert is not None and transition.kind is nmh.TransitionKind.REMINDED and alert.notified_at is not None:
        moment = alert.notified_at  # each reminder is told at a time of its own
    else:
        moment = alert.updated_at if alert is not None else transition.incident.updated_at
    return f"{transition.incident.id}:{transition.kind.value}:{moment.isoformat()}"


def text_of(transition: nmh.Transition) -> str:
    """The human text: the alert's calm message, or the incident's own line."""
    alert = transition.alert
    if alert is not None:
        if transition.kind is nmh.TransitionKind.REMINDED and alert.reminders:
            return f"Still needs attention (reminder {alert.reminders}, not acknowledged yet):\n{alert.message}"
        return alert.message
    incident = transition.incident
    if transition.kind is nmh.TransitionKind.RESOLVED:
        return resolution_message(incident)
    return (
        f"Heads-up: {incident.summary} — users at {incident.area} see a calm notice "
        f"({incident.severity.value}). Monitoring active."
    )


def payload(transition: nmh.Transition, config: WebhookConfig) -> dict[str, Any]:
    """The JSON body: Slack's ``{"text": ...}``, or the full transition, the incident and
    its alert in the SDK's one JSON shape (``to_dict``)."""
    text = text_of(transition)
    if config.format == "slack":
        return {"text": text}
    incident = transition.incident
    alert = transition.alert
    return {
        "event": f"incident.{transition.kind.value}",
        "dedup_key": dedup_key(transition),
        "site": incident.site,
        "text": text,
        "incident": to_dict(incident),
        "alert": None if alert is None else to_dict(alert),
    }
