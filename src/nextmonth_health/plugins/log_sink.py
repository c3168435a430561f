"""The structured-log sink: every transition as one structlog event; raised alerts at warning level."""

from __future__ import annotations

import structlog

from ..alerts import resolution_message
from ..hookspecs import hookimpl
from ..values import Transition, TransitionKind

log = structlog.get_logger("nextmonth_health.incidents")


class LogSink:
    name = "log"

    def send(self, transition: Transition) -> None:
        incident = transition.incident
        fields = {
            "incident_id": incident.id,
            "site": incident.site,
            "check": incident.check,
            "key": incident.key,
            "area": incident.area,
            "severity": str(incident.severity),
            "affected_users": incident.affected_users,
        }
        if transition.kind is TransitionKind.RESOLVED:
            log.info("incident.resolved", message=resolution_message(incident), **fields)
        elif transition.alert is not None and transition.kind is not TransitionKind.UPDATED:
            log.warning(f"incident.{transition.kind}", message=transition.alert.message, **fields)
        else:
            log.info(f"incident.{transition.kind}", summary=incident.summary, **fields)


@hookimpl
def register_alert_sinks(register) -> None:  # type: ignore[no-untyped-def]
    register(LogSink())
