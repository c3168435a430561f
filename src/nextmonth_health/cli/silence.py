"""``silence add | list | end``: quiet for one check while the admin works on it.

A silence holds back alerts and reminders only; the incident stays in the admin view and
people still see its notice, so nobody is told less than the truth.
"""

from __future__ import annotations

from datetime import datetime

import click

from ..tell.quiet import DEFAULT_SILENCE_SECONDS
from ..values import Silence
from ._common import CliError, echo_json, global_options, options, when
from ._planned import (
    known_check,
    now_of,
    pick,
    planning_monitor,
    short_ids,
    silence_json,
    site_to_plan,
    state,
    table,
)
from ._when import Duration, span

__all__ = ["command"]

LISTING = "nextmonth-health silence list --all"


@click.group("silence", short_help="Hold back alerts and reminders for one check for a while.")
@global_options
def command() -> None:
    """Hold back alerts and reminders for one check of a site (on one key, or all of them).

    Its incidents stay in the admin view, marked silenced, and people still see their
    notices. When the silence ends and the problem is still there, the alert is sent.

    \b
      nextmonth-health silence add --site acme-studio --check api_errors --key /media-upload --for 2h
      nextmonth-health silence list
      nextmonth-health silence end 9a8b7c6d
    """


@command.command("add", short_help="Silence --check at --site from now, for --for (2h).")
@global_options
@click.option(
    "--check",
    required=True,
    metavar="CHECK",
    help="The check to silence: api_errors, upload_failures, ...",
)
@click.option("--key", metavar="KEY", help="Only this key of it (a route, a page); every key when left out.")
@click.option(
    "--for", "duration", type=Duration(), default=span(DEFAULT_SILENCE_SECONDS), show_default=True,
    metavar="DURATION", help="How long: 30m, 2h, 1h30m, 1d (at most a week).",
)  # fmt: skip
@click.option("--reason", default="", metavar="TEXT", help="For the admin and this list.")
@click.option("--json", "as_json", is_flag=True, help="Print the silence as JSON.")
def add(check: str, key: str | None, duration: float, reason: str, as_json: bool) -> None:
    """Silence --check at --site (both required) from now, for --for."""
    with planning_monitor() as monitor:
        site = site_to_plan(monitor)
        known_check(monitor, site, check)
        try:
            made = monitor.silence(check, key, duration=duration, reason=reason, site=site)
        except ValueError as exc:
            raise CliError(f"cannot make that silence: {exc}") from None
        now = now_of(monitor)
        length = short_ids(s.id for s in monitor.store.silences())
    if as_json:
        echo_json(silence_json(made, now))
        return
    short = made.id[:length]
    click.echo(f"Silenced {_what(made)} at {made.site}.")
    click.echo(f"  Until:   {when(made.ends_at)} UTC ({span((made.ends_at - made.starts_at).total_seconds())})")
    if made.reason:
        click.echo(f"  Reason:  {made.reason}")
    click.echo("No alert or reminder is sent about it until then; the admin view still shows it.")
    click.echo(f"To lift it early: nextmonth-health silence end {short}")


def _what(silence: Silence) -> str:
    return f"{silence.check} on {silence.key}" if silence.key is not None else f"{silence.check} on every key"


@command.command("list", short_help="Silences in force (--all: ended ones too).")
@global_options
@click.option("--all", "show_all", is_flag=True, help="Ended silences too, while the store keeps them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def list_silences(show_all: bool, as_json: bool) -> None:
    """The silences in force now (of --site, or every site)."""
    site = options().site
    with planning_monitor() as monitor:
        silences = monitor.store.silences(site) if show_all else monitor.silences(site)
        now = now_of(monitor)
        length = short_ids(s.id for s in monitor.store.silences())
        url = monitor.store.url
    if as_json:
        echo_json({"store": url, "silences": [silence_json(s, now) for s in silences]})
        return
    if not silences:
        where = f"at {site}" if site else "in this store"
        hint = "" if show_all else " (--all shows ended ones)"
        click.echo(f"No silence is in force {where}{hint}.")
        return
    table(
        ("ID", "SITE", "CHECK", "KEY", "FROM (UTC)", "UNTIL (UTC)", "STATE", "REASON"),
        [_row(s, now, length) for s in silences],
    )


def _row(silence: Silence, now: datetime, length: int) -> tuple[str, ...]:
    return (
        silence.id[:length],
        silence.site,
        silence.check,
        "every key" if silence.key is None else silence.key or '""',
        when(silence.starts_at),
        when(silence.ends_at),
        state(silence.starts_at, silence.ends_at, now),
        silence.reason or "-",
    )


@command.command("end", short_help="Lift a silence now.")
@global_options
@click.argument("silence_id", metavar="ID")
def end(silence_id: str) -> None:
    """Lift a silence now; ID may be a unique prefix."""
    with planning_monitor() as monitor:
        found = pick(monitor.store.silences(), silence_id, "silence", LISTING)
        now = now_of(monitor)
        ended = monitor.end_silence(found.id)
        length = short_ids(s.id for s in monitor.store.silences())
    if ended is None:
        raise CliError(f"the silence {found.id} is gone from the store; {LISTING} shows what is left")
    name = f"The silence {found.id[:length]} of {_what(found)} at {found.site}"
    if state(found.starts_at, found.ends_at, now) in ("ended", "cancelled"):
        click.echo(f"{name} was already over (at {when(found.ends_at)} UTC); nothing to do.")
        return
    click.echo(f"{name} is lifted: alerts about it are sent again.")
