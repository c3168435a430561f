"""``maintenance add | list | end``: planned work that pages nobody, from the command line.

A deploy script brackets its work with ``add`` and ``end``; every worker and host on the
store honours the window, because it lives in the store, not in this process.
"""

from __future__ import annotations

from datetime import datetime

import click

from ..values import MaintenanceWindow
from ._common import CliError, echo_json, global_options, options, when
from ._planned import (
    now_of,
    pick,
    planning_monitor,
    short_ids,
    site_to_plan,
    state,
    table,
    window_json,
)
from ._when import Duration, Moment, span

__all__ = ["command"]

LISTING = "nextmonth-health maintenance list --all"


@click.group("maintenance", short_help="Plan work on a site: no alerts, a planned-maintenance notice.")
@global_options
def command() -> None:
    """Plan work on a site, or on one area of it, so that it pages nobody.

    While a window runs, incidents in its scope are still recorded and marked "during
    maintenance", no alert is sent about them, and people there see a planned-maintenance
    notice instead of the incident's. It ends by itself; a problem that outlives it is
    alerted then.

    \b
      nextmonth-health maintenance add --site acme-studio --area uploads --for 30m --reason "Deploying v2.3"
      nextmonth-health maintenance list
      nextmonth-health maintenance end 3f2a9c1e
    """


@command.command("add", short_help="Schedule a window for --site, now or from --start.")
@global_options
@click.option(
    "--area",
    metavar="AREA",
    help="Only this area (uploads, bookings, ...); the whole site when left out.",
)
@click.option(
    "--start",
    type=Moment(),
    metavar="WHEN",
    help="When it starts: ISO 8601 with a zone, now, +30m (default: now).",
)
@click.option(
    "--for",
    "duration",
    type=Duration(),
    metavar="DURATION",
    help="How long: 30m, 2h, 1h30m, 1d (at most a week).",
)
@click.option(
    "--until",
    type=Moment(),
    metavar="WHEN",
    help="When it ends, instead of --for: 2026-01-05T22:30Z, +2h.",
)
@click.option(
    "--reason",
    default="",
    metavar="TEXT",
    help="For the admin and this list; never shown to visitors.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the window as JSON.")
def add(
    area: str | None,
    start: datetime | None,
    duration: float | None,
    until: datetime | None,
    reason: str,
    as_json: bool,
) -> None:
    """Schedule a maintenance window for --site (required), now or from --start."""
    if (duration is None) == (until is None):
        raise click.UsageError("say how long: --for DURATION (30m, 2h) or --until WHEN, one of them")
    with planning_monitor() as monitor:
        site = site_to_plan(monitor)
        try:
            window = monitor.schedule_maintenance(
                start=start, end=until, duration=duration, reason=reason, area=area, site=site
            )
        except ValueError as exc:
            raise CliError(f"cannot schedule that window: {exc}") from None
        now = now_of(monitor)
        length = short_ids(w.id for w in monitor.store.maintenance_windows())
    if as_json:
        echo_json(window_json(window, now))
        return
    _say_scheduled(window, now, length)


def _say_scheduled(window: MaintenanceWindow, now: datetime, length: int) -> None:
    short = window.id[:length]
    scope = f"{window.area} only" if window.area else "the whole site"
    soon = window.starts_at - now
    starts = " (in " + span(soon.total_seconds()) + ")" if soon.total_seconds() >= 1 else " (now)"
    click.echo(f"Scheduled maintenance {short} at {window.site}, {scope}.")
    click.echo(f"  From:    {when(window.starts_at)} UTC{starts}")
    click.echo(f"  Until:   {when(window.ends_at)} UTC ({span((window.ends_at - window.starts_at).total_seconds())})")
    if window.reason:
        click.echo(f"  Reason:  {window.reason}")
    click.echo("While it runs, incidents there are recorded but no alert is sent, and people there see")
    click.echo("a planned-maintenance notice. It ends by itself; to end it early:")
    click.echo(f"  nextmonth-health maintenance end {short}")


@command.command("list", short_help="Windows running or to come (--all: ended ones too).")
@global_options
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Ended and cancelled windows too, while the store keeps them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def list_windows(show_all: bool, as_json: bool) -> None:
    """The maintenance windows running now or to come (of --site, or every site)."""
    site = options().site
    with planning_monitor() as monitor:
        windows = monitor.store.maintenance_windows(site) if show_all else monitor.maintenance(site)
        now = now_of(monitor)
        length = short_ids(w.id for w in monitor.store.maintenance_windows())
        url = monitor.store.url
    if as_json:
        echo_json({"store": url, "windows": [window_json(w, now) for w in windows]})
        return
    if not windows:
        where = f"at {site}" if site else "in this store"
        hint = "" if show_all else " (--all shows ended ones)"
        click.echo(f"No maintenance window is running or to come {where}{hint}.")
        return
    table(
        ("ID", "SITE", "AREA", "FROM (UTC)", "UNTIL (UTC)", "STATE", "REASON"),
        [_row(w, now, length) for w in windows],
    )


def _row(window: MaintenanceWindow, now: datetime, length: int) -> tuple[str, ...]:
    return (
        window.id[:length],
        window.site,
        window.area or "whole site",
        when(window.starts_at),
        when(window.ends_at),
        state(window.starts_at, window.ends_at, now),
        window.reason or "-",
    )


@command.command("end", short_help="End a window now, or cancel one to come.")
@global_options
@click.argument("window_id", metavar="ID")
def end(window_id: str) -> None:
    """End a window now (one still to come is cancelled); ID may be a unique prefix."""
    with planning_monitor() as monitor:
        found = pick(monitor.store.maintenance_windows(), window_id, "maintenance window", LISTING)
        now = now_of(monitor)
        ended = monitor.end_maintenance(found.id)
        length = short_ids(w.id for w in monitor.store.maintenance_windows())
    if ended is None:
        raise CliError(f"the maintenance window {found.id} is gone from the store; {LISTING} shows what is left")
    click.echo(_ending(found, ended, now, length))


def _ending(before: MaintenanceWindow, after: MaintenanceWindow, now: datetime, length: int) -> str:
    """What ending did, judged from the window as it was: ended, cancelled, or already over."""
    name = f"Maintenance {before.id[:length]} at {before.site}"
    was = state(before.starts_at, before.ends_at, now)
    if was in ("ended", "cancelled"):
        return f"{name} was already over ({was} at {when(before.ends_at)} UTC); nothing to do."
    if was == "upcoming":
        return f"{name} is cancelled: it was to start at {when(before.starts_at)} UTC."
    early = span((before.ends_at - after.ends_at).total_seconds())
    return f"{name} ended at {when(after.ends_at)} UTC, {early} early: its alerts are no longer held back."
