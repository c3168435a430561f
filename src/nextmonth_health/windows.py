"""What a check sees of one site: merged windows of recorded signals.

Checks never talk to the store. They ask a :class:`SiteView` for a window ("the last five
minutes of requests on /media-upload") or a baseline ("the hour before that"), each a
:class:`~nextmonth_health.signals.Bucket` of counts and values merged over whole buckets,
and for the distinct users behind a window (:meth:`SiteView.users`), which the store
counts in whatever way suits it. A view reads each signal from the store at most once
per evaluation pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .settings import Settings
from .signals import Bucket
from .store.base import Store
from .values import Incident

__all__ = ["Keys", "SiteView"]

#: One key (``"/bookings"``), several, or ``None`` for every key of a signal.
Keys = str | Iterable[str] | None


def _wanted(keys: Keys) -> set[str] | None:
    return {keys} if isinstance(keys, str) else (None if keys is None else set(keys))


class SiteView:
    """One site's recorded signals as of ``now``, for one evaluation pass."""

    def __init__(
        self,
        site: str,
        now: float,
        settings: Settings,
        store: Store,
        incidents: Mapping[tuple[str, str], Incident] | None = None,
    ) -> None:
        self.site = site
        self.now = now
        self.settings = settings
        self._store = store
        self._incidents = incidents or {}
        self._cache: dict[str, list[Bucket]] = {}
        step = settings.bucket_seconds
        #: The end of the bucket now is in: the freshest counts are judged too.
        self.end = (int(now) // step) * step + step

    def incident(self, check: str, key: str) -> Incident | None:
        """The open incident of a check and key, if any.

        Checks judge recovery against the reference they had when the incident opened
        (its ``threshold``), because the trailing baseline fills up with the incident.
        """
        return self._incidents.get((check, key))

    def _series(self, signal: str) -> list[Bucket]:
        rows = self._cache.get(signal)
        if rows is None:
            start = self.end - self.settings.window_seconds - self.settings.baseline_seconds
            rows = self._cache[signal] = self._store.read(self.site, signal, start, self.end)
        return rows

    def _cells(self, signal: str, keys: Keys, start: float, end: float) -> list[Bucket]:
        wanted = _wanted(keys)
        return [
            b for b in self._series(signal) if start <= b.start < end and (wanted is None or b.key in wanted)
        ]

    def keys(self, signal: str) -> set[str]:
        """Keys (routes, pages) with anything recorded in the window or its baseline."""
        return {b.key for b in self._series(signal)}

    def window(self, signal: str, keys: Keys = None, *, seconds: float | None = None) -> Bucket:
        """Counts and values of the last ``seconds`` (default: ``window_seconds``) of a signal."""
        span = self.settings.window_seconds if seconds is None else seconds
        return self._merge(signal, keys, self.end - span, self.end)

    def baseline(self, signal: str, keys: Keys = None) -> Bucket:
        """Counts and values of the ``baseline_seconds`` just before the window: what normal looked like."""
        end = self.end - self.settings.window_seconds
        return self._merge(signal, keys, end - self.settings.baseline_seconds, end)

    def users(self, *parts: tuple[str, Keys, bool], seconds: float | None = None) -> int:
        """Distinct users behind the window of one or more ``(signal, keys, bad_only)`` parts.

        ``view.users((REQUEST, "/media-upload", True))`` counts the users who got a 5xx
        there; several parts count their union, e.g. users who failed to sign in *or*
        lost their session. Exact up to 512 users, estimated within a few percent beyond.
        """
        span = self.settings.window_seconds if seconds is None else seconds
        cells = [
            (bucket, bad)
            for signal, keys, bad in parts
            for bucket in self._cells(signal, keys, self.end - span, self.end)
        ]
        return self._store.count_users(cells) if cells else 0

    def _merge(self, signal: str, keys: Keys, start: float, end: float) -> Bucket:
        wanted = _wanted(keys)
        label = "*" if wanted is None else ",".join(sorted(wanted))
        merged = Bucket(self.site, signal, label, int(start))
        for bucket in self._cells(signal, keys, start, end):
            merged.add_counts(bucket)
        return merged
