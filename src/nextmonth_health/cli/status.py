"""``status``: per site, what the store says right now — open incidents, notices, alerts,
and the maintenance windows and silences that hold alerts back.

Reads the shared store your app records into (``--store``, the config file's, or
``$NEXTMONTH_HEALTH_STORE``) and renders the notices through a monitor on that store, so
the words are exactly what users see (overrides and plugin renderers included).

Its exit status follows the Nagios plugin convention, so that it can serve as a health
check as it is: 0 when no incident is open, 1 with a degraded one open, 2 with a critical
one, 3 when it cannot tell (the store cannot be read, a bad option).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..codec import to_dict
from ..errors import ConfigError, is_store_error
from ..values import Alert, Incident
from ..web.planned import Marks, Planned
from ._common import (
    CliError,
    build_monitor,
    configure_logging,
    echo_json,
    global_options,
    iso,
    open_existing_store,
    options,
    plural,
    probe_store,
    store_trouble,
    when,
)
from ._planned import columns, now_of, short_ids, silence_json, window_json

__all__ = ["EXIT_CALM", "EXIT_CRITICAL", "EXIT_DEGRADED", "EXIT_UNKNOWN", "command", "last_evaluations"]

#: The Nagios plugin convention: OK, WARNING, CRITICAL, UNKNOWN.
EXIT_CALM, EXIT_DEGRADED, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


def last_evaluations(store: Any) -> dict[str, datetime] | None:
    """When each site was last evaluated (the runner notes it in the store every pass).

    None for a third-party store built before ``Store.last_evaluations`` existed.
    """
    reader = getattr(store, "last_evaluations", None)
    if reader is None:
        return None
    from ..values import timestamp

    found = reader()
    return {site: at if isinstance(at, datetime) else timestamp(float(at)) for site, at in dict(found).items()}


def _incident(i: Incident, silenced: bool) -> dict[str, Any]:
    return {**to_dict(i), "silenced": silenced}


def _alert(a: Alert, marks: Marks | None) -> dict[str, Any]:
    """An alert as ``--json`` shows it; ``held``: why it has not gone out (as the admin view says)."""
    return {
        **to_dict(a),
        "active": a.is_active,
        "acknowledged": a.acknowledged_at is not None,
        "held": None if marks is None else marks.held_words,
    }


def _human(moment: str | None) -> str:
    return when(datetime.fromisoformat(moment)) + " UTC" if moment else "-"


class _HealthCheck(click.Command):
    """A command whose every failure to tell — bad options, an unreadable store — exits 3."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            exc.exit_code = EXIT_UNKNOWN  # type: ignore[misc]  # a ClassVar in click's stubs, per instance in click
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.exit_code = EXIT_UNKNOWN  # type: ignore[misc]  # a ClassVar in click's stubs, per instance in click
            raise
        except ConfigError as exc:
            raise CliError(str(exc), exit_code=EXIT_UNKNOWN) from None
        except Exception as exc:
            if not is_store_error(exc):
                raise
            raise CliError(store_trouble(options().store_url(), exc), exit_code=EXIT_UNKNOWN) from None


@click.command("status", cls=_HealthCheck, short_help="Open incidents, notices and alerts, per site (exit 0/1/2).")
@global_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(as_json: bool) -> None:
    """Show each site's open incidents, the notices users see, maintenance windows and
    silences not over yet, alerts (with the ids `ack` takes) and last evaluation.

    Reads the store your app records into: --store, the config file's store, or
    $NEXTMONTH_HEALTH_STORE. --site shows one site.

    \b
    Exit status (the Nagios plugin convention, for health checks):
      0  calm: no incident open
      1  a degraded incident is open (users see a notice), none critical
      2  a critical incident is open (the admin is alerted)
      3  unknown: the store cannot be read, or a bad option
    """
    code = _status(as_json)
    if code:
        click.get_current_context().exit(code)


