"""The ``redis://`` store itself: which script calls and commands each method makes, and
what it reads back (the package's docstring says why it is built the way it is)."""

from __future__ import annotations

import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from ...errors import StaleLease
from ...logs import get_logger
from ...signals import SIGNALS, Bucket
from ...sketch import EXACT_LIMIT
from ...values import Alert, Incident, MaintenanceWindow, Silence, timestamp
from ..base import (
    FIVE_MINUTE_RETENTION,
    HOUR,
    LATE_WRITE_SECONDS,
    ROLLUP_WIDTHS,
    BatchId,
    Fence,
    Row,
    Store,
    newest_first,
    site_lease,
)
from .calls import (
    Acknowledge,
    Acquire,
    CountUsers,
    MarkNotified,
    OpenIncidents,
    ReadMany,
    Release,
    SaveAlert,
    SaveIncident,
    ScriptCall,
    SetWithTtl,
    TouchSites,
    Trim,
    TrimPlanned,
    WindowUsers,
    Write,
)
from .codec import (
    ALERT_PARTS,
    CountsBucket,
    RowReader,
    StoredUsers,
    bucket_series,
    decode,
    dumps,
    encode,
    escape,
    kinds,
    load_alert,
    loads,
    write_lines,
)
from .connection import connect, forked_children_reconnect, persistence_caveats
from .keys import Keys
from .options import StoreOptions
from .pipeline import ScriptRunner
from .planned import PlannedHash

#: Named for the package, as it was before the store became one: log filters keep working.
log = get_logger("nextmonth_health.store.redis")

#: Buckets per Lua call: bounds how long one call holds Redis (a few milliseconds).
_CHUNK: Final = 200
#: Sites per call marking them active after a write.
_TOUCH_CHUNK: Final = 1000


