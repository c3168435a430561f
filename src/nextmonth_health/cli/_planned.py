"""What the ``maintenance``, ``silence`` and ``ack`` commands share: a monitor on the app's
store, the names and ids they take, and how windows and silences are shown.

They write through the Monitor's API (``schedule_maintenance``, ``silence``, ...), so a
window made here is checked by the same rules as one made in Python or the admin view,
and every worker and host on the store honours it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from ..codec import to_dict
from ..values import MaintenanceWindow, Silence, timestamp
from ._common import (
    CliError,
    build_monitor,
    configure_logging,
    open_existing_store,
    options,
    probe_store,
)

if TYPE_CHECKING:
    from ..monitor import Monitor

__all__ = [
    "columns",
    "known_check",
    "now_of",
    "pick",
    "planning_monitor",
    "short_ids",
    "silence_json",
    "site_to_plan",
    "state",
    "table",
    "window_json",
]

#: Ids are shown this long at least, as git shows commits: enough to be typed back.
SHORT = 8
#: The shortest prefix ``end`` and ``ack`` take, as git takes four characters.
MIN_PREFIX = 4


@contextmanager
def planning_monitor() -> Iterator[Monitor]:
    """A :class:`~nextmonth_health.Monitor` on the store the app records into, which must
    answer; closed afterwards.

    ``memory://`` is refused: what is planned there is forgotten when the command exits.
    """
    opts = options()
    configure_logging(opts.verbose)
    url = opts.store_url()
    if url.partition("://")[0] == "memory":
        raise CliError(
            "windows and silences are kept in the store your app records into, and memory:// "
            "is forgotten when this command exits: pass --store sqlite:///path/to/health.db or redis://host:6379/0"
        )
    store = open_existing_store(url)
    try:
        probe_store(store)
        yield build_monitor(
            site=opts.site_name(),
            store=store,
            plugins=opts.config.plugins,
            sites=opts.config.sites,
            **opts.settings(),
        )
    finally:
        store.close()


def now_of(monitor: Monitor) -> datetime:
    return timestamp(monitor.clock.now())


# The names and ids commands take ----------------------------------------------------------


def _choices(given: str, known: Iterable[str]) -> str:
    """``did you mean 'x'? known: a, b`` for a name that is not among ``known``."""
    names = sorted(known)
    close = difflib.get_close_matches(given, names, n=1) if given else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}known: {', '.join(names)}" if names else "none is known yet"


def site_to_plan(monitor: Monitor) -> str:
    """The site a new window or silence is for: ``--site``, else the config file's ``site``.

    A site the store has never heard of is refused: a misspelt name would make a window
    that covers nothing, and the deploy it was for would page the admin after all.
    """
    opts = options()
    site = opts.site or opts.config.site
    known = monitor.store.sites() | set(opts.config.sites) | ({opts.config.site} if opts.config.site else set())
    if site is None:
        raise click.UsageError(f"say which site with --site NAME ({_choices('', known)})")
    if site not in known:
        raise CliError(
            f"no site named {site!r} records into {monitor.store.url} ({_choices(site, known)}); "
            "a site is known once its app has recorded a request"
        )
    return str(site)


def known_check(monitor: Monitor, site: str, check: str) -> None:
    """Refuse a check no monitor here runs and no incident of ``site`` names: a misspelt
    silence would hold nothing back."""
    names = {c.name for c in monitor.checks} | {i.check for i in monitor.incidents(site)}
    if check not in names:
        raise CliError(
            f"no check named {check!r} runs at {site} ({_choices(check, names)}); a plugin's "
            "check is known once the plugin is installed here or named in the config file's plugins"
        )


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


def pick(items: Sequence[T], given: str, noun: str, listing: str) -> T:
    """The one of ``items`` whose id is ``given`` or starts with it (at least
    :data:`MIN_PREFIX` characters), like git's abbreviated commits."""
    exact = [item for item in items if item.id == given]
    if exact:
        return exact[0]
    if len(given) < MIN_PREFIX:
        raise CliError(f"give at least {MIN_PREFIX} characters of the {noun}'s id, got {given!r}; {listing} shows them")
    found = [item for item in items if item.id.lower().startswith(given.lower())]
    if not found:
        raise CliError(f"no {noun} has an id starting with {given!r}; {listing} shows them")
    if len(found) > 1:
        length = short_ids(item.id for item in found)
        shown = ", ".join(item.id[:length] for item in found)
        raise CliError(f"{given!r} could be any of {len(found)} {noun}s ({shown}): give more of the id")
    return found[0]


def short_ids(ids: Iterable[str]) -> int:
    """How many characters of the ids tell them apart: :data:`SHORT`, or more if needed."""
    unique = set(ids)
    length = SHORT
    while len({i[:length] for i in unique}) < len(unique):
        length += 1
    return length


# How windows and silences are shown --------------------------------------------------------


def state(starts_at: datetime, ends_at: datetime, now: datetime) -> str:
    """``running``, ``upcoming``, ``ended``, or ``cancelled`` (ended before it began)."""
    if ends_at <= starts_at:
        return "cancelled"
    if ends_at <= now:
        return "ended"
    return "upcoming" if starts_at > now else "running"


def window_json(window: MaintenanceWindow, now: datetime) -> dict[str, Any]:
    """A window in the codec's shape, with its ``state`` at ``now``."""
    return {**to_dict(window), "state": state(window.starts_at, window.ends_at, now)}


def silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    """A silence in the codec's shape, with its ``state`` at ``now``."""
    return {**to_dict(silence), "state": state(silence.starts_at, silence.ends_at, now)}


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines, their columns aligned two spaces apart and the last one left ragged."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A header and its rows, aligned as ``status`` lines things up."""
    for line in columns([header, *rows]):
        click.echo(line)
