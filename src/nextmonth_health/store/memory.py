"""``memory://`` — the store for tests and single-process scripts: same semantics, no durability.

It keeps the buckets it is given and hands out the ones it holds, without copies: the
recorder never touches a bucket after writing it, and readers only merge from them.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import attrs

from ..signals import SIGNALS, Bucket, hist_add
from ..values import Alert, Incident
from .base import HOUR, ROLLUP_WIDTHS, BatchId, Lookup, SiteSums, Store, SumBucket, newest_first, rollup_of

__all__ = ["MemoryStore"]


class _Keyed:
    """One (site, signal, key) over time: buckets ordered by start, with running sums of
    their counts, so the counts of any range cost two bisections, however long it is.

    The histogram of the range last asked for is kept too, and kept up to date by writes:
    a pass later moves it by the few buckets that entered or left its range, instead of
    merging thirty histograms again.
    """

    __slots__ = ("bads", "buckets", "hist", "hist_span", "starts", "totals")

    def __init__(self) -> None:
        # Machine integers, not int objects: a bisection then reads one block of memory
        # instead of chasing a pointer per step (a pass bisects thousands of series).
        self.starts = array("q")
        self.buckets: list[Bucket] = []
        # totals[i]: what every bucket before buckets[i] counted (trimmed ones included).
        self.totals = array("q", [0])
        self.bads = array("q", [0])
        self.hist: Counter[int] | None = None
        self.hist_span = (0.0, 0.0)

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
        if self.hist is not None and delta.hist and self.hist_span[0] <= start < self.hist_span[1]:
            hist_add(self.hist, delta.hist)

    def span(self, start: float, end: float) -> tuple[int, int]:
        return bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)

    def holds(self, start: float, end: float) -> bool:
        """Whether any bucket starts in ``[start, end)``."""
        lo, hi = self.span(start, end)
        return lo < hi

    def merged_hist(self, start: float, end: float) -> Counter[int]:
        """A copy of the histogram of the buckets starting in ``[start, end)``."""
        hist, (was_start, was_end) = self.hist, self.hist_span
        if hist is None or start >= was_end or end <= was_start:
            hist = self.hist = Counter()
            self._move(hist, start, end, 1)
        else:
            if start != was_start:
                self._move(hist, *sorted((start, was_start)), 1 if start < was_start else -1)
            if end != was_end:
                self._move(hist, *sorted((end, was_end)), 1 if end > was_end else -1)
        self.hist_span = (start, end)
        return Counter(hist)

    def _move(self, hist: Counter[int], start: float, end: float, sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) the histograms of buckets starting in ``[start, end)``."""
        lo, hi = self.span(start, end)
        for bucket in self.buckets[lo:hi]:
            if sign > 0:
                hist_add(hist, bucket.hist)
            else:
                for slot, n in bucket.hist.items():
                    left = hist[slot] - n
                    if left > 0:
                        hist[slot] = left
                    else:
                        del hist[slot]

    def forget_before(self, before: float) -> None:
        cut = bisect.bisect_left(self.starts, before)
        del self.starts[:cut], self.buckets[:cut], self.totals[:cut], self.bads[:cut]
        if self.hist_span[0] < before:
            self.hist = None


class _KeyedSum(SumBucket):
    """A series' counts over a span; its histogram is the series' running one, on first use."""

    __slots__ = ()

    @staticmethod
    def decode_hist(source: tuple[_Keyed, float, float, threading.Lock]) -> Counter[int]:
        series, start, end, lock = source
        with lock:
            return series.merged_hist(start, end)


class _SignalSums(Lookup[Bucket]):
    """One site and signal's series summed over a span, each summed when looked up."""

    __slots__ = ("at", "by_key", "end", "lock", "signal", "site", "start")

    def __init__(self, site: str, signal: str, by_key: dict[str, _Keyed], start: float, end: float, lock: threading.Lock) -> None:
        self.site = site
        self.signal = signal
        self.by_key = by_key
        self.start = start
        self.end = end
        self.at = int(start)
        self.lock = lock

    def get(self, key: str, default: Any = None) -> Any:
        series = self.by_key.get(key)
        if series is None:
            return default
        start, end, lock = self.start, self.end, self.lock
        with lock:
            starts = series.starts
            lo = bisect_left(starts, start)
            hi = bisect_left(starts, end, lo)
            if lo >= hi:
                return default
            totals, bads = series.totals, series.bads
            total, bad = totals[hi] - totals[lo], bads[hi] - bads[lo]
        return _KeyedSum.of(self.site, self.signal, key, self.at, total, bad, ((series, start, end, lock), None, None))

    def values(self) -> list[Bucket]:  # type: ignore[override]
        """Every key's sum, in one go (a view would look each key up twice)."""
        return [b for key in self.by_key if (b := self.get(key)) is not None]

    def __iter__(self) -> Iterator[str]:
        start, end = self.start, self.end
        with self.lock:
            found = [key for key, series in self.by_key.items() if series.holds(start, end)]
        return iter(found)


class _SiteSums(Lookup[Mapping[str, Bucket]]):
    """One site's signals, as :class:`_SignalSums` made on demand."""

    __slots__ = ("end", "lock", "made", "site", "start", "table")

    def __init__(self, table: _Table, site: str, start: float, end: float, lock: threading.Lock) -> None:
        self.table = table
        self.site = site
        self.start = start
        self.end = end
        self.lock = lock
        self.made: dict[str, _SignalSums] = {}

    def get(self, signal: str, default: Any = None) -> Any:
        found = self.made.get(signal)
        if found is None:
            keys = self.table.get((self.site, signal))
            if keys is None:
                return default
            found = self.made[signal] = _SignalSums(self.site, signal, keys, self.start, self.end, self.lock)
        return found

    def __iter__(self) -> Iterator[str]:
        return (signal for signal in SIGNALS if (self.site, signal) in self.table)


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

    def write(self, buckets: Sequence[Bucket], *, batch: BatchId | None = None) -> None:
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
        found: dict[str, dict[str, list[Bucket]]] = {}
        for site, by_signal in self.sums(sites, start, end, width=width).items():
            found[site] = {signal: rows for signal in SIGNALS if (by_key := by_signal.get(signal)) is not None and (rows := by_key.values())}
        return found

    def sums(
        self, sites: Sequence[str], start: float, end: float, *, width: int | None = None
    ) -> dict[str, SiteSums]:
        """Lazily: a series is summed (two bisections) when a check looks it up."""
        table = self._buckets if width is None else self._rollups[width]
        return {site: _SiteSums(table, site, start, end, self._lock) for site in sites}

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