class RedisStore(Store):
    """Buckets, roll-ups, incidents, alerts and leases in Redis (see the package doc).

    :param url: ``redis://[:password@]host:port/db``, ``rediss://…`` or ``unix:///path``,
        with optional query options of this store: ``timeout`` (seconds, default 1) for
        connecting and for every reply, ``history`` (seconds raw buckets live, default
        7200: at least the monitor's ``history_seconds``), ``trend`` (seconds roll-ups,
        incidents and alerts live, default 30 days) and ``prefix`` (default ``nmh``).
        Other query options go to ``redis.Redis.from_url``.
    :param client: a ready client (``redis.Redis`` or ``redis.cluster.RedisCluster``)
        to use instead of connecting to ``url``; give it short timeouts and no retries.
        The store does not close a client it was given.
    """

    blocking = True
    fencing = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        client: Any = None,
        timeout: float | None = None,
        history_seconds: int | None = None,
        trend_seconds: int | None = None,
        prefix: str | None = None,
    ) -> None:
        options = StoreOptions.parse(url, timeout, history_seconds, trend_seconds, prefix)
        self.timeout = options.timeout
        self.history_seconds = options.history_seconds
        self.trend_seconds = options.trend_seconds
        self.prefix = options.prefix
        self._keys = Keys(self.prefix)
        self.url = options.shown_url
        self._connect_url = options.connect_url
        self._own_client = client is None
        self._client = client if client is not None else self._connect()
        self._scripts = ScriptRunner(self._client)
        trend = self.trend_seconds
        self._maintenance = PlannedHash(self._scripts, self._keys.maintenance, MaintenanceWindow, trend)
        self._silences = PlannedHash(self._scripts, self._keys.silences, Silence, trend)
        #: Bucket deltas whose users came as an estimate rather than exact hashes (only
        #: possible when something other than the recorder writes): counted, not unioned.
        self.inexact_user_sketches = 0
        self._parents: list[Any] = []
        forked_children_reconnect(self)

    def _connect(self) -> Any:
        return connect(self._connect_url, self.timeout, self.url)

    def _after_fork_in_child(self) -> None:
        """Give the child its own pool; the parent's (sockets, locks) stays untouched."""
        if self._own_client:
            self._parents.append(self._client)  # never closed here: its sockets are the parent's
            self._client = self._connect()
            self._scripts.client = self._client

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    def time(self) -> float:
        seconds, micros = self._client.time()
        return seconds + micros / 1e6

    def caveats(self) -> tuple[str, ...]:
        """A Redis that keeps nothing on disk (:func:`.connection.persistence_caveats`)."""
        return persistence_caveats(self._client, self.url)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # Buckets.

    def write(self, buckets: Sequence[Bucket], *, batch: BatchId | None = None) -> None:
        """One script call per site (per 200 buckets) and one for the site list, pipelined.

        A named ``batch`` applies once: each call leaves its writer a mark (per site, as
        long as raw buckets live), and a call the mark shows applied is skipped, so a
        batch sent again after a lost reply is not counted twice.
        """
        by_site: dict[str, list[Bucket]] = defaultdict(list)
        for bucket in buckets:
            by_site[bucket.site].append(bucket)
        if not by_site:
            return
        now = repr(time.time())
        rollups = [(width, self._rollup_ttl(width)) for width in ROLLUP_WIDTHS]
        mark_key = b"" if batch is None else b"applied:" + encode(escape(batch[0]))
        calls: list[ScriptCall] = []
        for site, site_buckets in by_site.items():
            prefix = self._keys.site(site) + b":"
            for call, i in enumerate(range(0, len(site_buckets), _CHUNK)):
                chunk = site_buckets[i : i + _CHUNK]
                signals = sorted({b.signal for b in chunk})
                write = Write(
                    index=prefix + b"ti",
                    mark_key=None if batch is None else prefix + mark_key,
                    prefix=prefix,
                    raw_ttl=self.history_seconds,
                    exact_limit=EXACT_LIMIT,
                    mark=None if batch is None else f"{batch[1]} {call}",
                    rollups=rollups,
                    signals=[encode(escape(signal)) for signal in signals],
                    late_write_seconds=LATE_WRITE_SECONDS,
                    lines=write_lines(signals, chunk, self._inexact),
                )
                calls.append(write)
        sites = [encode(site) for site in by_site]
        for i in range(0, len(sites), _TOUCH_CHUNK):
            members = [(now, site) for site in sites[i : i + _TOUCH_CHUNK]]
            calls.append(TouchSites(self._keys.sites, self.trend_seconds, members))
        self._scripts.run(calls)

    def _rollup_ttl(self, width: int) -> int:
        if width >= HOUR:
            return self.trend_seconds
        return max(self.history_seconds, FIVE_MINUTE_RETENTION)

    def _inexact(self, bucket: Bucket) -> None:
        self.inexact_user_sketches += 1
        if self.inexact_user_sketches == 1:
            log.warning(
                "nextmonth_health.redis_inexact_users",
                site=bucket.site,
                signal=bucket.signal,
                reason="a bucket delta carried estimated users, not exact hashes: its counts are "
                "kept, its users are not added to the distinct-user counts",
            )

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        buckets = []
        for bucket, counts in self._read_series(site, signal, None, start, end):
            users = self._keys.users(site, signal, int(bucket.start), bucket.key)
            _, _, n_users, n_bad_users = counts.split(b" ", 4)[:4]
            bucket.users = StoredUsers(int(n_users), (users[0], users[1]))
            bucket.bad_users = StoredUsers(int(n_bad_users), (users[2], users[3]))
            buckets.append(bucket)
        return buckets

    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        if width not in ROLLUP_WIDTHS:
            raise ValueError(f"no roll-ups {width} seconds wide are kept; widths: {ROLLUP_WIDTHS}")
        return [bucket for bucket, _ in self._read_series(site, signal, width, start, end)]

    def _read_series(
        self, site: str, signal: str, width: int | None, start: float, end: float
    ) -> Iterator[tuple[Bucket, bytes]]:
        """One signal's buckets (or roll-ups) starting in ``[start, end)``, by start, then
        key, each with its counts field as stored (see ``write.lua``)."""
        index, kind = kinds(width)
        prefix = self._keys.site(site) + b":"
        starts = self._client.zrangebyscore(prefix + index, start, f"({end}")
        if not starts:
            return
        pipe = self._client.pipeline(transaction=False)
        for first in starts:
            pipe.hgetall(prefix + kind + b":" + first)
        for first, fields in zip(starts, pipe.execute(), strict=True):
            yield from bucket_series(site, signal, int(first), fields)

    def read_many(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        """One script call per site, all in one round trip; users are left out (see the base class)."""
        return CountsBucket.grouped(sites, self.read_rows(sites, start, end, width=width, signals=signals))

    def read_rows(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> list[Row]:
        if width is not None and width not in ROLLUP_WIDTHS:
            raise ValueError(f"no roll-ups {width} seconds wide are kept; widths: {ROLLUP_WIDTHS}")
        index, kind = kinds(width)
        escaped = [encode(escape(signal)) for signal in signals]
        names = {signal: decode(signal) for signal in escaped}
        low, high = repr(float(start)), f"({float(end)!r}"
        sites = list(dict.fromkeys(sites))
        calls = []
        for site in sites:
            prefix = self._keys.site(site) + b":"
            calls.append(ReadMany(prefix + b"ti", prefix, low, high, index, kind, escaped))
        reader = RowReader(names)
        replies = self._scripts.run(calls, batch=True)
        return [row for site, reply in zip(sites, replies, strict=True) for row in reader.rows(site, reply)]

    def decode_hist(self, hist: Any) -> Counter[int]:
        return CountsBucket.decode_hist(hist)

    def count_users(self, cells: Sequence[tuple[Bucket, bool]]) -> int:
        """Distinct users over the cells, counted in Redis in one call (all of one site).

        Exact while every cell's set is intact (at most 512 users each), a HyperLogLog
        union beyond. Cells not read from this store are looked up by their coordinates.
        """
        if not cells:
            return 0
        keys: list[tuple[bytes, bytes]] = []
        for bucket, bad in cells:
            counter = bucket.bad_users if bad else bucket.users
            if isinstance(counter, StoredUsers):
                keys.append(counter.keys)
            else:
                users = self._keys.users(bucket.site, bucket.signal, int(bucket.start), bucket.key)
                keys.append((users[2], users[3]) if bad else (users[0], users[1]))
        [count] = self._scripts.run([CountUsers(self._keys.site(cells[0][0].site, "scratch"), keys)])
        return int(count)

    def window_users(
        self,
        site: str,
        parts: Sequence[tuple[str, Sequence[str] | None, bool]],
        start: float,
        end: float,
    ) -> int:
        """Counted in Redis in one call, without reading the buckets back."""
        sent = [
            WindowUsers.part(encode(escape(signal)), bad, None if keys is None else [encode(k) for k in keys])
            for signal, keys, bad in parts
        ]
        low, high = repr(float(start)), f"({float(end)!r}"
        call = WindowUsers(self._keys.site(site, "scratch"), self._keys.site(site) + b":", low, high, sent)
        [count] = self._scripts.run([call])
        return int(count)

    def sites(self) -> set[str]:
        return {decode(s) for s in self._client.zrange(self._keys.sites, 0, -1)}

    def note_evaluations(self, sites: Sequence[str], at: float) -> None:
        if sites:
            pipe = self._client.pipeline(transaction=True)
            pipe.zadd(self._keys.evaluated, {encode(site): at for site in sites})
            pipe.expire(self._keys.evaluated, int(self.trend_seconds))
            pipe.execute()

    def last_evaluations(self) -> dict[str, datetime]:
        return {
            decode(site): timestamp(at)
            for site, at in self._client.zrange(self._keys.evaluated, 0, -1, withscores=True)
        }

    # Incidents and alerts.

    def save_incident(self, incident: Incident, *, fence: Fence | None = None) -> Incident:
        """Store an incident; return the one stored for its (site, check, key) afterwards.

        Opening is idempotent: an open incident whose (check, key) already has a
        *different* open incident is not stored, and the existing one is returned; a
        resolved incident is never reopened. The caller compares ids to learn that its
        transition lost the race and must not be announced.
        """
        site = incident.site
        doc = dumps(incident)
        if fence is not None and fence[0] != site_lease(site):
            raise ValueError(f"an incident of {site!r} is fenced by its site's lease, not {fence[0]!r}")
        save = SaveIncident(
            incidents=self._keys.site(site, "incidents"),
            open=self._keys.site(site, "open"),
            token=self._keys.lease(site_lease(site)) + b":token",
            id=encode(incident.id),
            doc=doc,
            field=encode(f"{incident.check}\x00{incident.key}"),
            is_open=incident.is_open,
            ttl=self.trend_seconds,
            fence=None if fence is None else str(fence[1]),
        )
        stored = self._scripts.run([save, self._touch_site(site)])[0]
        if stored == b"stale":
            raise StaleLease(f"the lease {fence[0]!r} has a newer holder than token {fence[1]}")  # type: ignore[index]
        return incident if stored == doc else loads(Incident, stored)

    def open_incident(self, incident: Incident) -> bool:
        """Store a newly opened incident unless its (site, check, key) already has an open one.

        True when this incident is now the open one; False when another process opened
        the same problem first (nothing was written).
        """
        return self.save_incident(incident).id == incident.id

    def incidents(
        self,
        site: str | None = None,
        *,
        open_only: bool = False,
        resolved_since: datetime | None = None,
    ) -> list[Incident]:
        sites = [site] if site is not None else sorted(self.sites())
        pipe = self._client.pipeline(transaction=False)
        for name in sites:
            pipe.hvals(self._keys.site(name, "incidents"))
        found = []
        for docs in pipe.execute():
            for doc in docs:
                incident = loads(Incident, doc)
                if incident.is_open or (
                    not open_only
                    and (
                        resolved_since is None
                        or (incident.resolved_at is not None and incident.resolved_at >= resolved_since)
                    )
                ):
                    found.append(incident)
        return newest_first(found)

    def open_incidents(self, sites: Sequence[str]) -> dict[str, list[Incident]]:
        replies = self._scripts.run(
            [OpenIncidents(self._keys.site(site, "incidents"), self._keys.site(site, "open")) for site in sites],
            batch=True,
        )
        found: dict[str, list[Incident]] = {}
        for site, docs in zip(sites, replies, strict=True):
            incidents = [loads(Incident, doc) for doc in docs if doc]
            found[site] = newest_first(i for i in incidents if i.is_open)
        return found

    def save_alert(self, alert: Alert) -> None:
        site = alert.site
        save = SaveAlert(
            hashes=self._keys.alert_hashes(site),
            id=encode(alert.incident_id),
            doc=dumps(alert),
            created_at=repr(alert.created_at.timestamp()),
            acknowledged_at=None if alert.acknowledged_at is None else repr(alert.acknowledged_at.timestamp()),
            notified_at=None if alert.notified_at is None else repr(alert.notified_at.timestamp()),
            reminders=int(alert.reminders),
            ttl=self.trend_seconds,
        )
        index = SetWithTtl(
            self._keys.alert_sites,
            "hset",
            encode(alert.incident_id),
            encode(site),
            self.trend_seconds,
        )
        self._scripts.run([save, index, self._touch_site(site)])

    def _touch_site(self, site: str, now: float | None = None) -> SetWithTtl:
        """Mark a site as active now, in the list :meth:`sites` answers from."""
        when = time.time() if now is None else now
        return SetWithTtl(self._keys.sites, "zadd", repr(when), encode(site), self.trend_seconds)

    def alerts(self, site: str | None = None) -> list[Alert]:
        sites = [site] if site is not None else sorted(self.sites())
        pipe = self._client.pipeline(transaction=False)
        for name in sites:
            for key in self._keys.alert_hashes(name):
                pipe.hgetall(key)
        replies = pipe.execute()
        found = []
        step = 1 + len(ALERT_PARTS)
        for i in range(0, len(replies), step):
            docs, *parts = replies[i : i + step]
            for incident_id, doc in docs.items():
                found.append(load_alert(doc, *(part.get(incident_id) for part in parts)))
        return sorted(found, key=lambda a: (a.created_at, a.incident_id), reverse=True)

    def acknowledge_alert(self, incident_id: str, at: datetime) -> Alert | None:
        site = self._client.hget(self._keys.alert_sites, encode(incident_id))
        if site is None:
            return None
        call = Acknowledge(
            self._keys.alert_hashes(decode(site)),
            encode(incident_id),
            repr(at.timestamp()),
            self.trend_seconds,
        )
        [reply] = self._scripts.run([call])
        return None if reply is None else load_alert(*reply)

    def mark_alert_notified(
        self, incident_id: str, *, expected: datetime | None, at: datetime, reminder: bool = False
    ) -> Alert | None:
        """A compare and set in one script, on the alert's own hash of notification times."""
        site = self._client.hget(self._keys.alert_sites, encode(incident_id))
        if site is None:
            return None
        call = MarkNotified(
            hashes=self._keys.alert_hashes(decode(site)),
            id=encode(incident_id),
            expected=None if expected is None else repr(expected.timestamp()),
            at=repr(at.timestamp()),
            reminder=reminder,
            ttl=self.trend_seconds,
        )
        [reply] = self._scripts.run([call])
        return None if reply is None else load_alert(*reply)

    # Maintenance windows and silences: a handful in all, each kind in one hash read whole.

    def save_maintenance(self, window: MaintenanceWindow) -> None:
        self._maintenance.save(window)

    def maintenance_windows(self, site: str | None = None) -> list[MaintenanceWindow]:
        return self._maintenance.read(site)

    def end_maintenance(self, window_id: str, at: datetime) -> MaintenanceWindow | None:
        return self._maintenance.end(window_id, at)

    def save_silence(self, silence: Silence) -> None:
        self._silences.save(silence)

    def silences(self, site: str | None = None) -> list[Silence]:
        return self._silences.read(site)

    def end_silence(self, silence_id: str, at: datetime) -> Silence | None:
        return self._silences.end(silence_id, at)

    # Leases.

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> int:
        """Take or renew ``name`` until the earlier of ``now + ttl`` (the caller's clock)
        and ``ttl`` real seconds from now (Redis's own expiry); return its fencing token."""
        return self.acquire_leases([name], owner, ttl, now)[0]

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float, now: float) -> list[int]:
        ms = max(1, round(ttl * 1000))
        owned, starts, expires = encode(owner), repr(float(now)), repr(float(now + ttl))
        calls = [
            Acquire(key, key + b":token", owned, ms, starts, expires, self.trend_seconds)
            for key in map(self._keys.lease, names)
        ]
        return [int(token) for token in self._scripts.run(calls, batch=True)] if calls else []

    def write_marks(self, sites: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Kept by the write script (see ``write.lua``), one HMGET per site in one pipeline."""
        if not sites:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for site in sites:
            pipe.hmget(self._keys.site(site, "w"), "newest", "late")
        return {
            site: (int(newest), int(late or 0))
            for site, (newest, late) in zip(sites, pipe.execute(), strict=True)
            if newest is not None
        }

    def visitor_key(self, day: int) -> bytes:
        """Set once by the first process to ask (``SET NX``), gone two days later (its TTL)."""
        key = self._keys.visitor(day)
        pipe = self._client.pipeline(transaction=False)
        pipe.set(key, secrets.token_bytes(32), nx=True, ex=2 * 86_400)
        pipe.get(key)
        return bytes(pipe.execute()[1])

    def session_generation(self, name: str, *, bump: bool = False) -> int:
        """``INCR`` to bump, ``GET`` to read; no TTL (a handful of keys, one per admin token)."""
        key = self._keys.session(name)
        if bump:
            return int(self._client.incr(key))
        return int(self._client.get(key) or 0)

    def release_lease(self, name: str, owner: str) -> None:
        self._scripts.run([Release(self._keys.lease(name), encode(owner))])

    # Retention.

    def trim(
        self,
        *,
        buckets_before: float,
        hourly_before: float,
        resolved_before: datetime,
        five_minute_before: float | None = None,
    ) -> None:
        """Delete raw buckets, roll-ups and resolved incidents older than the cutoffs, and
        maintenance windows and silences that ended before the incidents' cutoff.

        TTLs already bound what Redis holds; this applies the evaluator's own clock, and
        drops sites nothing has touched for ``trend`` seconds from the site list. One
        script call per site and one per kind of planned quiet, all in one round trip;
        then the forgotten incidents leave the cross-site alert index.
        """
        client = self._client
        client.zremrangebyscore(self._keys.sites, "-inf", f"({time.time() - self.trend_seconds}")
        sites = sorted(self.sites())
        fine = buckets_before if five_minute_before is None else five_minute_before
        before, hourly, fine_before = (
            f"({float(buckets_before)!r}",
            f"({float(hourly_before)!r}",
            f"({float(fine)!r}",
        )
        resolved = repr(resolved_before.timestamp())
        calls: list[ScriptCall] = [
            Trim(
                self._keys.site(site, "ti"),
                self._keys.site(site) + b":",
                before,
                hourly,
                resolved,
                fine_before,
            )
            for site in sites
        ]
        calls += [TrimPlanned(key, resolved) for key in (self._keys.maintenance, self._keys.silences)]
        gone = self._scripts.run(calls)[: len(sites)]
        ids = [incident_id for found in gone for incident_id in found]
        for i in range(0, len(ids), 500):
            client.hdel(self._keys.alert_sites, *ids[i : i + 500])
