"""What every store keeps and promises; see ``tests/store_contract.py`` for the proof.

A store holds three kinds of state: time buckets of recorded signals (written by every
process, read by the evaluator), incidents and alerts (written by the evaluator, read by
everyone), and leases (so one process per site evaluates at a time). Calls are
synchronous; the runner moves blocking stores off the event loop with ``to_thread``.
"""

from __future__ import annotations

import abc
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Self, TypeVar

import attrs

from ..signals import SIGNALS, Bucket, hist_add
from ..sketch import DistinctCounter
from ..values import Alert, Incident, MaintenanceWindow, Silence

__all__ = [
    "FIVE_MINUTE_RETENTION",
    "LATE_WRITE_SECONDS",
    "BatchId",
    "Fence",
    "Lookup",
    "SiteSums",
    "Store",
    "StoredBucket",
    "SumBucket",
    "site_lease",
]

#: A recorder's write, as :meth:`Store.write` is told it: (the recorder's id, its number).
BatchId = tuple[str, int]

#: A write's proof of leadership: the lease's name and the fencing token its acquisition
#: returned (see :meth:`Store.acquire_lease`).
Fence = tuple[str, int]

#: How long five-minute roll-ups are kept: a day, so the admin view can draw the last 24
#: hours at five-minute resolution (raw buckets go after ``history_seconds``).
FIVE_MINUTE_RETENTION: Final = 86_400

#: A write into a bucket older than the newest one its site has, by more than this, is
#: *late* (see :meth:`Store.write_marks`): an evaluator may already hold that bucket as
#: settled. Every process flushes each second, so in-sync writers are never this late; a
#: writer whose clock lags, or that could not flush for a while, is.
LATE_WRITE_SECONDS: Final = 15


def site_lease(site: str) -> str:
    """The name of the lease whose holder evaluates ``site`` (and may write its incidents).

    Stores keep a lease of this name beside the site's own data, so that a write fenced
    by it is checked in the same atomic step (one transaction; one Redis slot).
    """
    return f"leader:{site}"


