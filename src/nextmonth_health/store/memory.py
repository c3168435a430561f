"""``memory://`` — the store for tests and single-process scripts: same semantics, no durability.

It keeps the buckets it is given and hands out the ones it holds, without copies: the
recorder never touches a bucket after writing it, and readers only merge from them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from ..signals import Bucket
from ..values import Alert, Incident
from .base import HOUR, ROLLUP_WIDTHS, Store, newest_first, rollup_of

__all__ = ["MemoryStore"]


class _Series:
    """One site's signal over time: buckets by start, with the starts kept sorted for ranges."""

    __slots__ = ("by_start", "starts")

    def __init__(self) -> None:
        self.by_start: dict[int, dict[str, Bucket]] = {}
        self.starts: list[int] = []

    def slot(self, start: int) -> dict[str, Bucket]:
        slot = self.by_start.get(start)
        if slot is None:
            slot = self.by_start[start] = {}
            if not self.starts or start > self.starts[-1]:
                self.starts.append(start)
            else:
                bisect.insort(self.starts, start)
        return slot

    def between(self, start: float, end: float) -> list[Bucket]:
        lo, hi = bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)
        return [b for t in self.starts[lo:hi] for b in self.by_start[t].values()]

    def forget_before(self, before: float) -> None:
        cut = bisect.bisect_left(self.starts, before)
        for t in self.starts[:cut]:
            del self.by_start[t]
        del self.starts[:cut]


class MemoryStore(Store):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._buckets: dict[tuple[str, str], _Series] = {}
        self._rollups: dict[int, dict[tuple[str, str], _Series]] = {width: {} for width in ROLLUP_WIDTHS}
        self._incidents: dict[str, Incident] = {}
        self._alerts: dict[str, Alert] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def write(self, buckets: Sequence[Bucket]) -> None:
        with self._lock:
            for bucket in buckets:
                name = (bucket.site, bucket.signal)
                for width, table in self._rollups.items():
                    at = rollup_of(bucket.start, width)
                    slot = (table.get(name) or table.setdefault(name, _Series())).slot(at)
                    rollup = slot.get(bucket.key)
                    if rollup is None:
                        rollup = slot[bucket.key] = Bucket(bucket.site, bucket.signal, bucket.key, at)
                    rollup.add_counts(bucket)
                slot = (self._buckets.get(name) or self._buckets.setdefault(name, _Series())).slot(bucket.start)
                stored = slot.get(bucket.key)
                if stored is None:
                    slot[bucket.key] = bucket.compact()
                else:
                    stored.merge(bucket)

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        with self._lock:
            series = self._buckets.get((site, signal))
            return series.between(start, end) if series is not None else []

    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        with self._lock:
            series = self._rollups[width].get((site, signal))
            return series.between(start, end) if series is not None else []

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
                for name, series in list(table.items()):
                    series.forget_before(before)
                    if not series.starts:
                        del table[name]
            gone = [
                i.id for i in self._incidents.values() if i.resolved_at is not None and i.resolved_at < resolved_before
            ]
            for incident_id in gone:
                del self._incidents[incident_id]
                self._alerts.pop(incident_id, None)

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"