def _status(as_json: bool) -> int:
    opts = options()
    configure_logging(opts.verbose)
    url = opts.store_url()
    if url.partition("://")[0] == "memory":
        raise CliError(
            "status reads the store your app records into, and memory:// is empty in a new process: "
            "pass --store sqlite:///path/to/health.db or redis://host:6379/0"
        )
    store = open_existing_store(url)
    try:
        probe_store(store)
        caveats = store.caveats()
        monitor = build_monitor(
            site=opts.site_name(),
            store=store,
            plugins=opts.config.plugins,
            sites=opts.config.sites,
            **opts.settings(),
        )
        sites = [opts.site] if opts.site else sorted(store.sites())
        evaluated = last_evaluations(store)
        now = now_of(monitor)
        short = {
            "maintenance": short_ids(w.id for w in store.maintenance_windows()),
            "silences": short_ids(s.id for s in store.silences()),
            "alerts": short_ids(a.incident_id for a in store.alerts()),
        }
        report = []
        for site in sites:
            recent = monitor.incidents(site)
            open_now = [i for i in recent if i.is_open]
            notices = []
            for area in sorted({i.area for i in open_now}):
                for notice in monitor.notices(area, site=site):
                    notices.append(
                        {
                            "area": area,
                            "title": notice.title,
                            "message": notice.message,
                            "severity": str(notice.severity),
                            "kind": notice.kind,
                        }
                    )
            alerts = monitor.alerts(site)
            silences = monitor.silences(site)
            planned = Planned.of(monitor.maintenance(site), silences)
            by_id = {i.id: i for i in recent}
            report.append(
                {
                    "site": site,
                    "last_evaluation": None if evaluated is None else iso(evaluated.get(site)),
                    "open_incidents": [_incident(i, any(s.covers(i, now) for s in silences)) for i in open_now],
                    "notices": notices,
                    "maintenance": [window_json(w, now) for w in monitor.maintenance(site)],
                    "silences": [silence_json(s, now) for s in silences],
                    "alerts": [
                        _alert(a, planned.marks(by_id[a.incident_id], a, now) if a.incident_id in by_id else None)
                        for a in alerts
                    ],
                    "resolved_recently": len(recent) - len(open_now),
                    "learning": monitor.learning(site),
                }
            )
    finally:
        store.close()
    severities = {i["severity"] for entry in report for i in entry["open_incidents"]}
    code = EXIT_CRITICAL if "critical" in severities else EXIT_DEGRADED if severities else EXIT_CALM
    state = {EXIT_CALM: "calm", EXIT_DEGRADED: "degraded", EXIT_CRITICAL: "critical"}[code]
    if as_json:
        echo_json(
            {
                "store": url,
                "state": state,
                "store_caveats": list(caveats),
                "last_evaluation_known": evaluated is not None,
                "sites": report,
            }
        )
        return code
    click.echo(f"Store: {url}")
    for caveat in caveats:
        click.echo(f"  Caveat: {caveat}")
    if not report:
        click.echo("No site has recorded anything into this store yet.")
    for entry in report:
        click.echo()
        if evaluated is None:
            last = "unknown (this store does not keep it)"
        else:
            at = evaluated.get(entry["site"])
            last = when(at) + " UTC" if at else "never"
        click.echo(click.style(entry["site"], bold=True) + f"   last evaluation: {last}")
        if entry["learning"]:
            click.echo("  Learning what normal looks like: only clear-cut problems open incidents for now.")
        incidents = entry["open_incidents"]
        if not incidents:
            click.echo("  All well: no open incidents.")
        else:
            click.echo(f"  Open incidents ({len(incidents)}):")
            for i in incidents:
                key = f" {i['key']}" if i["key"] else ""
                click.echo(
                    f"    {i['severity']:<9} {i['check']}{key}  since {_human(i['opened_at'])}, "
                    f"{plural(i['affected_users'], 'person', 'people')} affected: {i['summary']}"
                    + _marks(i, entry["maintenance"])
                )
        if entry["notices"]:
            click.echo("  Notices users see:")
            for n in entry["notices"]:
                click.echo(f'    at "{n["area"]}": {n["title"]} — {n["message"]}')
        _echo_quiet(entry, short)
        alerts = entry["alerts"]
        if alerts:
            active = sum(a["active"] for a in alerts)
            unread = sum(a["active"] and not a["acknowledged"] for a in alerts)
            click.echo(f"  Alerts ({active} active, {unread} unread, {len(alerts) - active} resolved):")
            for a in alerts:
                text = " ".join(a["message"].split("\n"))
                shown = "active" if a["active"] else f"resolved {_human(a['resolved_at'])}"
                if a["held"]:
                    shown += f", {a['held']}"
                click.echo(f"    {a['incident_id'][: short['alerts']]}  {_human(a['created_at'])} ({shown})  {text}")
        if entry["resolved_recently"]:
            click.echo(f"  Resolved in the last 24 h: {plural(entry['resolved_recently'], 'incident')}")
    click.echo()
    click.echo(f"State: {state} (exit status {code})")
    return code


def _marks(incident: dict[str, Any], windows: list[dict[str, Any]]) -> str:
    """`` [during maintenance, silenced]``: why an open incident pages nobody, if it does not."""
    marks = []
    if incident["maintenance_id"] is not None:
        running = any(w["id"] == incident["maintenance_id"] and w["state"] == "running" for w in windows)
        marks.append("during maintenance" if running else "began during maintenance")
    if incident["silenced"]:
        marks.append("silenced")
    return f"  [{', '.join(marks)}]" if marks else ""


def _echo_quiet(entry: dict[str, Any], short: dict[str, int]) -> None:
    """A site's maintenance windows and silences not over yet, one aligned line each."""
    windows, silences = entry["maintenance"], entry["silences"]
    if windows:
        running = sum(w["state"] == "running" for w in windows)
        click.echo(f"  Maintenance ({running} running, {len(windows) - running} upcoming):")
        rows = [
            (
                w["id"][: short["maintenance"]],
                w["state"],
                w["area"] or "whole site",
                f"from {when(datetime.fromisoformat(w['starts_at']))}",
                f"until {_human(w['ends_at'])}",
                w["reason"],
            )
            for w in windows
        ]
        for line in columns(rows):
            click.echo(f"    {line}")
    if silences:
        click.echo(f"  Silences ({len(silences)}):")
        lines = [
            (
                s["id"][: short["silences"]],
                s["check"],
                "every key" if s["key"] is None else s["key"] or '""',
                f"until {_human(s['ends_at'])}",
                s["reason"],
            )
            for s in silences
        ]
        for line in columns(lines):
            click.echo(f"    {line}")
