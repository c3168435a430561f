"""The ``redis://`` store itself: keys, which script calls each method makes, and what it
reads back (the package's docstring says why it is built the way it is)."""

from __future__ import annotations

import math
import os
import secrets
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import attrs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...errors import ConfigError, StaleLease
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
from .codec import (
    ALERT_PARTS,
    SIGNED,
    UNSIGNED,
    USER_KINDS,
    CountsBucket,
    StoredUsers,
    decode,
    dumps,
    encode,
    escape,
    escape_field,
    kinds,
    load_alert,
    loads,
    numbers,
    unescape_field,
)
from .options import (
    DEFAULT_HISTORY,
    DEFAULT_PREFIX,
    DEFAULT_TIMEOUT,
    DEFAULT_TREND,
    config_value,
    positive,
    redacted,
    split_options,
)
from .pipeline import Command, ScriptRunner

log = get_logger(__name__)

P = TypeVar("P", MaintenanceWindow, Silence)

#: The prefix of a site's lease name (:func:`~nextmonth_health.store.base.site_lease`).
_SITE_LEASE: Final = site_lease("")

#: Buckets per Lua call: bounds how long one call holds Redis (a few milliseconds).
_CHUNK: Final = 200
#: Sites per call marking them active after a write.
_TOUCH_CHUNK: Final = 1000
_HEALTH_CHECK_INTERVAL: Final = 30


