"""``memory://`` — the store for tests and single-process scripts: same semantics, no durability.

It keeps the buckets it is given and hands out the ones it holds, without copies: the
recorder never touches a bucket after writing it, and readers only merge from them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from ..signals import Bucket
from ..values import Alert, Incident
from .base import Store, hour_of, newest_first

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._buckets: dict[tuple[str, str], dict[tuple[str, int], Bucket]] = {}
        self._hourly: dict[tuple[str, str], dict[tuple[str, int], Bucket]] = {}
        self._incidents: dict[str, Incident] = {}
        self._alerts: dict[str, Alert] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def write(self, buckets: Sequence[Bucket]) -> None:
        with self._lock:
            for bucket in buckets:
                series = self._buckets.setdefault((bucket.site, bucket.signal), {})
                stored = series.get((bucket.key, bucket.start))
                hour = hour_of(bucket.start)
                rollups = self._hourly.setdefault((bucket.site, bucket.signal), {})
                rollup = rollups.get((bucket.key, hour))
                if rollup is None:
                    rollup = rollups[(bucket.key, hour)] = Bucket(bucket.site, bucket.signal, bucket.key, hour)
                rollup.add_counts(bucket)
                if stored is None:
                    series[(bucket.key, bucket.start)] = bucket.compact()
                else:
                    stored.merge(bucket)

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        with self._lock:
            series = self._buckets.get((site, signal), {})
            return [b for (_, t), b in series.items() if start <= t < end]

    def read_hourly(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        with self._lock:
            series = self._hourly.get((site, signal), {})
            return [b for (_, t), b in series.items() if start <= t < end]

    def sites(self) -> set[str]:
        with self._lock:
            found = {site for site, _ in self._buckets}
            found.update(i.site for i in self._incidents.values())
            found.update(a.site for a in self._alerts.values())
            return found

    def save_incident(self, incident: Incident) -> None:
        with self._lock:
            self._incidents[incident.id] = incident

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
            for table, before in ((self._buckets, buckets_before), (self._hourly, hourly_before)):
                for series in table.values():
                    for key in [k for k in series if k[1] < before]:
                        del series[key]
                for key in [k for k, s in table.items() if not s]:
                    del table[key]
            gone = [
                i.id for i in self._incidents.values() if i.resolved_at is not None and i.resolved_at < resolved_before
            ]
            for incident_id in gone:
                del self._incidents[incident_id]
                self._alerts.pop(incident_id, None)

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"
