"""``memory://`` — the store for tests and single-process scripts: same semantics, no durability.

Each series of buckets is packed into arrays and bytes (see :mod:`.series`), so that a
store of many sites adds little to the host's garbage collections; readers get buckets
made for them.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import attrs

from ..errors import StaleLease
from ..signals import SIGNALS, Bucket
from ..sketch import DistinctCounter
from ..values import Alert, Incident, MaintenanceWindow, Silence
from .base import HOUR, ROLLUP_WIDTHS, BatchId, Fence, Lookup, SiteSums, Store, SumBucket, newest_first, rollup_of
from .series import Series

__all__ = ["MemoryStore"]


class _SeriesSum(SumBucket):
    """A series' counts over a span; its histogram is the series' running one, on use."""

    __slots__ = ()

    @staticmethod
    def decode_hist(source: tuple[Series, _Span]) -> Counter[int]:  # type: ignore[override]  # fed only its own blobs
        series, span = source
        with span.lock:
            return series.merged_hist(span.start, span.end)

    @property
    def hist(self) -> Counter[int]:  # type: ignore[override]  # read-only by design: the series keeps it
        """Not kept on the bucket: finding it unset would cost an exception, and a
        window asks once (later asks cost no merge: the series keeps its histogram)."""
        return self.decode_hist(self._blobs[0])


class _Span:
    """What one :meth:`MemoryStore.sums` call's lookups share: the table, the range and
    the signals it lists."""

    __slots__ = ("at", "bounds", "end", "lock", "signals", "start", "table")

    def __init__(
        self, table: _Table, start: float, end: float, lock: threading.Lock, signals: Sequence[str] = SIGNALS
    ) -> None:
        self.table = table
        self.signals = signals
        self.start = _whole(start)
        self.end = _whole(end)
        # One tuple for equal bounds, pass after pass: a series' memo is checked by
        # identity, without touching the ints (each its own object, likely not in cache).
        bounds = (self.start, self.end)
        if len(_BOUNDS) > 64:
            _BOUNDS.clear()
        self.bounds = _BOUNDS.setdefault(bounds, bounds)
        self.at = int(start)
        self.lock = lock


_BOUNDS: dict[tuple[float, float], tuple[float, float]] = {}


class _SignalSums(Lookup[Bucket]):
    """One site and signal's series summed over a span, each summed when looked up."""

    __slots__ = ("by_key", "signal", "site", "span")

    def __init__(self, site: str, signal: str, by_key: dict[str, Series], span: _Span) -> None:
        self.site = site
        self.signal = signal
        self.by_key = by_key
        self.span = span

    def get(self, key: str, default: Any = None) -> Any:
        series = self.by_key.get(key)
        if series is None:
            return default
        span = self.span
        lock = span.lock
        lock.acquire()  # not ``with``: half the cost, paid thousands of times a pass
        try:
            if series.memo is span.bounds:  # compared by identity: no int objects touched
                total, bad = series.memo_total, series.memo_bad
            else:
                starts = series.starts
                lo = bisect_left(starts, span.start)
                hi = bisect_left(starts, span.end, lo)
                if lo >= hi:
                    return default
                sums = series.sums
                lo *= 2
                hi *= 2
                total = series.memo_total = sums[hi] - sums[lo]
                bad = series.memo_bad = sums[hi + 1] - sums[lo + 1]
                series.memo = span.bounds
        finally:
            lock.release()
        found = _new(_SeriesSum)  # StoredBucket.of, less a call: a pass makes thousands
        found.site = self.site
        found.signal = self.signal
        found.key = key
        found.start = span.at
        found.total = total
        found.bad = bad
        found._blobs = ((series, span), None, None)
        return found

    def values(self) -> list[Bucket]:  # type: ignore[override]
        """Every key's sum, in one go (a view would look each key up twice)."""
        return [b for key in self.by_key if (b := self.get(key)) is not None]

    def __iter__(self) -> Iterator[str]:
        span = self.span
        with span.lock:
            found = [key for key, series in self.by_key.items() if series.holds(span.start, span.end)]
        return iter(found)


class _SiteSums(Lookup[Mapping[str, Bucket]]):
    """One site's signals, as :class:`_SignalSums` made on demand."""

    __slots__ = ("made", "site", "span")

    def __init__(self, site: str, span: _Span) -> None:
        self.site = site
        self.span = span
        self.made: dict[str, _SignalSums] = {}

    def get(self, signal: str, default: Any = None) -> Any:
        found = self.made.get(signal)
        if found is None:
            keys = self.span.table.get((self.site, signal))
            if keys is None:
                return default
            found = self.made[signal] = _SignalSums(self.site, signal, keys, self.span)
        return found

    def __iter__(self) -> Iterator[str]:
        table = self.span.table
        return (signal for signal in self.span.signals if (self.site, signal) in table)


_new = object.__new__


