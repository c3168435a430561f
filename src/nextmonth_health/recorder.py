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
        sites: dict[str, _Site] = {}
        fields = iter(taken)
        for event in zip(*([fields] * FIELDS), strict=True):
            try:
                if not self._fold_one(event, buckets, hashes, sites):
                    self._drops["invalid"] += 1
            except Exception as exc:
                self._drops["invalid"] += 1
                self._errors.report("recorder.fold", exc)
        return n // FIELDS

    def _site(self, site: Any, sites: dict[str, _Site]) -> _Site | None:
        """What a flush needs of a site, looked up once per flush; None when it is not one."""
        if type(site) is not str or not site or len(site) > 100:
            return None
        if site not in self._sites and len(self._sites) >= self._max_sites:
            known = sites[site] = _REFUSED
            return known
        settings = self._settings_for(site)
        routes = self._route_cache.get(id(settings))
        if routes is None:
            routes = self._route_cache[id(settings)] = {}
        known = sites[site] = _Site(settings, routes, counted=site in self._sites)
        return known

    def _fold_one(
        self,
        event: tuple[Any, ...],
        buckets: dict[BucketKey, Bucket],
        hashes: dict[str, int],
        sites: dict[str, _Site],
    ) -> bool:
        signal, site, key, a, b, user, t = event
        if site is None:
            site = self.default_site
        known = sites.get(site) if type(site) is str else None
        if known is None:
            known = self._site(site, sites)
            if known is None:
                return False
        if known is _REFUSED:
            self._drops["site_limit"] += 1
            return True
        settings = known.settings
        if user is not None:
            if type(user) is int:
                if user.bit_length() > _MAX_USER_INT_BITS:
                    return False
                user = str(user)
            if type(user) is not str or not user or len(user) > settings.max_key_length:
                return False
        value: float | None = None
        if signal == sig.REQUEST:
            if type(a) is not int or not 100 <= a <= 599 or not _is_amount(b, _MAX_SECONDS):
                return False
            key = known.routes.get(key) if type(key) is str else None
            if key is None:
                key = self._route(event[2], known)
                if key is None:
                    return False
            bad = a >= 500
            value = float(b)
        elif signal == sig.PAGE_LOAD:
            if not _is_amount(a, 3600):
                return False
            key = known.routes.get(key) if type(key) is str else None
            if key is None:
                key = self._route(event[2], known)
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
        if not known.counted:  # only a valid event takes one of the max_sites places
            if len(self._sites) >= self._max_sites:
                sites[site] = _REFUSED
                self._drops["site_limit"] += 1
                return True
            known.counted = True
            self._sites.add(site)
        step = settings.bucket_seconds
        start = int(t // step) * step
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

    def _route(self, path: Any, known: _Site) -> str | None:
        """The configured route a path falls under (``other`` if none), cached per settings."""
        settings = known.settings
        if type(path) is not str or not path.startswith("/"):
            return None
        if len(path) > settings.max_key_length:
            return None
        routes = known.routes
        if "?" in path or "#" in path:
            bare = path.partition("?")[0].partition("#")[0]
            route = routes.get(bare)
            if route is not None:
                return route
        else:
            bare = path
        if len(routes) >= _ROUTE_CACHE_LIMIT:
            routes.clear()
        route = routes[bare] = settings.route_for(bare) or sig.OTHER
        return route


class _Site:
    """A site as one flush sees it: its settings, their route cache, and whether one of its
    events was already counted towards ``max_sites``."""

    __slots__ = ("counted", "routes", "settings")

    def __init__(self, settings: Settings | None, routes: dict[str, str], *, counted: bool) -> None:
        self.settings = settings  # type: ignore[assignment]
        self.routes = routes
        self.counted = counted


#: A site over ``max_sites``: its events are dropped (and counted) for the rest of a flush.
_REFUSED = _Site(None, {}, counted=False)


def _is_amount(value: Any, limit: float) -> bool:
    """A non-negative int or float up to ``limit``; NaN fails both comparisons.

    Compared, never converted: ``math.isfinite`` and ``float`` raise on huge ints.
    """
    return (type(value) is float or type(value) is int) and 0 <= value <= limit
