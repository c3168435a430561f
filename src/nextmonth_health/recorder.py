"""From ``record_*`` calls to store buckets, with nothing slow on the request path.

The request path extends one flat list by the event's seven fields (a single C call,
atomic under the GIL: no lock, no I/O, and no container left behind for the garbage
collector to chase, which a tuple per event would be).
``flush`` — run every ``flush_seconds`` by the runner and at the start of every
evaluation — drains the deque, validates each event, collapses routes to the configured
ones (so cardinality stays bounded whatever paths arrive), folds events into per-bucket
counts and hands them to the store in one batch. Whatever cannot be kept is counted in
``drops`` by reason; nothing is lost silently.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from . import signals as sig
from .errors import ErrorReporter
from .settings import Settings
from .signals import Bucket
from .sketch import user_hash
from .store.base import Store

__all__ = ["Recorder"]

BucketKey = tuple[str, str, str, int]

#: Fields per buffered event: signal, site, key, a, b, user, time.
FIELDS = 7

_MAX_PENDING_BUCKETS = 100_000
_ROUTE_CACHE_LIMIT = 4096
_MAX_SECONDS = 86_400.0 * 365
_MAX_SIZE = float(2**63)
_MAX_USER_INT_BITS = 4096


class Recorder:
    """The in-process buffer between the request path and the store."""

    def __init__(
        self,
        *,
        store: Store,
        default_site: str,
        settings_for: Callable[[str], Settings],
        capacity: int,
        max_sites: int,
        errors: ErrorReporter,
    ) -> None:
        #: Seven fields per event, flat: see :data:`FIELDS`.
        self.buffer: list[Any] = []
        self.capacity = capacity
        self.overflow = 0
        self.store = store
        self.default_site = default_site
        self._settings_for = settings_for
        self._max_sites = max_sites
        self._errors = errors
        self._sites: set[str] = set()
        self._drops: Counter[str] = Counter()
        self._pending: dict[BucketKey, Bucket] = {}
        #: Routes by path, per settings object: sites sharing settings share their routes,
        #: so a thousand sites on the defaults do not thrash one cache keyed by site.
        self._route_cache: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.events_flushed = 0

    @property
    def drops(self) -> Mapping[str, int]:
        """Events dropped so far, by reason (``buffer_full``, ``invalid``, ``site_limit``, ``store``)."""
        counts = Counter(self._drops)
        if self.overflow:
            counts["buffer_full"] += self.overflow
        return counts

    def flush(self) -> int:
        """Fold every buffered event into buckets and write them; returns events folded."""
        with self._lock:
            buckets = self._pending
            self._pending = {}
            folded = self._fold(buckets)
            if buckets:
                try:
                    self.store.write(list(buckets.values()))
                except Exception as exc:
                    self._errors.report("recorder.flush", exc)
                    self._keep_pending(buckets)
            self.events_flushed += folded
            return folded

    def _keep_pending(self, buckets: dict[BucketKey, Bucket]) -> None:
        for key, bucket in buckets.items():
            if key in self._pending:
                self._pending[key].merge(bucket)
            elif len(self._pending) < _MAX_PENDING_BUCKETS:
                self._pending[key] = bucket
            else:
                self._drops["store"] += bucket.total

    def after_fork(self) -> None:
        """In a forked child: drop the parent's unflushed events and pending buckets."""
        del self.buffer[:]
        self._pending = {}
        self._lock = threading.Lock()

    @property
    def buffered(self) -> int:
        return len(self.buffer) // FIELDS

    def _fold(self, buckets: dict[BucketKey, Bucket]) -> int:
        buffer = self.buffer
        n = len(buffer)
        n -= n % FIELDS
        taken = buffer[:n]
        del buffer[:n]
        hashes: dict[str, int] = {}
        fields = iter(taken)
        for event in zip(*([fields] * FIELDS), strict=True):
            try:
                if not self._fold_one(event, buckets, hashes):
                    self._drops["invalid"] += 1
            except Exception as exc:
                self._drops["invalid"] += 1
                self._errors.report("recorder.fold", exc)
        return n // FIELDS

    def _fold_one(
        self, event: tuple[Any, ...], buckets: dict[BucketKey, Bucket], hashes: dict[str, int]
    ) -> bool:
        signal, site, key, a, b, user, t = event
        if site is None:
            site = self.default_site
        elif type(site) is not str or not site or len(site) > 100:
            return False
        new_site = site not in self._sites
        if new_site and len(self._sites) >= self._max_sites:
            self._drops["site_limit"] += 1
            return True
        settings = self._settings_for(site)
        if user is not None:
            if type(user) is int:
                if user.bit_length() > _MAX_USER_INT_BITS:
                    return False
                user = str(user)
            if type(user) is not str or not user or len(user) > settings.max_key_length:
                return False
        value: float | None = None
        if signal == sig.REQUEST:
            if type(a) is not int or not 100 <= a <= 599 or not _is_duration(b):
                return False
            key = self._route(key, settings)
            if key is None:
                return False
            bad = a >= 500
            value = float(b)
        elif signal == sig.PAGE_LOAD:
            if not _is_duration(a) or a > 3600:
                return False
            key = self._route(key, settings)
            if key is None:
                return False
            bad = a > settings.page_load_slow_seconds
            value = float(a)
        elif signal == sig.LOGIN or signal == sig.UPLOAD:
            if type(a) is not bool or (b is not None and not _is_amount(b, _MAX_SIZE)):
                return False
            bad = not a
            key = ""
        elif signal == sig.SESSION_EXPIRED:
            bad = True
            key = ""
        else:
            return False
        if new_site:
            self._sites.add(site)  # only a valid event takes one of the max_sites places
        start = int(t // settings.bucket_seconds) * settings.bucket_seconds
        bkey = (site, signal, key, start)
        bucket = buckets.get(bkey)
        if bucket is None:
            bucket = buckets[bkey] = Bucket(site, signal, key, start, exact_users=True)
        bucket.total += 1
        if value is not None:
            bucket.hist[sig.hist_index(value)] += 1
        if bad:
            bucket.bad += 1
        if user is not None:
            h = hashes.get(user)
            if h is None:
                h = hashes[user] = user_hash(user)
            bucket.users.add(h)
            if bad:
                bucket.bad_users.add(h)
        return True

    def _route(self, path: Any, settings: Settings) -> str | None:
        if type(path) is not str or not path.startswith("/"):
            return None
        if len(path) > settings.max_key_length:
            return None
        if "?" in path or "#" in path:
            path = path.partition("?")[0].partition("#")[0]
        routes = self._route_cache.get(id(settings))
        if routes is None:
            routes = self._route_cache[id(settings)] = {}
        route = routes.get(path)
        if route is None:
            if len(routes) >= _ROUTE_CACHE_LIMIT:
                routes.clear()
            route = routes[path] = settings.route_for(path) or sig.OTHER
        return route


def _is_amount(value: Any, limit: float) -> bool:
    """A non-negative int or float up to ``limit``; NaN fails both comparisons.

    Compared, never converted: ``math.isfinite`` and ``float`` raise on huge ints.
    """
    return (type(value) is float or type(value) is int) and 0 <= value <= limit


def _is_duration(value: Any) -> bool:
    return _is_amount(value, _MAX_SECONDS)
