"""What every store keeps and promises; see ``tests/store_contract.py`` for the proof.

A store holds three kinds of state: time buckets of recorded signals (written by every
process, read by the evaluator), incidents and alerts (written by the evaluator, read by
everyone), and leases (so one process per site evaluates at a time). Calls are
synchronous; the runner moves blocking stores off the event loop with ``to_thread``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime

from ..signals import Bucket
from ..sketch import DistinctCounter
from ..values import Alert, Incident

__all__ = ["Store"]


class Store(abc.ABC):
    """The storage interface shared by ``memory://``, ``sqlite://`` and ``redis://``."""

    url: str = ""
    #: True when calls do I/O and should run in a worker thread, off the event loop.
    blocking: bool = False

    @abc.abstractmethod
    def write(self, buckets: Sequence[Bucket]) -> None:
        """Add bucket deltas to what is stored (counts add up, user sets union).

        The store may keep the given objects; the caller does not use them afterwards.
        """

    @abc.abstractmethod
    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        """Stored buckets of one site and signal whose start lies in ``[start, end)``.

        Callers treat them as read-only: they merge from them and never mutate them.
        """

    def count_users(self, cells: Sequence[tuple[Bucket, bool]]) -> int:
        """Distinct users behind buckets this store's ``read`` returned (``True``: bad ones only).

        The default merges the buckets' own sketches; a store that counts users its own
        way (Redis HyperLogLogs) overrides it.
        """
        merged = DistinctCounter()
        for bucket, bad in cells:
            merged.merge(bucket.bad_users if bad else bucket.users)
        return len(merged)

    @abc.abstractmethod
    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        """Roll-ups ``width`` seconds wide (one of :data:`ROLLUP_WIDTHS`) starting in ``[start, end)``.

        Every written delta also adds its counts and values to the roll-up of each width
        it falls in. Five-minute roll-ups let a check read an hour's baseline as twelve
        rows instead of 360 buckets; hourly ones feed trend graphs and outlive the raw
        buckets (kept ``trend_retention``). Roll-ups keep no user sketches: checks count
        users over the window only, and a month of sketches per series would cost
        megabytes.
        """

    def read_hourly(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        """Hourly roll-ups, for trend graphs."""
        return self.read_rollup(site, signal, HOUR, start, end)

    @abc.abstractmethod
    def sites(self) -> set[str]:
        """Every site with buckets, incidents or alerts stored."""

    @abc.abstractmethod
    def save_incident(self, incident: Incident) -> Incident:
        """Insert or replace an incident by id; return what is stored for it afterwards.

        Idempotent opening, so that two processes evaluating the same site at once cannot
        produce two incidents: a new open incident whose (site, check, key) already has
        an open one is not stored, and that one is returned; a resolved incident is never
        reopened. The caller announces its transition only if it got its own back.
        """

    @abc.abstractmethod
    def incidents(
        self, site: str | None = None, *, open_only: bool = False, resolved_since: datetime | None = None
    ) -> list[Incident]:
        """Incidents, newest first: open ones, and resolved ones resolved at or after ``resolved_since``."""

    @abc.abstractmethod
    def save_alert(self, alert: Alert) -> None:
        """Insert or replace the alert of an incident (one alert per incident).

        An acknowledgement already stored is kept when the new alert carries none, and
        ``created_at`` never moves later than the stored one.
        """

    @abc.abstractmethod
    def alerts(self, site: str | None = None) -> list[Alert]:
        """Alerts, newest first."""

    @abc.abstractmethod
    def acknowledge_alert(self, incident_id: str, at: datetime) -> Alert | None:
        """Mark an alert read by the admin (first acknowledgement wins); None if unknown."""

    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; False while another owner holds it."""

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up, only if ``owner`` holds it."""

    @abc.abstractmethod
    def trim(self, *, buckets_before: float, hourly_before: float, resolved_before: datetime) -> None:
        """Forget raw buckets and five-minute roll-ups older than ``buckets_before``, hourly
        roll-ups older than ``hourly_before``, and incidents (with their alerts) resolved
        before ``resolved_before``."""

    def note_evaluations(self, sites: Sequence[str], at: float) -> None:
        """Remember that these sites were evaluated at ``at`` (one write per pass).

        The default keeps it in this object, which is all ``memory://`` needs.
        """
        evaluated = self.__dict__.setdefault("_evaluated", {})
        for site in sites:
            evaluated[site] = at

    def last_evaluations(self) -> dict[str, datetime]:
        """When each site was last evaluated, by whichever process led it."""
        from ..values import timestamp

        return {site: timestamp(at) for site, at in self.__dict__.get("_evaluated", {}).items()}

    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


HOUR = 3600
#: Widths of the roll-ups every store keeps besides the raw buckets.
ROLLUP_WIDTHS: tuple[int, ...] = (300, HOUR)


def hour_of(start: int) -> int:
    return start - start % HOUR


def rollup_of(start: int, width: int) -> int:
    return start - start % width


def newest_first(items: Iterable[Incident]) -> list[Incident]:
    return sorted(items, key=lambda i: (i.opened_at, i.id), reverse=True)
