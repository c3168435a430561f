"""``memory://`` — the store for tests and single-process scripts: same semantics, no durability.

It keeps the buckets it is given and hands out the ones it holds, without copies: the
recorder never touches a bucket after writing it, and readers only merge from them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

import attrs

from ..signals import SIGNALS, Bucket
from ..values import Alert, Incident
from .base import HOUR, ROLLUP_WIDTHS, Store, SumBucket, newest_first, rollup_of

__all__ = ["MemoryStore"]


class _Keyed:
    """One (site, signal, key) over time: buckets ordered by start, with running sums of
    their counts, so the counts of any range cost two bisections, however long it is."""

    __slots__ = ("bads", "buckets", "starts", "totals")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.buckets: list[Bucket] = []
        # totals[i]: what every bucket before buckets[i] counted (trimmed ones included).
        self.totals = [0]
        self.bads = [0]

    def add(self, delta: Bucket, start: int, new: Callable[[], Bucket], merge: Callable[[Bucket, Bucket], None]) -> None:
        starts = self.starts
        i = len(starts) - 1
        if i < 0 or start > starts[i]:
            i += 1
        elif starts[i] != start:  # a late write, before the newest bucket
            i = bisect.bisect_left(starts, start)
        stored = None if i == len(starts) or starts[i] != start else self.buckets[i]
        if stored is None:
            starts.insert(i, start)
            self.buckets.insert(i, stored := new())
            self.totals.insert(i + 1, self.totals[i])
            self.bads.insert(i + 1, self.bads[i])
        if stored is not delta:
            merge(stored, delta)
        totals, bads = self.totals, self.bads
        for j in range(i + 1, len(totals)):
            totals[j] += delta.total
            bads[j] += delta.bad

    def span(self, start: float, end: float) -> tuple[int, int]:
        return bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)

    def forget_before(self, before: float) -> None:
        cut = bisect.bisect_left(self.starts, before)
        del self.starts[:cut], self.buckets[:cut], self.totals[:cut], self.bads[:cut]


#: (site, signal) -> key -> its buckets.
_Table = dict[tuple[str, str], dict[str, _Keyed]]


def _merge(stored: Bucket, delta: Bucket) -> None:
    stored.merge(delta)


def _add_counts(stored: Bucket, delta: Bucket) -> None:
    stored.add_counts(delta)


def _start(bucket: Bucket) -> int:
    return bucket.start


class MemoryStore(Store):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._buckets: _Table = {}
        self._rollups: dict[int, _Table] = {width: {} for width in ROLLUP_WIDTHS}
        self._incidents: dict[str, Incident] = {}
        self._alerts: dict[str, Alert] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def write(self, buckets: Sequence[Bucket]) -> None:
        with self._lock:
            for bucket in buckets:
                name = (bucket.site, bucket.signal)
                site, signal, key = bucket.site, bucket.signal, bucket.key
                for width, table in self._rollups.items():
                    at = rollup_of(bucket.start, width)
                    keys = table.get(name) or table.setdefault(name, {})
                    series = keys.get(key) or keys.setdefault(key, _Keyed())
                    series.add(bucket, at, partial(Bucket, site, signal, key, at), _add_counts)
                keys = self._buckets.get(name) or self._buckets.setdefault(name, {})
                series = keys.get(key) or keys.setdefault(key, _Keyed())
                series.add(bucket, bucket.start, bucket.compact, _merge)

    def _rows(self, table: _Table, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        rows: list[Bucket] = []
        for series in table.get((site, signal), {}).values():
            lo, hi = series.span(start, end)
            rows += series.buckets[lo:hi]
        rows.sort(key=_start)
        return rows

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        with self._lock:
            return self._rows(self._buckets, site, signal, start, end)

    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        with self._lock:
            return self._rows(self._rollups[width], site, signal, start, end)

    def read_many(
        self, sites: Sequence[str], start: float, end: float, *, width: int | None = None
    ) -> dict[str, dict[str, list[Bucket]]]:
        table = self._buckets if width is None else self._rollups[width]
        found: dict[str, dict[str, list[Bucket]]] = {}
        with self._lock:
            for site in sites:
                found[site] = by_signal = {}
                for signal in SIGNALS:
                    if (site, signal) in table and (rows := self._rows(table, site, signal, start, end)):
                        by_signal[signal] = rows
        return found

    def read_sums(
        self, sites: Sequence[str], start: float, end: float, *, width: int | None = None
    ) -> dict[str, dict[str, list[Bucket]]]:
        """From the running sums: a pass costs the same however many buckets its windows span."""
        table = self._buckets if width is None else self._rollups[width]
        at = int(start)
        bisect_left, make = bisect.bisect_left, SumBucket.of
        found: dict[str, dict[str, list[Bucket]]] = {}
        with self._lock:
            for site in sites:
                found[site] = by_signal = {}
                for signal in SIGNALS:
                    keys = table.get((site, signal))
                    if keys is None:
                        continue
                    sums = []
                    for key, series in keys.items():
                        starts = series.starts
                        lo, hi = bisect_left(starts, start), bisect_left(starts, end)
                        if lo < hi:
                            totals, bads = series.totals, series.bads
                            parts = (series.buckets[lo:hi], None, None)
                            sums.append(make(site, signal, key, at, totals[hi] - totals[lo], bads[hi] - bads[lo], parts))
                    if sums:
                        by_signal[signal] = sums
        return found

    def sites(self) -> set[str]:
        with self._lock:
            found = {site for site, _ in self._buckets}
            found.update(i.site for i in self._incidents.values())
            found.update(a.site for a in self._alerts.values())
            return found

    def save_incident(self, incident: Incident) -> Incident:
        with self._lock:
            stored = self._incidents.get(incident.id)
            if stored is not None:
                if incident.is_open and not stored.is_open:
                    return stored
            elif incident.is_open:
                for rival in self._incidents.values():
                    if rival.is_open and (rival.site, rival.check, rival.key) == (incident.site, incident.check, incident.key):
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
                )
            self._alerts[alert.incident_id] = alert

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

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        with self._lock:
            holder = self._leases.get(name)
            if holder is not None and holder[0] != owner and holder[1] > now:
                return False
            self._leases[name] = (owner, now + ttl)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(name, ("", 0.0))[0] == owner:
                del self._leases[name]

    def trim(self, *, buckets_before: float, hourly_before: float, resolved_before: datetime) -> None:
        with self._lock:
            tables = [(self._buckets, buckets_before)] + [
                (table, hourly_before if width >= HOUR else buckets_before) for width, table in self._rollups.items()
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

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"
