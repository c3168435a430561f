"""``ack``: mark an alert read from the command line, which stops its reminders.

The same as the admin view's button: the first acknowledgement wins and is kept in the
store, so every process stops reminding at once.
"""

from __future__ import annotations

import click

from ..values import Alert
from ._common import CliError, global_options, plural, when
from ._planned import MIN_PREFIX, now_of, planning_monitor, short_ids

__all__ = ["command"]

LISTING = "nextmonth-health status"


@click.command("ack", short_help="Acknowledge an alert: no more reminders.")
@global_options
@click.argument("incident_id", metavar="INCIDENT_ID")
def command(incident_id: str) -> None:
    """Acknowledge the alert of INCIDENT_ID (a unique prefix will do): no more reminders.

    Any incident folded into an alert names it; `status` shows the alerts and their ids.
    """
    with planning_monitor() as monitor:
        alerts = monitor.store.alerts()
        alert = _alert_of(alerts, incident_id)
        acknowledged = monitor.acknowledge(alert.incident_id)
        length = short_ids(a.incident_id for a in alerts)
        now = now_of(monitor)
    if acknowledged is None:
        raise CliError(f"the alert of {alert.incident_id} is gone from the store; {LISTING} shows what is left")
    name = f"alert {alert.incident_id[:length]} at {alert.site} ({alert.area}, {plural(alert.affected_users, 'person', 'people')})"
    if alert.acknowledged_at is not None:
        click.echo(f"The {name} was already acknowledged at {when(alert.acknowledged_at)} UTC.")
        return
    click.echo(f"Acknowledged the {name} at {when(now)} UTC: no more reminders.")


def _alert_of(alerts: list[Alert], given: str) -> Alert:
    """The alert an incident id (or a unique prefix of one) belongs to, whether the
    incident opened the alert or was folded into it later."""
    owners: dict[str, Alert] = {}
    for alert in alerts:
        for incident in (alert.incident_id, *alert.incident_ids):
            owners.setdefault(incident, alert)
    if given in owners:
        return owners[given]
    if len(given) < MIN_PREFIX:
        raise CliError(
            f"give at least {MIN_PREFIX} characters of the incident's id, got {given!r}; {LISTING} shows them"
        )
    found = {id(a): a for i, a in owners.items() if i.lower().startswith(given.lower())}
    if not found:
        raise CliError(f"no alert belongs to an incident whose id starts with {given!r}; {LISTING} shows them")
    if len(found) > 1:
        shown = ", ".join(a.incident_id for a in found.values())
        raise CliError(f"{given!r} could be the incident of any of {len(found)} alerts ({shown}): give more of the id")
    return next(iter(found.values()))
