"""From ``record_*`` calls to store buckets, with nothing slow on the request path.

The request path extends one flat list by the event's seven fields (a single C call,
atomic under the GIL: no lock, no I/O, and no container left behind for the garbage
collector to chase, which a tuple per event would be).
``flush`` — run every ``flush_seconds`` by the runner and at the start of every
evaluation — takes whole events off the list's front, validates each, collapses routes to the configured
ones (a request recorded as ``"POST /payments/webhook"`` matches routes declared with that
method too; so cardinality stays bounded whatever paths arrive), folds events into per-bucket
counts and hands them to the store in one batch. Whatever cannot be kept is counted in
``drops`` by reason; nothing is lost silently. An anonymous visitor (the address and user
agent a middleware passes as the user) becomes its day's hashed id here (``visitors``).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import signals as sig
from ..errors import ErrorReporter
from ..logs import get_logger
from ..settings import Settings
from ..signals import Bucket
from ..sketch import user_hash
from ..store.base import BatchId, Store
from .routes import split_request
from .visitors import DAY, VisitorKeys

__all__ = ["Recorder"]

log = get_logger(__name__)

BucketKey = tuple[str, str, str, int]

#: Fields per buffered event: signal, site, key, outcome, amount, user, time. ``outcome``
#: is a request's status code, a sign-in's, an upload's or a plugin signal's ok flag, or a
#: page load's seconds; ``amount`` a request's duration, an upload's size or a signal's value.
FIELDS = 7

_MAX_PENDING_BUCKETS = 100_000
_ROUTE_CACHE_LIMIT = 4096
_MAX_SECONDS = 86_400.0 * 365
_MAX_SIZE = float(2**63)
_MAX_USER_INT_BITS = 4096
#: Keys a plugin signal may have per site: its key is the plugin's, not folded into
#: configured routes, so this is what bounds its series in the store.
MAX_SIGNAL_KEYS = 100
#: Undeclared signal names said in the log, at most: each once.
_MAX_NAMES_SAID = 100


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
        visitors: VisitorKeys | None = None,
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
        #: Turns an anonymous visitor (address, user agent) into the day's hashed id.
        self.visitors = visitors if visitors is not None else VisitorKeys(store, errors)
        self._sites: set[str] = set()
        self._drops: Counter[str] = Counter()
        #: Plugins' signals (``register_signals``): folded like logins, keyed and valued.
        self.declared: frozenset[str] = frozenset()
        #: The keys each (site, plugin signal) has had, up to ``MAX_SIGNAL_KEYS``.
        self._signal_keys: dict[tuple[str, str], set[str]] = {}
        self._undeclared_said: set[str] = set()
        #: Deltas not sent yet (their write waits for an unsure batch): merged with the next.
        self._pending: dict[BucketKey, Bucket] = {}
        #: A batch whose write failed, with its number: the store may have applied it (a
        #: reply lost), so it is sent again as it was, before anything newer.
        self._unsure: tuple[BatchId, list[Bucket]] | None = None
        self._batches = itertools.count(1)
        #: Names this recorder's batches to the store; a forked child takes a new one.
        self.writer = secrets.token_hex(8)
        #: Routes by path, per settings object: sites sharing settings share their routes,
        #: so a thousand sites on the defaults do not thrash one cache keyed by site.
        self._route_cache: dict[int, dict[str, str]] = {}
        self._lock = threading.Lock()
        #: Events folded into buckets, and those of them the store has taken.
        self.events_flushed = 0
        self.events_stored = 0
        self._unsent_events = 0
        #: Seconds to add to an event's time to put it on the store's clock (Redis's
        #: ``TIME``): set by the evaluator, so every host's buckets share one clock.
        self.offset = 0.0
        #: Set once the monitor gave up waiting for the store (:meth:`abandon`): a flush
        #: still under way then counts what it fails to write as lost, not kept.
        self._abandoned: str | None = None

    @property
    def drops(self) -> Mapping[str, int]:
        """Events dropped so far, by reason: ``buffer_full``, ``invalid``, ``site_limit``,
        ``undeclared_signal`` (recorded with a signal no plugin declared), ``key_limit``
        (a plugin signal's key past its first ``MAX_SIGNAL_KEYS`` in a site), ``store``
        (the store refused writes for so long that the backlog overflowed) and
        ``store_at_exit`` (still unwritten when the monitor stopped)."""
        counts = Counter(self._drops)
        if self.overflow:
            counts["buffer_full"] += self.overflow
        return counts

    def flush(self) -> int:
        """Fold every buffered event into buckets and write them; returns events folded.

        Each write is a numbered batch. One that fails is sent again unchanged, under its
        number, before any newer deltas, so a store that can tell a batch it already
        applied (Redis, when a reply was lost) counts it once; meanwhile new deltas wait,
        merged, up to a bound past which they are dropped and counted.
        """
        with self._lock:
            try:
                return self._flush()
            finally:
                if self._abandoned is not None:
                    self._give_up(self._abandoned)
                self._unsent_events = _events(self._pending.values()) + (
                    _events(self._unsure[1]) if self._unsure is not None else 0
                )

    def _flush(self) -> int:
        buckets = self._pending
        self._pending = {}
        folded = self._fold(buckets)
        self.events_flushed += folded
        if self._unsure is not None:
            name, batch = self._unsure
            try:
                self.store.write(batch, batch=name)
            except Exception as exc:
                self._errors.report("recorder.flush", exc)
                self._keep_pending(buckets, room=_MAX_PENDING_BUCKETS - len(batch))
                return folded
            self._unsure = None
            self.events_stored += _events(batch)
        if buckets:
            name = (self.writer, next(self._batches))
            batch = list(buckets.values())
            try:
                self.store.write(batch, batch=name)
            except Exception as exc:
                self._errors.report("recorder.flush", exc)
                self._unsure = (name, batch)
            else:
                self.events_stored += _events(batch)
        return folded

    def abandon(self, reason: str, *, wait: float) -> int:
        """Give up on every event not stored yet (buffered, waiting, or in an unsure batch):
        count them dropped under ``reason``, log it once with the number, and return it.

        What a stopping monitor calls after its last flush failed or ran out of time;
        ``wait`` bounds how long it waits for a flush still holding the recorder (that
        flush then counts everything when it ends, and this returns 0). An unsure batch may in fact have been applied by a
        store that lost its reply: it is counted lost, the safe side of "nothing lost
        silently". A flush stuck in a hung store counts what it holds itself, when the
        store's own timeout ends it.
        """
        self._abandoned = reason
        if not self._lock.acquire(timeout=wait):
            # A flush holds the buffer's events: it counts them itself when it fails.
            return 0
        try:
            return self._give_up(reason)
        finally:
            self._lock.release()

    def _give_up(self, reason: str) -> int:
        """Count everything unstored as lost (the lock held): the buffer, waiting and unsure."""
        lost = len(self.buffer) // FIELDS
        del self.buffer[:]
        lost += _events(self._pending.values())
        if self._unsure is not None:
            lost += _events(self._unsure[1])
        self._pending = {}
        self._unsure = None
        self._unsent_events = 0
        if lost:
            self._drops[reason] += lost
            log.warning("nextmonth_health.events_lost", reason=reason, events=lost, store=self.store.url)
        return lost

    def _keep_pending(self, buckets: dict[BucketKey, Bucket], room: int) -> None:
        """Keep deltas for the next flush, at most ``room`` buckets; count the rest dropped."""
        for key, bucket in buckets.items():
            if len(self._pending) < room:
                self._pending[key] = bucket
            else:
                self._drops["store"] += bucket.total

    @property
    def unsent_events(self) -> int:
        """Events folded but not stored yet, as of the last flush (:attr:`unsent`'s buckets)."""
        return self._unsent_events

    @property
    def unsent(self) -> int:
        """Buckets waiting for the store: a failed batch's, and those queued behind it."""
        return len(self._pending) + (len(self._unsure[1]) if self._unsure is not None else 0)

    def after_fork(self) -> None:
        """In a forked child: drop the parent's unflushed events and pending buckets."""
        del self.buffer[:]
        self._pending = {}
        self._unsure = None
        self.writer = secrets.token_hex(8)
        self._lock = threading.Lock()
        self.visitors.after_fork()

    @property
    def buffered(self) -> int:
        return len(self.buffer) // FIELDS

    def _fold(self, buckets: dict[BucketKey, Bucket]) -> int:
        """Fold the buffered events into ``buckets``; returns how many events were taken.

        The per-event work is inlined in one loop: it runs holding the GIL, so request
        threads wait for it. An event finds its bucket's cell through its site's last cell
        per route (or signal), with no key tuple built and no method called, and counts
        into plain ints and sets that reach the buckets once, at the end.
        """
        buffer = self.buffer
        n = len(buffer)
        n -= n % FIELDS
        taken = buffer[:n]
        del buffer[:n]
        cells: dict[BucketKey, _Cell] = {}
        hashes: dict[str, int] = {}
        visitors: dict[tuple[Any, int], str | None] = {}
        visitor_id = self.visitors.identity
        sites: dict[str, _Site] = {}
        default_site = self.default_site
        max_sites = self._max_sites
        counted_sites = self._sites
        hist_index = sig.hist_index
        request, page_load, login, upload = sig.REQUEST, sig.PAGE_LOAD, sig.LOGIN, sig.UPLOAD
        session_expired = sig.SESSION_EXPIRED
        declared = self.declared
        undeclared: dict[str, int] = {}
        invalid = refused = crowded = 0
        offset = self.offset
        fields = iter(taken)
        for signal, site, key, outcome, amount, user, t in zip(*([fields] * FIELDS), strict=True):
            try:
                if site is None:
                    site = default_site
                known = sites.get(site) if type(site) is str else None
                if known is None:
                    known = self._site(site, sites)
                    if known is None:
                        invalid += 1
                        continue
                if known is _REFUSED:
                    refused += 1
                    continue
                if type(user) is tuple:  # an anonymous visitor: hashed here, off the request path
                    seen = (user, int(t // DAY))
                    found = visitors.get(seen, False)
                    if found is False:
                        found = visitors[seen] = visitor_id(user, t)
                    if found is None:
                        invalid += 1
                        continue
                    user = found
                if user is not None:
                    if type(user) is int:
                        if user.bit_length() > _MAX_USER_INT_BITS:
                            invalid += 1
                            continue
                        user = str(user)
                    if type(user) is not str or not user or len(user) > known.max_key_length:
                        invalid += 1
                        continue
                # Amounts are ints or floats, compared and never converted (``float`` raises
                # on huge ints); NaN fails both comparisons.
                if signal == request or signal == page_load:
                    if signal == request:
                        if (
                            type(outcome) is not int
                            or not 100 <= outcome <= 599
                            or not ((type(amount) is float or type(amount) is int) and 0 <= amount <= _MAX_SECONDS)
                        ):
                            invalid += 1
                            continue
                        bad = outcome >= 500
                        value: float | None = float(amount)
                    else:
                        if not ((type(outcome) is float or type(outcome) is int) and 0 <= outcome <= 3600):
                            invalid += 1
                            continue
                        bad = outcome > known.slow_page_load
                        value = float(outcome)
                    route = known.routes.get(key) if type(key) is str else None
                    if route is None:
                        route = self._route(key, known)
                        if route is None:
                            invalid += 1
                            continue
                    # A request's or page load's cell by route.
                    last, at = (known.requests if signal == request else known.page_loads), route
                elif signal == login or signal == upload:
                    if type(outcome) is not bool or (
                        amount is not None
                        and not ((type(amount) is float or type(amount) is int) and 0 <= amount <= _MAX_SIZE)
                    ):
                        invalid += 1
                        continue
                    bad = not outcome
                    route = ""
                    value = None
                    last, at = known.plain, signal
                elif signal == session_expired:
                    bad = True
                    route = ""
                    value = None
                    last, at = known.plain, signal
                elif type(signal) is str and signal in declared:
                    if (
                        type(outcome) is not bool
                        or type(key) is not str
                        or len(key) > known.max_key_length
                        or (
                            amount is not None
                            and not ((type(amount) is float or type(amount) is int) and 0 <= amount <= _MAX_SIZE)
                        )
                    ):
                        invalid += 1
                        continue
                    bad = not outcome
                    route = key
                    value = None if amount is None else float(amount)
                    keyed = known.signals.get(signal)
                    if keyed is None:
                        keyed = known.signals[signal] = {}
                    last = keyed
                    if key not in last and not self._keep_key(site, signal, key):
                        crowded += 1
                        continue
                    at = key
                else:
                    if type(signal) is str:
                        undeclared[signal] = undeclared.get(signal, 0) + 1
                    else:
                        invalid += 1
                    continue
                if not known.counted:  # only a valid event takes one of the max_sites places
                    if len(counted_sites) >= max_sites:
                        sites[site] = _REFUSED
                        refused += 1
                        continue
                    known.counted = True
                    counted_sites.add(site)
                step = known.step
                start = int((t + offset) // step) * step
                cell = last.get(at)
                if cell is None or cell.start != start:
                    bkey = (site, signal, route, start)
                    cell = cells.get(bkey)
                    if cell is None:
                        bucket = buckets.get(bkey)
                        if bucket is None:
                            bucket = buckets[bkey] = Bucket(*bkey, exact_users=True)
                        cell = cells[bkey] = _Cell(bucket)
                    last[at] = cell
                cell.total += 1
                if value is not None:
                    hist = cell.hist
                    slot = hist_index(value)
                    hist[slot] = hist.get(slot, 0) + 1
                if bad:
                    cell.bad += 1
                if user is not None:
                    h = hashes.get(user)
                    if h is None:
                        h = hashes[user] = user_hash(user)
                    cell.users.add(h)
                    if bad:
                        bad_users = cell.bad_users
                        if bad_users is None:
                            bad_users = cell.bad_users = set()
                        bad_users.add(h)
            except Exception as exc:
                invalid += 1
                self._errors.report("recorder.fold", exc)
        if invalid:
            self._drops["invalid"] += invalid
        if refused:
            self._drops["site_limit"] += refused
        if crowded:
            self._drops["key_limit"] += crowded
        if undeclared:
            self._drop_undeclared(undeclared)
        for cell in cells.values():
            bucket = cell.bucket
            bucket.total += cell.total
            bucket.bad += cell.bad
            if cell.users:
                bucket.users.update(cell.users)
            if cell.bad_users:
                bucket.bad_users.update(cell.bad_users)
        return n // FIELDS

    def _keep_key(self, site: str, signal: str, key: str) -> bool:
        """Whether a plugin signal's key has (or now takes) one of its site's places."""
        keys = self._signal_keys.get((site, signal))
        if keys is None:
            keys = self._signal_keys[(site, signal)] = set()
        if key in keys:
            return True
        if len(keys) >= MAX_SIGNAL_KEYS:
            return False
        keys.add(key)
        return True

    def _drop_undeclared(self, counts: Mapping[str, int]) -> None:
        """Count events of signals no plugin declared, and name each signal once in the log:
        a typo in a signal's name, or a plugin that is not loaded, loses everything it records."""
        for name, n in counts.items():
            self._drops["undeclared_signal"] += n
            if name not in self._undeclared_said and len(self._undeclared_said) < _MAX_NAMES_SAID:
                self._undeclared_said.add(name)
                log.warning(
                    "nextmonth_health.undeclared_signal",
                    signal=name[:100],
                    events=n,
                    declared=sorted(self.declared),
                    hint="a plugin declares a signal in its register_signals hook; is that plugin loaded and configured?",
                )

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

    def _route(self, request: Any, known: _Site) -> str | None:
        """The configured route of a path or ``"METHOD /path"`` (``other`` if none), cached
        per settings; None when it is neither."""
        settings = known.settings
        if type(request) is not str or len(request) > settings.max_key_length:
            return None
        routes = known.routes
        if "?" in request or "#" in request:
            bare = request.partition("?")[0].partition("#")[0]
            route = routes.get(bare)
            if route is not None:
                return route
        else:
            bare = request
        parts = split_request(bare)
        if parts is None:
            return None
        if len(routes) >= _ROUTE_CACHE_LIMIT:
            routes.clear()
        route = routes[bare] = settings.route_table.match(parts[1], parts[0]) or sig.OTHER
        return route


class _Site:
    """A site as one flush sees it: the settings the fold reads, their route cache, whether
    one of its events was already counted towards ``max_sites``, and its cells so far."""

    __slots__ = (
        "counted",
        "max_key_length",
        "page_loads",
        "plain",
        "requests",
        "routes",
        "settings",
        "signals",
        "slow_page_load",
        "step",
    )

    def __init__(self, settings: Settings | None, routes: dict[str, str], *, counted: bool) -> None:
        # None only for _REFUSED, whose events are dropped before anything reads its settings.
        self.settings: Settings = settings  # type: ignore[assignment]
        self.routes = routes
        self.counted = counted
        #: The cell each route's (or signal's) last event fell in.
        self.requests: dict[str, _Cell] = {}
        self.page_loads: dict[str, _Cell] = {}
        self.plain: dict[str, _Cell] = {}
        #: Plugin signals' cells, by signal, then key.
        self.signals: dict[str, dict[str, _Cell]] = {}
        if settings is not None:
            self.step = settings.bucket_seconds
            self.max_key_length = settings.max_key_length
            self.slow_page_load = settings.page_load_slow_seconds


class _Cell:
    """One bucket as a flush folds into it: counts and users in plain ints and a set,
    added to the bucket once at the end rather than through its counters' methods for
    every event; values go straight into the bucket's histogram."""

    __slots__ = ("bad", "bad_users", "bucket", "hist", "start", "total", "users")

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.start = bucket.start
        self.hist = bucket.hist
        self.total = 0
        self.bad = 0
        self.users: set[int] = set()
        self.bad_users: set[int] | None = None


#: A site over ``max_sites``: its events are dropped (and counted) for the rest of a flush.
_REFUSED = _Site(None, {}, counted=False)


def _events(buckets: Iterable[Bucket]) -> int:
    """The events behind buckets: each event counts once in its bucket's total."""
    return sum(b.total for b in buckets)
