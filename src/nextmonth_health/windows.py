"""What a check sees of one site: merged windows of recorded signals.

Checks never talk to the store. They ask a :class:`SiteView` for a window ("the last five
minutes of requests on /media-upload") or a baseline ("the hour before that"), each a
:class:`~nextmonth_health.signals.Bucket` merged over whole buckets. A view reads each
signal from the store at most once per evaluation pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from .settings import Settings
from .signals import Bucket
from .values import Incident

__all__ = ["SiteView"]

Reader = Callable[[str, str, float, float], list[Bucket]]


class SiteView:
    """One site's recorded signals as of ``now``, for one evaluation pass."""

    def __init__(
        self,
        site: str,
        now: float,
        settings: Settings,
        read: Reader,
        incidents: Mapping[tuple[str, str], Incident] | None = None,
    ) -> None:
        self.site = site
        self._incidents = incidents or {}
        self.now = now
        self.settings = settings
        self._read = read
        self._cache: dict[str, list[Bucket]] = {}
        step = settings.bucket_seconds
        #: The end of the bucket now is in: the freshest counts are judged too.
        self.end = (int(now) // step) * step + step

    def _series(self, signal: str) -> list[Bucket]:
        rows = self._cache.get(signal)
        if rows is None:
            start = self.end - self.settings.window_seconds - self.settings.baseline_seconds
            rows = self._cache[signal] = self._read(self.site, signal, start, self.end)
        return rows

    def incident(self, check: str, key: str) -> Incident | None:
        """The open incident of a check and key, if any.

        Checks judge recovery against the reference they had when the incident opened
        (its ``threshold``), because the trailing baseline fills up with the incident.
        """
        return self._incidents.get((check, key))

    def keys(self, signal: str) -> set[str]:
        """Keys (routes, pages) with anything recorded in the window or its baseline."""
        return {b.key for b in self._series(signal)}

    def window(self, signal: str, keys: str | Iterable[str] | None = None, *, seconds: float | None = None) -> Bucket:
        """The last ``seconds`` (default: ``window_seconds``) of a signal, merged over keys."""
        span = self.settings.window_seconds if seconds is None else seconds
        return self._merge(signal, keys, self.end - span, self.end)

    def baseline(self, signal: str, keys: str | Iterable[str] | None = None) -> Bucket:
        """The ``baseline_seconds`` just before the window: what normal looked like.

        Counts and values only: distinct users of the baseline are never needed, and
        merging an hour of user sketches is most of a pass's cost.
        """
        end = self.end - self.settings.window_seconds
        return self._merge(signal, keys, end - self.settings.baseline_seconds, end, users=False)

    def _merge(
        self, signal: str, keys: str | Iterable[str] | None, start: float, end: float, *, users: bool = True
    ) -> Bucket:
        wanted = {keys} if isinstance(keys, str) else (None if keys is None else set(keys))
        label = "*" if wanted is None else ",".join(sorted(wanted))
        merged = Bucket(self.site, signal, label, int(start))
        for bucket in self._series(signal):
            if start <= bucket.start < end and (wanted is None or bucket.key in wanted):
                if users:
                    merged.merge(bucket)
                else:
                    merged.add_counts(bucket)
        return merged
