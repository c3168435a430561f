"""The structured-log sink: every transition as one ``nextmonth_health.incident_<kind>`` event.

Raised alerts are warnings, everything else info, on the ``nextmonth_health.incidents`` logger.
"""

from __future__ import annotations

from collections.abc import Callable

from ..plugin import AlertSink, Transition, TransitionKind, get_logger, hookimpl, resolution_message

log = get_logger("nextmonth_health.incidents")


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
            log.info("nextmonth_health.incident_resolved", message=resolution_message(incident), **fields)
        elif transition.alert is not None and transition.kind is not TransitionKind.UPDATED:
            log.warning(f"nextmonth_health.incident_{transition.kind}", message=transition.alert.message, **fields)
        else:
            log.info(f"nextmonth_health.incident_{transition.kind}", summary=incident.summary, **fields)


@hookimpl
def register_alert_sinks(register: Callable[[AlertSink], None]) -> None:
    register(LogSink())