def _whole(bound: float) -> float:
    """A range's bound as the int that bisects bucket starts (whole seconds) alike: an
    array bisects an int twice as fast as a float, and a pass bisects thousands of series."""
    return bound if type(bound) is int or not math.isfinite(bound) else math.ceil(bound)


#: (site, signal) -> key -> its buckets.
_Table = dict[tuple[str, str], dict[str, Series]]


def _start(bucket: Bucket) -> int:
    return bucket.start


class MemoryStore(Store):
    fencing = True

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._buckets: _Table = {}
        self._rollups: dict[int, _Table] = {width: {} for width in ROLLUP_WIDTHS}
        self._incidents: dict[str, Incident] = {}
        self._alerts: dict[str, Alert] = {}
        self._maintenance: dict[str, MaintenanceWindow] = {}
        self._silences: dict[str, Silence] = {}
        #: Lease name -> (holder, expires, fencing token); released leases keep their token.
        self._leases: dict[str, tuple[str, float, int]] = {}
        self._lock = threading.Lock()

    def write(self, buckets: Sequence[Bucket], *, batch: BatchId | None = None) -> None:
        with self._lock:
            starts: dict[str, tuple[int, int]] = {}
            for bucket in buckets:
                site, start = bucket.site, bucket.start
                seen = starts.get(site)
                if seen is None:
                    starts[site] = (start, start)
                elif start < seen[0] or start > seen[1]:
                    starts[site] = (min(seen[0], start), max(seen[1], start))
                name = (site, bucket.signal)
                key = bucket.key
                for width, table in self._rollups.items():
                    keys = table.get(name) or table.setdefault(name, {})
                    series = keys.get(key) or keys.setdefault(key, Series(users=False))
                    series.add(bucket, rollup_of(bucket.start, width))
                keys = self._buckets.get(name) or self._buckets.setdefault(name, {})
                series = keys.get(key) or keys.setdefault(key, Series(users=True))
                series.add(bucket, bucket.start, keep=True)
            self._note_writes(starts)

    def caveats(self) -> tuple[str, ...]:
        return (
            (
                "memory:// keeps incidents and alerts in this process only: a restart forgets them,"
                " and every worker process has its own; use sqlite:// or redis:// to keep and share them"
            ),
        )

    def _rows(self, table: _Table, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        rows: list[Bucket] = []
        for key, series in table.get((site, signal), {}).items():
            rows += series.buckets(site, signal, key, start, end)
        rows.sort(key=_start)
        return rows

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        with self._lock:
            return self._rows(self._buckets, site, signal, start, end)

    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        with self._lock:
            return self._rows(self._rollups[width], site, signal, start, end)

    def read_many(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        table = self._buckets if width is None else self._rollups[width]
        found: dict[str, dict[str, list[Bucket]]] = {}
        with self._lock:
            for site in sites:
                found[site] = by_signal = {}
                for signal in signals:
                    if (site, signal) in table and (rows := self._rows(table, site, signal, start, end)):
                        by_signal[signal] = rows
        return found

    def read_sums(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        """From the running sums: a pass costs the same however many buckets its windows span."""
        found: dict[str, dict[str, list[Bucket]]] = {}
        for site, by_signal in self.sums(sites, start, end, width=width).items():
            found[site] = {
                signal: rows
                for signal in signals
                # A _SiteSums' signals are _SignalSums, whose values() is a list.
                if (by_key := by_signal.get(signal)) is not None and (rows := cast("list[Bucket]", by_key.values()))
            }
        return found

    def sums(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, SiteSums]:
        """Lazily: a series is summed (two bisections) when a check looks it up, whatever
        its signal; ``signals`` are those a site's sums list when iterated."""
        span = _Span(self._buckets if width is None else self._rollups[width], start, end, self._lock, signals)
        return {site: _SiteSums(site, span) for site in sites}

    def window_users(
        self, site: str, parts: Sequence[tuple[str, Sequence[str] | None, bool]], start: float, end: float
    ) -> int:
        """Counted from the packed sketches, with no bucket made for it."""
        merged = DistinctCounter()
        with self._lock:
            for signal, keys, bad in parts:
                by_key = self._buckets.get((site, signal))
                if by_key is None:
                    continue
                for key in by_key if keys is None else dict.fromkeys(keys):
                    series = by_key.get(key)
                    if series is not None:
                        series.merge_users(merged, start, end, bad=bad)
        return len(merged)

    def sites(self) -> set[str]:
        with self._lock:
            found = {site for site, _ in self._buckets}
            found.update(i.site for i in self._incidents.values())
            found.update(a.site for a in self._alerts.values())
            return found

    def save_incident(self, incident: Incident, *, fence: Fence | None = None) -> Incident:
        with self._lock:
            if fence is not None and self._leases.get(fence[0], ("", 0.0, 0))[2] != fence[1]:
                raise StaleLease(f"the lease {fence[0]!r} has a newer holder than token {fence[1]}")
            stored = self._incidents.get(incident.id)
            if stored is not None:
                if incident.is_open and not stored.is_open:
                    return stored
            elif incident.is_open:
                for rival in self._incidents.values():
                    if rival.is_open and (rival.site, rival.check, rival.key) == (
                        incident.site,
                        incident.check,
                        incident.key,
                    ):
                        return rival
            self._incidents[incident.id] = incident
            return incident

    def incidents(
        self, site: str | None = None, *, open_only: bool = False, resolved_since: datetime | None = None
    ) -> list[Incident]:
        with self._lock:
            found = [
                i
                for i in self._incidents.values()
                if (site is None or i.site == site)
                and (
                    i.is_open
                    or (
                        not open_only
                        and (resolved_since is None or (i.resolved_at is not None and i.resolved_at >= resolved_since))
                    )
                )
            ]
        return newest_first(found)

    def open_incidents(self, sites: Sequence[str]) -> dict[str, list[Incident]]:
        found: dict[str, list[Incident]] = {site: [] for site in sites}
        with self._lock:
            for incident in self._incidents.values():
                if incident.is_open and incident.site in found:
                    found[incident.site].append(incident)
        return {site: newest_first(incidents) for site, incidents in found.items()}

    def save_alert(self, alert: Alert) -> None:
        with self._lock:
            stored = self._alerts.get(alert.incident_id)
            if stored is not None:
                alert = attrs.evolve(
                    alert,
                    created_at=min(stored.created_at, alert.created_at),
                    acknowledged_at=alert.acknowledged_at or stored.acknowledged_at,
                    notified_at=_later(alert.notified_at, stored.notified_at),
                    reminders=max(alert.reminders, stored.reminders),
                )
            self._alerts[alert.incident_id] = alert

    def mark_alert_notified(
        self, incident_id: str, *, expected: datetime | None, at: datetime, reminder: bool = False
    ) -> Alert | None:
        with self._lock:
            alert = self._alerts.get(incident_id)
            if alert is None or alert.notified_at != expected:
                return None
            alert = self._alerts[incident_id] = attrs.evolve(
                alert, notified_at=at, reminders=alert.reminders + reminder
            )
            return alert

    def save_maintenance(self, window: MaintenanceWindow) -> None:
        with self._lock:
            self._maintenance[window.id] = window

    def maintenance_windows(self, site: str | None = None) -> list[MaintenanceWindow]:
        with self._lock:
            found = [w for w in self._maintenance.values() if site is None or w.site == site]
        return sorted(found, key=lambda w: (w.starts_at, w.id))

    def save_silence(self, silence: Silence) -> None:
        with self._lock:
            self._silences[silence.id] = silence

    def silences(self, site: str | None = None) -> list[Silence]:
        with self._lock:
            found = [s for s in self._silences.values() if site is None or s.site == site]
        return sorted(found, key=lambda s: (s.starts_at, s.id))

    def alerts(self, site: str | None = None) -> list[Alert]:
        with self._lock:
            found = [a for a in self._alerts.values() if site is None or a.site == site]
        return sorted(found, key=lambda a: (a.created_at, a.incident_id), reverse=True)

    def acknowledge_alert(self, incident_id: str, at: datetime) -> Alert | None:
        with self._lock:
            alert = self._alerts.get(incident_id)
            if alert is not None and alert.acknowledged_at is None:
                alert = self._alerts[incident_id] = attrs.evolve(alert, acknowledged_at=at)
            return alert

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> int:
        with self._lock:
            holder, expires, token = self._leases.get(name, ("", 0.0, 0))
            if holder != owner:
                if expires > now:
                    return 0
                token += 1
            self._leases[name] = (owner, now + ttl, token)
            return token

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            holder, _, token = self._leases.get(name, ("", 0.0, 0))
            if holder == owner:
                self._leases[name] = ("", 0.0, token)

    def trim(
        self,
        *,
        buckets_before: float,
        hourly_before: float,
        resolved_before: datetime,
        five_minute_before: float | None = None,
    ) -> None:
        fine = buckets_before if five_minute_before is None else five_minute_before
        with self._lock:
            tables = [(self._buckets, buckets_before)] + [
                (table, hourly_before if width >= HOUR else fine) for width, table in self._rollups.items()
            ]
            for table, before in tables:
                for name, keys in list(table.items()):
                    for key, series in list(keys.items()):
                        series.forget_before(before)
                        if not series.starts:
                            del keys[key]
                    if not keys:
                        del table[name]
            gone = [
                i.id for i in self._incidents.values() if i.resolved_at is not None and i.resolved_at < resolved_before
            ]
            for incident_id in gone:
                del self._incidents[incident_id]
                self._alerts.pop(incident_id, None)
            for planned in (self._maintenance, self._silences):
                for key in [k for k, v in planned.items() if v.ends_at < resolved_before]:
                    del planned[key]

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