class Store(abc.ABC):
    """The storage interface shared by ``memory://``, ``sqlite://`` and ``redis://``."""

    url: str = ""
    #: True when calls do I/O and should run in a worker thread, off the event loop.
    blocking: bool = False
    #: True when :meth:`save_incident` takes ``fence=`` and refuses stale writes; a store
    #: that does not (an older third-party one) is written without, and is not fenced.
    fencing: bool = False

    @abc.abstractmethod
    def write(self, buckets: Sequence[Bucket], *, batch: BatchId | None = None) -> None:
        """Add bucket deltas to what is stored (counts add up, user sets union).

        The store may keep the given objects: the caller never changes them, and sends
        them again only after this call raised. ``batch`` names a recorder's write: the recorder's id and a number that grows with
        each write. After a failed write the recorder sends the same buckets, in the same
        order, under the same name before anything newer. A store whose write can fail
        after it applied the deltas (a reply lost on the network) uses it to apply each
        batch once; the others may ignore it.
        """

    def caveats(self) -> tuple[str, ...]:
        """Ways this store, as configured, may lose what it keeps, in words for the operator.

        Asked once when a monitor starts running (in a worker thread for a blocking
        store), logged as warnings and shown on the admin page and in ``status()``. A
        store that cannot tell says nothing; it must not raise.
        """
        return ()

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

    def window_users(
        self, site: str, parts: Sequence[tuple[str, Sequence[str] | None, bool]], start: float, end: float
    ) -> int:
        """Distinct users behind a site's buckets starting in ``[start, end)``, over one or
        more ``(signal, keys, bad_only)`` parts (``keys`` None: every key) — their union.

        What a check asks when it reports who was affected. The default reads the buckets
        and counts them with :meth:`count_users`; a networked store counts in one call.
        """
        cells: list[tuple[Bucket, bool]] = []
        read: dict[str, list[Bucket]] = {}
        for signal, keys, bad in parts:
            rows = read.get(signal)
            if rows is None:
                rows = read[signal] = self.read(site, signal, start, end)
            wanted = None if keys is None else set(keys)
            cells += [(bucket, bad) for bucket in rows if wanted is None or bucket.key in wanted]
        return self.count_users(cells) if cells else 0

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

    def read_many(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        """Buckets (``width`` None) or ``width``-wide roll-ups of several sites starting in
        ``[start, end)``: per site, per signal with any, ordered by start.

        What an evaluation pass reads: one call for a batch of sites instead of one per
        site and signal, so a networked store answers in one round trip. The buckets'
        user sketches may be left out (empty): count users over what :meth:`read` returns.
        ``signals``: those to read, the built-in ones unless told (a monitor whose plugins
        declared signals of their own reads those too). The default reads each site and
        signal in turn.
        """
        found: dict[str, dict[str, list[Bucket]]] = {}
        for site in sites:
            found[site] = by_signal = {}
            for signal in signals:
                if width is None:
                    rows = self.read(site, signal, start, end)
                else:
                    rows = self.read_rollup(site, signal, width, start, end)
                if rows:
                    by_signal[signal] = rows
        return found

    def read_rows(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> Iterable[Row]:
        """What :meth:`read_many` reads, as plain tuples ``(site, signal, key, start, total,
        bad, hist)``, grouped by site and signal and ordered by start within, with the
        histogram as the store keeps it (see :meth:`decode_hist`).

        For the evaluator's cache, which keeps thousands of buckets between passes: plain
        tuples, ints and bytes are no work for the garbage collector, objects are.
        """
        for site, by_signal in self.read_many(sites, start, end, width=width, signals=signals).items():
            for signal, rows in by_signal.items():
                for b in rows:
                    yield (site, signal, b.key, b.start, b.total, b.bad, b.hist)

    def decode_hist(self, hist: Any) -> Counter[int]:
        """A histogram as :meth:`read_rows` gave it, as a Counter (read-only)."""
        return hist  # type: ignore[no-any-return]

    def read_sums(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        """Like :meth:`read_many`, but one bucket per (signal, key): the sum of that series
        over the range, starting at ``start`` (a :class:`SumBucket`, users left out).

        What a pass reads when it has nothing cached. The default adds up ``read_many``.
        """
        at = int(start)
        return {
            site: {signal: sum_by_key(site, signal, at, rows) for signal, rows in by_signal.items()}
            for site, by_signal in self.read_many(sites, start, end, width=width, signals=signals).items()
        }

    def sums(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, SiteSums]:
        """:meth:`read_sums`'s answer by signal, then by key: what a pass hands each site's
        view. A store that keeps everything in memory may answer lazily (summing a series
        when it is looked up, as of then), so that a pass pays only for what checks ask.
        """
        return {
            site: {signal: {b.key: b for b in rows} for signal, rows in by_signal.items()}
            for site, by_signal in self.read_sums(sites, start, end, width=width, signals=signals).items()
        }

    def read_hourly(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        """Hourly roll-ups, for trend graphs."""
        return self.read_rollup(site, signal, HOUR, start, end)

    @abc.abstractmethod
    def sites(self) -> set[str]:
        """Every site with buckets, incidents or alerts stored."""

    @abc.abstractmethod
    def save_incident(self, incident: Incident, *, fence: Fence | None = None) -> Incident:
        """Insert or replace an incident by id; return what is stored for it afterwards.

        Idempotent opening, so that two processes evaluating the same site at once cannot
        produce two incidents: a new open incident whose (site, check, key) already has
        an open one is not stored, and that one is returned; a resolved incident is never
        reopened. The caller announces its transition only if it got its own back.

        ``fence`` (a store with :attr:`fencing`): the write happens only if the lease's
        token is still the one given, checked atomically with the write; otherwise nothing
        is written and :class:`~nextmonth_health.errors.StaleLease` is raised. So a leader
        paused past its lease, whose place another process took, cannot announce a
        second alert when it wakes.
        """

    def open_incidents(self, sites: Sequence[str]) -> dict[str, list[Incident]]:
        """The open incidents of several sites at once (an evaluation pass's first read)."""
        return {site: self.incidents(site, open_only=True) for site in sites}

    @abc.abstractmethod
    def incidents(
        self, site: str | None = None, *, open_only: bool = False, resolved_since: datetime | None = None
    ) -> list[Incident]:
        """Incidents, newest first: open ones, and resolved ones resolved at or after ``resolved_since``."""

    @abc.abstractmethod
    def save_alert(self, alert: Alert) -> None:
        """Insert or replace the alert of an incident (one alert per incident).

        An acknowledgement already stored is kept when the new alert carries none,
        ``created_at`` never moves later than the stored one, and ``notified_at`` and
        ``reminders`` never go back (they move through :meth:`mark_alert_notified`).
        """

    @abc.abstractmethod
    def alerts(self, site: str | None = None) -> list[Alert]:
        """Alerts, newest first."""

    @abc.abstractmethod
    def acknowledge_alert(self, incident_id: str, at: datetime) -> Alert | None:
        """Mark an alert read by the admin (first acknowledgement wins); None if unknown."""

    @abc.abstractmethod
    def mark_alert_notified(
        self, incident_id: str, *, expected: datetime | None, at: datetime, reminder: bool = False
    ) -> Alert | None:
        """Note that the push sinks are told of an alert at ``at``, only if its
        ``notified_at`` is still ``expected`` (compare and set, so two processes cannot
        both send one reminder); a ``reminder`` also counts one more. Returns the alert as
        stored afterwards when this call set it, else None (unknown, or another process
        told them first)."""

    # Maintenance windows and silences: planned quiet, shared by every process.

    @abc.abstractmethod
    def save_maintenance(self, window: MaintenanceWindow) -> None:
        """Insert or replace a maintenance window by id."""

    @abc.abstractmethod
    def maintenance_windows(self, site: str | None = None) -> list[MaintenanceWindow]:
        """Maintenance windows (of ``site``, or all), soonest start first, ended ones
        included until a trim forgets them."""

    @abc.abstractmethod
    def save_silence(self, silence: Silence) -> None:
        """Insert or replace a silence by id."""

    @abc.abstractmethod
    def silences(self, site: str | None = None) -> list[Silence]:
        """Silences (of ``site``, or all), soonest start first, ended ones included until a
        trim forgets them."""

    def end_maintenance(self, window_id: str, at: datetime) -> MaintenanceWindow | None:
        """End a window at ``at`` if it would run longer (one not begun yet is cancelled:
        it ends as it starts); the window as stored, or None if unknown."""
        found = next((w for w in self.maintenance_windows() if w.id == window_id), None)
        if found is None or found.ends_at <= at:
            return found
        ended = attrs.evolve(found, ends_at=max(at, found.starts_at))
        self.save_maintenance(ended)
        return ended

    def end_silence(self, silence_id: str, at: datetime) -> Silence | None:
        """End a silence at ``at`` if it would run longer; the silence as stored, or None."""
        found = next((s for s in self.silences() if s.id == silence_id), None)
        if found is None or found.ends_at <= at:
            return found
        ended = attrs.evolve(found, ends_at=max(at, found.starts_at))
        self.save_silence(ended)
        return ended

    @abc.abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> int:
        """Take or renew the lease ``name`` for ``ttl`` seconds.

        Returns its fencing token — a number that grows with every new holder and stays
        the same while one owner renews — or 0 (false) while another owner holds it. A
        store without :attr:`fencing` may return True for a taken lease.
        """

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float, now: float) -> list[int]:
        """:meth:`acquire_lease` for several leases at once (one write, or one round trip)."""
        return [self.acquire_lease(name, owner, ttl, now) for name in names]

    @abc.abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up, only if ``owner`` holds it (its token is kept: the next
        holder's is greater)."""

    @abc.abstractmethod
    def trim(
        self,
        *,
        buckets_before: float,
        hourly_before: float,
        resolved_before: datetime,
        five_minute_before: float | None = None,
    ) -> None:
        """Forget raw buckets older than ``buckets_before``, five-minute roll-ups older than
        ``five_minute_before`` (default: ``buckets_before``; a pass keeps them a day, for
        the admin view's 24-hour charts), hourly roll-ups older than ``hourly_before``,
        incidents (with their alerts) resolved before ``resolved_before``, and maintenance
        windows and silences that ended before it."""

    def time(self) -> float | None:
        """The store's own clock, in Unix seconds, where it has one every process shares
        (Redis's ``TIME``); None otherwise (SQLite's processes share the host's clock).

        A monitor on the real clock compares it with its own now and then, and says so
        when they differ by more than a few seconds.
        """
        return None

    def write_marks(self, sites: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per site that was written to: the start of its newest bucket, and how many late
        writes it has had (see :data:`LATE_WRITE_SECONDS`).

        For a reader that keeps a site's settled buckets between passes: it takes buckets
        as settled only some time before the newest the store holds — not before its own
        clock's now, which may run ahead of the writers' — and reads the site whole again
        when its late count moved. So the counts of a worker whose clock runs behind the
        evaluator's, or that could not flush for a while, are seen on the next pass.
        Judged by the store against what it holds, so no clock decides it. The default
        keeps the marks in this object, from :meth:`_note_writes`.
        """
        newest = self.__dict__.get("_newest_starts", {})
        counts = self.__dict__.get("_late_counts", {})
        return {site: (newest[site], counts.get(site, 0)) for site in sites if site in newest}

    def _note_writes(self, starts: Mapping[str, tuple[int, int]]) -> None:
        """Count late writes: ``starts`` holds each written site's oldest and newest bucket start."""
        newest = self.__dict__.setdefault("_newest_starts", {})
        counts = self.__dict__.setdefault("_late_counts", {})
        for site, (low, high) in starts.items():
            seen = newest.get(site)
            if seen is not None and low < seen - LATE_WRITE_SECONDS:
                counts[site] = counts.get(site, 0) + 1
            if seen is None or high > seen:
                newest[site] = high

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

    def visitor_key(self, day: int) -> bytes:
        """The random key that hashes anonymous visitors on UTC day ``day`` (Unix days).

        Every process sharing the store must get the same key for a day (or one person
        counts once per worker), the first to ask creates it, and a store forgets a key
        once its day is over and no event of it can still arrive (two days at most), so
        that an identity cannot be recomputed later. The default keeps them in this
        object, which is all ``memory://`` needs; stores shared between processes keep
        them in the store.
        """
        keys: dict[int, bytes] = self.__dict__.setdefault("_visitor_keys", {})
        if day not in keys:
            for old in [d for d in keys if d < day - 1]:
                del keys[old]
            keys[day] = secrets.token_bytes(32)
        return keys[day]

    def session_generation(self, name: str, *, bump: bool = False) -> int:
        """A counter per ``name`` that every process sharing the store sees, starting at 0;
        ``bump`` adds one first. Returns the count.

        The admin view's sign-in sessions carry the generation they were opened in, and
        signing out bumps it, so a session cookie stops working on every worker at once.
        The default keeps the counters in this object, which is all ``memory://`` needs.
        """
        counters: dict[str, int] = self.__dict__.setdefault("_session_generations", {})
        if bump:
            counters[name] = counters.get(name, 0) + 1
        return counters.get(name, 0)

    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


V = TypeVar("V")


class Lookup(Mapping[str, V]):
    """A mapping that answers through ``get`` (which subclasses define, with ``__iter__``):
    for lazy views of a store, where a missing key is the common case, not an error."""

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key: str) -> V:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: One site's summed series for a span: signal -> key -> one bucket (see :meth:`Store.sums`).
SiteSums = Mapping[str, Mapping[str, Bucket]]

#: One stored bucket as plain data: site, signal, key, start, total, bad, histogram.
Row = tuple[str, str, str, int, int, int, Any]

HOUR = 3600
#: Widths of the roll-ups every store keeps besides the raw buckets.
ROLLUP_WIDTHS: tuple[int, ...] = (300, HOUR)


def hour_of(start: int) -> int:
    return start - start % HOUR


def rollup_of(start: int, width: int) -> int:
    return start - start % width


def sum_by_key(site: str, signal: str, start: int, rows: Iterable[Bucket]) -> list[Bucket]:
    """One :class:`SumBucket` per key of ``rows`` (buckets of one site and signal)."""
    by_key: dict[str, list[Bucket]] = {}
    for bucket in rows:
        parts = by_key.get(bucket.key)
        if parts is None:
            parts = by_key[bucket.key] = []
        parts.append(bucket)
    return [SumBucket.over(site, signal, key, start, parts) for key, parts in by_key.items()]


def newest_first(items: Iterable[Incident]) -> list[Incident]:
    return sorted(items, key=lambda i: (i.opened_at, i.id), reverse=True)


def _lazy_slot(name: str, index: int, decoder: str) -> property:
    slot = Bucket.__dict__[name]

    def get(self: StoredBucket) -> Any:
        try:
            return slot.__get__(self)
        except AttributeError:
            value = getattr(type(self), decoder)(self._blobs[index])
            slot.__set__(self, value)
            return value

    def set_(self: StoredBucket, value: Any) -> None:
        slot.__set__(self, value)

    return property(get, set_)


class StoredBucket(Bucket):
    """A bucket read from a store, whose histogram and user sketches decode on first use.

    A pass reads hundreds of rows a site and most checks need only their counts; decoding
    every part up front was two thirds of a pass. A store subclasses it with its own
    ``decode_hist`` and ``decode_users`` (``None``: the part was not read, so it is empty).
    """

    __slots__ = ("_blobs",)
    _blobs: tuple[Any, Any, Any]

    hist = _lazy_slot("hist", 0, "decode_hist")
    users = _lazy_slot("users", 1, "decode_users")
    bad_users = _lazy_slot("bad_users", 2, "decode_users")

    @staticmethod
    def decode_hist(blob: Any) -> Counter[int]:
        return Counter()

    @staticmethod
    def decode_users(blob: Any) -> DistinctCounter:
        return DistinctCounter()

    @classmethod
    def of(
        cls, site: str, signal: str, key: str, start: int, total: int, bad: int, blobs: tuple[Any, Any, Any]
    ) -> Self:
        """A bucket with its counts, and its other parts as the store keeps them (``blobs``)."""
        bucket = cls.__new__(cls)  # skip the empty parts __init__ builds
        bucket.site = site
        bucket.signal = signal
        bucket.key = key
        bucket.start = start
        bucket.total = total
        bucket.bad = bad
        bucket._blobs = blobs
        return bucket

    @classmethod
    def grouped(cls, sites: Iterable[str], rows: Iterable[Row]) -> dict[str, dict[str, list[Bucket]]]:
        """:meth:`Store.read_rows` rows as :meth:`Store.read_many` answers: buckets of this
        class (users left out), per site and signal."""
        found: dict[str, dict[str, list[Bucket]]] = {site: {} for site in sites}
        for site, signal, key, start, total, bad, hist in rows:
            by_signal = found[site]
            buckets = by_signal.get(signal)
            if buckets is None:
                buckets = by_signal[signal] = []
            buckets.append(cls.of(site, signal, key, start, total, bad, (hist, None, None)))
        return found


class SumBucket(StoredBucket):
    """One (site, signal, key)'s counts summed over a span (``start`` is the span's), its
    histogram merged from the buckets behind it on first use. No users: see ``window_users``."""

    __slots__ = ()

    @staticmethod
    def decode_hist(parts: Sequence[Bucket] | None) -> Counter[int]:
        hist: Counter[int] = Counter()
        for bucket in parts or ():
            if bucket.hist:
                hist_add(hist, bucket.hist)
        return hist

    @classmethod
    def over(cls, site: str, signal: str, key: str, start: int, parts: Sequence[Bucket]) -> SumBucket:
        """The sum of ``parts`` (buckets of that series)."""
        total = bad = 0
        for part in parts:
            total += part.total
            bad += part.bad
        return cls.of(site, signal, key, start, total, bad, (parts, None, None))