class RedisStore(Store):
    """Buckets, roll-ups, incidents, alerts and leases in Redis (see the module doc).

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
        connect_url, options = split_options(url)
        self.timeout = positive("timeout", timeout, options.get("timeout"), DEFAULT_TIMEOUT)
        history = positive("history", history_seconds, options.get("history"), DEFAULT_HISTORY)
        self.history_seconds = int(history)
        self.trend_seconds = int(positive("trend", trend_seconds, options.get("trend"), DEFAULT_TREND))
        self.prefix = prefix or options.get("prefix") or DEFAULT_PREFIX
        if "{" in self.prefix or "}" in self.prefix:
            raise ConfigError(f"the redis:// store prefix must not contain braces, got {self.prefix!r}")
        self.url = redacted(url)
        self._connect_url = connect_url
        self._own_client = client is None
        self._client = client if client is not None else self._connect()
        self._scripts = ScriptRunner(self._client)
        #: Bucket deltas whose users came as an estimate rather than exact hashes (only
        #: possible when something other than the recorder writes): counted, not unioned.
        self.inexact_user_sketches = 0
        self._parents: list[Any] = []
        _STORES.add(self)

    def _connect(self) -> Any:
        try:
            return redis.Redis.from_url(
                self._connect_url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                health_check_interval=_HEALTH_CHECK_INTERVAL,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ConfigError(f"bad redis:// store URL {self.url!r}: {exc}") from exc

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
        """A Redis that keeps nothing on disk (no append-only file, no save points).

        A managed Redis that refuses ``CONFIG`` (or one that is down) cannot tell, and
        says nothing.
        """
        try:
            aof = config_value(self._client.config_get("appendonly"), "appendonly")
            save = config_value(self._client.config_get("save"), "save")
        except Exception:
            return ()
        if aof == "no" and save == "":
            return (
                f"Redis at {self.url} keeps nothing on disk (appendonly no, no save points):"
                " a restart forgets open incidents and alerts, and the next pass opens and"
                " alerts them again; set appendonly yes",
            )
        return ()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # Keys.

    def _key(self, site: str, *parts: str) -> bytes:
        return ":".join((self.prefix, "{" + escape(site) + "}", *parts)).encode("utf-8", "surrogatepass")

    def _user_keys(self, site: str, signal: str, start: int, key: str) -> list[bytes]:
        """The keys of a series' users in one raw bucket: see :data:`USER_KINDS`."""
        sig = escape(signal)
        return [self._key(site, kind, sig, f"{start}:{key}") for kind in USER_KINDS]

    @property
    def _sites_key(self) -> bytes:
        return f"{self.prefix}:{{sites}}".encode()

    @property
    def _evaluated_key(self) -> bytes:
        return f"{self.prefix}:{{evaluated}}".encode()

    @property
    def _alert_sites_key(self) -> bytes:
        return f"{self.prefix}:{{alert-sites}}".encode()

    @property
    def _maintenance_key(self) -> bytes:
        return f"{self.prefix}:{{maintenance}}".encode()

    @property
    def _silences_key(self) -> bytes:
        return f"{self.prefix}:{{silences}}".encode()

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
        widths = [part for width in ROLLUP_WIDTHS for part in (width, self._rollup_ttl(width))]
        mark = b"" if batch is None else b"applied:" + encode(escape(batch[0]))
        commands: list[Command] = []
        for site, site_buckets in by_site.items():
            prefix = self._key(site) + b":"
            keys = [prefix + b"ti"] if batch is None else [prefix + b"ti", prefix + mark]
            for call, i in enumerate(range(0, len(site_buckets), _CHUNK)):
                chunk = site_buckets[i : i + _CHUNK]
                head = [
                    self.history_seconds,
                    EXACT_LIMIT,
                    "" if batch is None else f"{batch[1]} {call}",
                    len(ROLLUP_WIDTHS),
                    *widths,
                ]
                commands.append(("write", keys, self._write_args(prefix, head, chunk)))
        sites = [encode(site) for site in by_site]
        for i in range(0, len(sites), _TOUCH_CHUNK):
            touched = [part for site in sites[i : i + _TOUCH_CHUNK] for part in (now, site)]
            commands.append(("touch_sites", [self._sites_key], [self.trend_seconds, *touched]))
        self._scripts.run(commands)

    def _write_args(self, prefix: bytes, head: list[Any], buckets: Sequence[Bucket]) -> list[Any]:
        """The write script's arguments for some buckets of one site (see ``write.lua``)."""
        signals = sorted({b.signal for b in buckets})
        number = {signal: str(i) for i, signal in enumerate(signals, 1)}
        lines = []
        for bucket in buckets:
            users = []
            for counter in (bucket.users, bucket.bad_users):
                items = counter.exact_items()
                if items is None:
                    self._inexact(bucket)
                    items = ()
                users.append(" ".join([str(h - UNSIGNED if h >= SIGNED else h) for h in items]))
            lines.append(
                f"{number[bucket.signal]}\t{escape_field(bucket.key)}\t{numbers(bucket)}\t{users[0]}\t{users[1]}\n"
            )
        return [
            prefix,
            *head,
            len(signals),
            *(encode(escape(signal)) for signal in signals),
            LATE_WRITE_SECONDS,
            encode("".join(lines)),
        ]

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
            users = self._user_keys(site, signal, int(bucket.start), bucket.key)
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
        prefix = self._key(site) + b":"
        starts = self._client.zrangebyscore(prefix + index, start, f"({end}")
        if not starts:
            return
        pipe = self._client.pipeline(transaction=False)
        for first in starts:
            pipe.hgetall(prefix + kind + b":" + first)
        head = encode(escape(signal)) + b"\t"
        for first, fields in zip(starts, pipe.execute(), strict=True):
            found: dict[bytes, tuple[Bucket, bytes]] = {}
            # Sorted, a series' counts field comes before its slots' (it is their prefix).
            for field, value in sorted(fields.items()):
                if not field.startswith(head):
                    continue
                key, _, slot = field[len(head) :].partition(b"\t")
                if not slot:
                    bucket = Bucket(site, signal, unescape_field(key), int(first))
                    total, bad, _, _, *pairs = value.split(b" ", 4)
                    bucket.total, bucket.bad = int(total), int(bad)
                    if pairs:
                        bucket.hist.update(CountsBucket.decode_hist(pairs[0]))
                    found[key] = (bucket, value)
                elif key in found:
                    found[key][0].hist[int(slot)] = int(value)
            yield from found.values()

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
        commands: list[Command] = []
        for site in sites:
            prefix = self._key(site) + b":"
            commands.append(("read_many", [prefix + b"ti"], [prefix, low, high, index, kind, *escaped]))
        rows: list[Row] = []
        # Keys and starts repeat across buckets and sites: each is decoded once.
        keys: dict[bytes, str] = {}
        starts: dict[bytes, int] = {}
        for site, reply in zip(sites, self._scripts.run(commands, batch=True), strict=True):
            if not reply:
                continue
            for line in reply[:-1].split(b"\n"):
                first, signal, key, value = line.split(b"\t")
                parts = value.split(b" ", 4)
                name = keys.get(key)
                if name is None:
                    name = keys[key] = unescape_field(key)
                at = starts.get(first)
                if at is None:
                    at = starts[first] = int(first)
                hist = parts[4] if len(parts) == 5 else b""
                rows.append((site, names[signal], name, at, int(parts[0]), int(parts[1]), hist))
        return rows

    def decode_hist(self, hist: Any) -> Counter[int]:
        return CountsBucket.decode_hist(hist)

    def count_users(self, cells: Sequence[tuple[Bucket, bool]]) -> int:
        """Distinct users over the cells, counted in Redis in one call (all of one site).

        Exact while every cell's set is intact (at most 512 users each), a HyperLogLog
        union beyond. Cells not read from this store are looked up by their coordinates.
        """
        if not cells:
            return 0
        keys: list[bytes] = [self._key(cells[0][0].site, "scratch")]
        for bucket, bad in cells:
            counter = bucket.bad_users if bad else bucket.users
            if isinstance(counter, StoredUsers):
                keys += counter.keys
            else:
                users = self._user_keys(bucket.site, bucket.signal, int(bucket.start), bucket.key)
                keys += users[2:] if bad else users[:2]
        [count] = self._scripts.run([("count_users", keys, [])])
        return int(count)

    def window_users(
        self, site: str, parts: Sequence[tuple[str, Sequence[str] | None, bool]], start: float, end: float
    ) -> int:
        """Counted in Redis in one call, without reading the buckets back."""
        args: list[Any] = [self._key(site) + b":", repr(float(start)), f"({float(end)!r}", len(parts)]
        for signal, keys, bad in parts:
            args += (encode(escape(signal)), "1" if bad else "0", -1 if keys is None else len(keys))
            args += [encode(key) for key in keys or ()]
        [count] = self._scripts.run([("window_users", [self._key(site, "scratch")], args)])
        return int(count)

    def sites(self) -> set[str]:
        return {decode(s) for s in self._client.zrange(self._sites_key, 0, -1)}

    def note_evaluations(self, sites: Sequence[str], at: float) -> None:
        if sites:
            pipe = self._client.pipeline(transaction=True)
            pipe.zadd(self._evaluated_key, {encode(site): at for site in sites})
            pipe.expire(self._evaluated_key, int(self.trend_seconds))
            pipe.execute()

    def last_evaluations(self) -> dict[str, datetime]:
        return {
            decode(site): timestamp(at)
            for site, at in self._client.zrange(self._evaluated_key, 0, -1, withscores=True)
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
        stored = self._scripts.run(
            [
                (
                    "save_incident",
                    [self._key(site, "incidents"), self._key(site, "open"), self._lease_key(site_lease(site)) + b":token"],
                    [
                        encode(incident.id),
                        doc,
                        encode(f"{incident.check}\x00{incident.key}"),
                        "1" if incident.is_open else "0",
                        self.trend_seconds,
                        "" if fence is None else str(fence[1]),
                    ],
                ),
                self._touch_site(site),
            ]
        )[0]
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
        self, site: str | None = None, *, open_only: bool = False, resolved_since: datetime | None = None
    ) -> list[Incident]:
        sites = [site] if site is not None else sorted(self.sites())
        pipe = self._client.pipeline(transaction=False)
        for name in sites:
            pipe.hvals(self._key(name, "incidents"))
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
            [("open_incidents", [self._key(site, "incidents"), self._key(site, "open")], []) for site in sites],
            batch=True,
        )
        found: dict[str, list[Incident]] = {}
        for site, docs in zip(sites, replies, strict=True):
            incidents = [loads(Incident, doc) for doc in docs if doc]
            found[site] = newest_first(i for i in incidents if i.is_open)
        return found

    def save_alert(self, alert: Alert) -> None:
        site = alert.site
        self._scripts.run(
            [
                (
                    "save_alert",
                    self._alert_keys(site),
                    [
                        encode(alert.incident_id),
                        dumps(alert),
                        repr(alert.created_at.timestamp()),
                        "" if alert.acknowledged_at is None else repr(alert.acknowledged_at.timestamp()),
                        "" if alert.notified_at is None else repr(alert.notified_at.timestamp()),
                        int(alert.reminders),
                        self.trend_seconds,
                    ],
                ),
                (
                    "set_with_ttl",
                    [self._alert_sites_key],
                    ["hset", encode(alert.incident_id), encode(site), self.trend_seconds],
                ),
                self._touch_site(site),
            ]
        )

    def _touch_site(self, site: str, now: float | None = None) -> Command:
        """Mark a site as active now, in the list :meth:`sites` answers from."""
        when = time.time() if now is None else now
        return ("set_with_ttl", [self._sites_key], ["zadd", repr(when), encode(site), self.trend_seconds])

    def _alert_keys(self, site: str) -> list[bytes]:
        """The site's alerts' JSON, then a hash per part kept apart (:data:`ALERT_PARTS`)."""
        return [self._key(site, "alerts"), *(self._key(site, "alerts", part) for part in ALERT_PARTS)]

    def alerts(self, site: str | None = None) -> list[Alert]:
        sites = [site] if site is not None else sorted(self.sites())
        pipe = self._client.pipeline(transaction=False)
        for name in sites:
            for key in self._alert_keys(name):
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
        site = self._client.hget(self._alert_sites_key, encode(incident_id))
        if site is None:
            return None
        args = [encode(incident_id), repr(at.timestamp()), self.trend_seconds]
        [reply] = self._scripts.run([("acknowledge", self._alert_keys(decode(site)), args)])
        return None if reply is None else load_alert(*reply)

    def mark_alert_notified(
        self, incident_id: str, *, expected: datetime | None, at: datetime, reminder: bool = False
    ) -> Alert | None:
        """A compare and set in one script, on the alert's own hash of notification times."""
        site = self._client.hget(self._alert_sites_key, encode(incident_id))
        if site is None:
            return None
        args = [
            encode(incident_id),
            "" if expected is None else repr(expected.timestamp()),
            repr(at.timestamp()),
            "1" if reminder else "0",
            self.trend_seconds,
        ]
        [reply] = self._scripts.run([("mark_notified", self._alert_keys(decode(site)), args)])
        return None if reply is None else load_alert(*reply)

    # Maintenance windows and silences: a handful in all, each kind in one hash read whole.

    def save_maintenance(self, window: MaintenanceWindow) -> None:
        self._save_planned(self._maintenance_key, window)

    def maintenance_windows(self, site: str | None = None) -> list[MaintenanceWindow]:
        return self._planned(self._maintenance_key, MaintenanceWindow, site)

    def end_maintenance(self, window_id: str, at: datetime) -> MaintenanceWindow | None:
        return self._end_planned(self._maintenance_key, MaintenanceWindow, window_id, at)

    def save_silence(self, silence: Silence) -> None:
        self._save_planned(self._silences_key, silence)

    def silences(self, site: str | None = None) -> list[Silence]:
        return self._planned(self._silences_key, Silence, site)

    def end_silence(self, silence_id: str, at: datetime) -> Silence | None:
        return self._end_planned(self._silences_key, Silence, silence_id, at)

    def _save_planned(self, key: bytes, value: MaintenanceWindow | Silence) -> None:
        """The hash lives ``trend`` seconds past the end of this entry, or longer (see
        ``save_planned.lua``), so a window planned weeks ahead is still there when it starts."""
        ttl = self.trend_seconds + max(0, math.ceil(value.ends_at.timestamp() - time.time()))
        self._scripts.run([("save_planned", [key], [encode(value.id), dumps(value), ttl])])

    def _planned(self, key: bytes, kind: type[P], site: str | None) -> list[P]:
        found = [loads(kind, doc) for doc in self._client.hvals(key)]
        return sorted((p for p in found if site is None or p.site == site), key=lambda p: (p.starts_at, p.id))

    def _end_planned(self, key: bytes, kind: type[P], planned_id: str, at: datetime) -> P | None:
        """Read, then replace only if unchanged (``replace_planned.lua``), again on what
        another process saved meanwhile: an end never undoes a change it did not see. (Lua
        cannot rewrite the JSON itself: cjson keeps 14 digits, and times need 16.)"""
        field = encode(planned_id)
        doc = self._client.hget(key, field)
        while doc is not None:
            found: P = loads(kind, doc)
            if found.ends_at <= at:
                return found
            ended = attrs.evolve(found, ends_at=max(at, found.starts_at))
            new = dumps(ended)
            [doc] = self._scripts.run([("replace_planned", [key], [field, doc, new])])
            if doc == new:
                return ended
        return None

    # Leases.

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> int:
        """Take or renew ``name`` until the earlier of ``now + ttl`` (the caller's clock)
        and ``ttl`` real seconds from now (Redis's own expiry); return its fencing token."""
        return self.acquire_leases([name], owner, ttl, now)[0]

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float, now: float) -> list[int]:
        ms = max(1, round(ttl * 1000))
        args = [encode(owner), ms, repr(float(now)), repr(float(now + ttl)), self.trend_seconds]
        calls = [("acquire", [key, key + b":token"], args) for key in map(self._lease_key, names)]
        return [int(token) for token in self._scripts.run(calls, batch=True)] if calls else []

    def write_marks(self, sites: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Kept by the write script (see ``write.lua``), one HMGET per site in one pipeline."""
        if not sites:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for site in sites:
            pipe.hmget(self._key(site, "w"), "newest", "late")
        return {
            site: (int(newest), int(late or 0))
            for site, (newest, late) in zip(sites, pipe.execute(), strict=True)
            if newest is not None
        }

    def visitor_key(self, day: int) -> bytes:
        """Set once by the first process to ask (``SET NX``), gone two days later (its TTL)."""
        key = f"{self.prefix}:{{visitors}}:key:{day}".encode()
        pipe = self._client.pipeline(transaction=False)
        pipe.set(key, secrets.token_bytes(32), nx=True, ex=2 * 86_400)
        pipe.get(key)
        return bytes(pipe.execute()[1])

    def session_generation(self, name: str, *, bump: bool = False) -> int:
        """``INCR`` to bump, ``GET`` to read; no TTL (a handful of keys, one per admin token)."""
        key = f"{self.prefix}:{{admin}}:session:{escape(name)}".encode("utf-8", "surrogatepass")
        if bump:
            return int(self._client.incr(key))
        return int(self._client.get(key) or 0)

    def release_lease(self, name: str, owner: str) -> None:
        self._scripts.run([("release", [self._lease_key(name)], [encode(owner)])])

    def _lease_key(self, name: str) -> bytes:
        """A site's lease lives in the site's slot, so a fenced incident write checks its
        token in the same script; other leases have a slot of their own."""
        if name.startswith(_SITE_LEASE):
            return self._key(name[len(_SITE_LEASE) :], "lease")
        return f"{self.prefix}:{{lease:{escape(name)}}}".encode("utf-8", "surrogatepass")

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
        client.zremrangebyscore(self._sites_key, "-inf", f"({time.time() - self.trend_seconds}")
        sites = sorted(self.sites())
        fine = buckets_before if five_minute_before is None else five_minute_before
        args = [
            f"({float(buckets_before)!r}",
            f"({float(hourly_before)!r}",
            repr(resolved_before.timestamp()),
            f"({float(fine)!r}",
        ]
        commands: list[Command] = [
            ("trim", [self._key(site, "ti")], [self._key(site) + b":", *args]) for site in sites
        ]
        commands += [("trim_planned", [key], [args[2]]) for key in (self._maintenance_key, self._silences_key)]
        gone = self._scripts.run(commands)[: len(sites)]
        ids = [incident_id for found in gone for incident_id in found]
        for i in range(0, len(ids), 500):
            client.hdel(self._alert_sites_key, *ids[i : i + 500])


_STORES: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
