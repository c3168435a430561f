"""``sqlite:///path`` — the embedded default: one file shared by every worker process of a host.

Why it is built the way it is:

- **WAL with ``synchronous=NORMAL``.** Readers never wait for writers and writers never wait
  for readers, so the admin view and the evaluator read while workers flush. A commit is in
  the WAL file before ``COMMIT`` returns, so it survives the process being killed (even with
  ``kill -9``); only a power loss or OS crash can take back the last few commits, which is
  the price of not calling ``fsync`` on every flush.
- **``BEGIN IMMEDIATE`` for every write.** The write lock is taken up front, so a writer
  waits its turn through the busy timeout instead of failing half-way with
  ``SQLITE_BUSY``; a write still refused after a few bounded attempts raises, and the
  recorder keeps its buckets pending for the next flush. Nothing on the request path ever
  touches the file: ``record_*`` only appends to memory.
- **One transaction per** :meth:`SQLiteStore.write`. Bucket deltas are merged in Python
  (histograms add, user sketches union) with the rows already stored for the batch, read
  with one ranged query per (site, signal), and written back with one ``executemany``.
- **Versioned schema.** ``PRAGMA user_version`` counts the steps of :data:`MIGRATIONS`
  applied; opening a file runs the missing steps in one transaction, and refuses a file
  written by a newer version rather than guessing at it.
- **Bounded file.** :meth:`SQLiteStore.trim` deletes what the windows, trends and the
  recent-incident list no longer need; SQLite reuses the freed pages, so the file stops
  growing once the retention horizon is reached, with no ``VACUUM``.
- **Fork-safe.** An SQLite connection must never cross ``fork()``: idle connections are
  closed just before a fork and the child opens its own.
- **It notices its file going away.** Open connections keep working on a file that was
  deleted (or moved aside and replaced), and would do so for ever while nothing reaches
  the disk. Every write first compares the path's device and inode with the file the
  store opened; a deleted file is recreated (its stale ``-wal`` and ``-shm`` removed
  first, under a lock on the directory, so that two workers agree), a replaced one is
  adopted, and the write that noticed raises :class:`~nextmonth_health.errors.StoreError`
  (counted where the monitor catches it, and sent again by the recorder) after an error
  in the log. ``file_changes`` counts them.
- **Errors that say what to do.** No public method lets a raw ``sqlite3`` exception out:
  a damaged, locked or unwritable file raises ``StoreError`` naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import sqlite3
import sys
import threading
import weakref
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import unquote

from ..codec import from_dict, to_dict
from ..errors import ConfigError, StaleLease, StoreError
from ..logs import get_logger
from ..signals import SIGNALS, Bucket, hist_add
from ..sketch import EXACT_LIMIT, DistinctCounter
from ..values import Alert, Incident, MaintenanceWindow, Silence, timestamp
from .base import HOUR, LATE_WRITE_SECONDS, ROLLUP_WIDTHS, BatchId, Fence, Row, Store, StoredBucket, rollup_of

__all__ = ["DEFAULT_FILE", "MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]

log = get_logger(__name__)

T = TypeVar("T")
P = TypeVar("P", MaintenanceWindow, Silence)
V = TypeVar("V", Incident, Alert, MaintenanceWindow, Silence)

#: The file ``sqlite://`` (no path) opens, relative to the working directory.
DEFAULT_FILE: Final = "nextmonth-health.db"

#: The schema, as ordered steps. Step ``n`` (1-based) moves a file from ``user_version``
#: ``n - 1`` to ``n``. Append new steps; never edit a released one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # Raw buckets, keyed for the one read the evaluator makes: a site's signal over a
        # time range, all keys at once.
        """CREATE TABLE buckets (
            site TEXT NOT NULL, signal TEXT NOT NULL, start INTEGER NOT NULL, key TEXT NOT NULL,
            total INTEGER NOT NULL, bad INTEGER NOT NULL, hist BLOB, users BLOB, bad_users BLOB,
            PRIMARY KEY (site, signal, start, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE hourly (
            site TEXT NOT NULL, signal TEXT NOT NULL, start INTEGER NOT NULL, key TEXT NOT NULL,
            total INTEGER NOT NULL, bad INTEGER NOT NULL, hist BLOB, users BLOB, bad_users BLOB,
            PRIMARY KEY (site, signal, start, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY, site TEXT NOT NULL, check_name TEXT NOT NULL, area TEXT NOT NULL,
            key TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL,
            affected_users INTEGER NOT NULL, opened_at REAL NOT NULL, summary TEXT NOT NULL,
            updated_at REAL NOT NULL, resolved_at REAL, escalated_at REAL, recovering_since REAL,
            value REAL, threshold REAL, alert_id TEXT
        )""",
        """CREATE TABLE alerts (
            incident_id TEXT PRIMARY KEY, site TEXT NOT NULL, message TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, check_name TEXT NOT NULL,
            key TEXT NOT NULL, area TEXT NOT NULL, affected_users INTEGER NOT NULL,
            resolved_at REAL, acknowledged_at REAL, incident_ids TEXT NOT NULL
        )""",
        "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)",
    ),
    (
        # What the evaluator (open incidents of a site), the trims and the admin view filter on.
        "CREATE INDEX incidents_by_site_status ON incidents (site, status)",
        "CREATE INDEX incidents_by_resolved_at ON incidents (resolved_at)",
        "CREATE INDEX alerts_by_site ON alerts (site)",
    ),
    (
        # Five-minute roll-ups: an hour's baseline in twelve rows.
        """CREATE TABLE five_minute (
            site TEXT NOT NULL, signal TEXT NOT NULL, start INTEGER NOT NULL, key TEXT NOT NULL,
            total INTEGER NOT NULL, bad INTEGER NOT NULL, hist BLOB, users BLOB, bad_users BLOB,
            PRIMARY KEY (site, signal, start, key)
        ) WITHOUT ROWID""",
    ),
    (
        # When each site was last evaluated, for `nextmonth-health status`.
        "CREATE TABLE evaluations (site TEXT PRIMARY KEY, at REAL NOT NULL)",
    ),
    (
        # The people hurt in the latest window, beside those hurt since the incident opened.
        "ALTER TABLE incidents ADD COLUMN affected_now INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # The day's key for counting anonymous visitors, shared by every worker, kept two days.
        "CREATE TABLE visitor_keys (day INTEGER PRIMARY KEY, key BLOB NOT NULL)",
    ),
    (
        # Fencing tokens: each new holder of a lease gets a greater one (see save_incident).
        "ALTER TABLE leases ADD COLUMN token INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # Per site, the newest bucket written and how many writes came late (write_marks).
        "CREATE TABLE site_writes (site TEXT PRIMARY KEY, newest INTEGER NOT NULL, late INTEGER NOT NULL)",
    ),
    (
        # The admin view's session generations: signing out moves one on for every worker.
        "CREATE TABLE session_generations (name TEXT PRIMARY KEY, generation INTEGER NOT NULL)",
    ),
    (
        # Planned quiet: the maintenance window an incident was seen in; when the push sinks
        # were last told of an alert, and how many times again; the windows and silences,
        # read per site in the order they start.
        "ALTER TABLE incidents ADD COLUMN maintenance_id TEXT",
        "ALTER TABLE alerts ADD COLUMN notified_at REAL",
        "ALTER TABLE alerts ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE maintenance (
            id TEXT PRIMARY KEY, site TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,
            reason TEXT NOT NULL, area TEXT, created_at REAL
        )""",
        "CREATE INDEX maintenance_by_site ON maintenance (site, starts_at, id)",
        """CREATE TABLE silences (
            id TEXT PRIMARY KEY, site TEXT NOT NULL, check_name TEXT NOT NULL, starts_at REAL NOT NULL,
            ends_at REAL NOT NULL, key TEXT, reason TEXT NOT NULL, created_at REAL
        )""",
        "CREATE INDEX silences_by_site ON silences (site, starts_at, id)",
    ),
)

#: The table holding each roll-up width.
ROLLUP_TABLES: Final = {300: "five_minute", HOUR: "hourly"}
SCHEMA_VERSION: Final = len(MIGRATIONS)

_BUSY_TIMEOUT: Final = 5.0
_WRITE_ATTEMPTS: Final = 3
_MAX_IDLE_CONNECTIONS: Final = 4
_WAL_CHECKPOINT_PAGES: Final = 256
_JOURNAL_SIZE_LIMIT: Final = 1024 * 1024
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_LITTLE_ENDIAN: Final = sys.byteorder == "little"

_BUCKET_COLUMNS: Final = "key, start, total, bad, hist, users, bad_users"
# How incidents, alerts, maintenance windows and silences map to columns: (column,
# attribute, kind). Every attribute of the value type has a column (a test holds us to
# it), so a new field needs a migration.
_TEXT, _INT, _REAL, _TIME, _IDS = "text", "int", "real", "time", "ids"
_Fields = tuple[tuple[str, str, str], ...]
_INCIDENT_FIELDS: Final = (
    ("id", "id", _TEXT),
    ("site", "site", _TEXT),
    ("check_name", "check", _TEXT),
    ("area", "area", _TEXT),
    ("key", "key", _TEXT),
    ("severity", "severity", _TEXT),
    ("status", "status", _TEXT),
    ("affected_users", "affected_users", _INT),
    ("opened_at", "opened_at", _TIME),
    ("summary", "summary", _TEXT),
    ("updated_at", "updated_at", _TIME),
    ("resolved_at", "resolved_at", _TIME),
    ("escalated_at", "escalated_at", _TIME),
    ("recovering_since", "recovering_since", _TIME),
    ("value", "value", _REAL),
    ("threshold", "threshold", _REAL),
    ("alert_id", "alert_id", _TEXT),
    ("affected_now", "affected_now", _INT),
    ("maintenance_id", "maintenance_id", _TEXT),
)
_ALERT_FIELDS: Final = (
    ("incident_id", "incident_id", _TEXT),
    ("site", "site", _TEXT),
    ("message", "message", _TEXT),
    ("created_at", "created_at", _TIME),
    ("updated_at", "updated_at", _TIME),
    ("check_name", "check", _TEXT),
    ("key", "key", _TEXT),
    ("area", "area", _TEXT),
    ("affected_users", "affected_users", _INT),
    ("resolved_at", "resolved_at", _TIME),
    ("acknowledged_at", "acknowledged_at", _TIME),
    ("incident_ids", "incident_ids", _IDS),
    ("notified_at", "notified_at", _TIME),
    ("reminders", "reminders", _INT),
)
_MAINTENANCE_FIELDS: Final = (
    ("id", "id", _TEXT),
    ("site", "site", _TEXT),
    ("starts_at", "starts_at", _TIME),
    ("ends_at", "ends_at", _TIME),
    ("reason", "reason", _TEXT),
    ("area", "area", _TEXT),
    ("created_at", "created_at", _TIME),
)
_SILENCE_FIELDS: Final = (
    ("id", "id", _TEXT),
    ("site", "site", _TEXT),
    ("check_name", "check", _TEXT),
    ("starts_at", "starts_at", _TIME),
    ("ends_at", "ends_at", _TIME),
    ("key", "key", _TEXT),
    ("reason", "reason", _TEXT),
    ("created_at", "created_at", _TIME),
)
_INCIDENT_COLUMNS: Final = ", ".join(column for column, _, _ in _INCIDENT_FIELDS)
_ALERT_COLUMNS: Final = ", ".join(column for column, _, _ in _ALERT_FIELDS)
_SAVE_INCIDENT: Final = (
    f"INSERT OR REPLACE INTO incidents ({_INCIDENT_COLUMNS}) VALUES ({', '.join('?' * len(_INCIDENT_FIELDS))})"
)
#: Replaces a stored alert, but keeps an acknowledgement the new one lacks, never moves
#: ``created_at`` later, nor ``notified_at`` and ``reminders`` back. (SQLite's max() of a
#: NULL is NULL: each side falls back on the other, so the max is of what is known.)
_SAVE_ALERT: Final = (
    f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * len(_ALERT_FIELDS))}) "
    "ON CONFLICT (incident_id) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}"
        for column, _, _ in _ALERT_FIELDS
        if column not in ("incident_id", "created_at", "acknowledged_at", "notified_at", "reminders")
    )
    + ", created_at = min(alerts.created_at, excluded.created_at)"
    ", acknowledged_at = coalesce(excluded.acknowledged_at, alerts.acknowledged_at)"
    ", notified_at = max(coalesce(excluded.notified_at, alerts.notified_at),"
    " coalesce(alerts.notified_at, excluded.notified_at))"
    ", reminders = max(alerts.reminders, excluded.reminders)"
)
#: Compare and set: notes that the push sinks were told, only if ``notified_at`` is still
#: the one expected (``IS``, so that NULL matches NULL).
_MARK_NOTIFIED: Final = (
    "UPDATE alerts SET notified_at = ?, reminders = reminders + ? WHERE incident_id = ? AND notified_at IS ? "
    f"RETURNING {_ALERT_COLUMNS}"
)

#: Takes a lease that is free, expired or already ours; returns its fencing token when
#: taken (one more than the last holder's for a new owner), no row when another holds it.
_ACQUIRE: Final = (
    "INSERT INTO leases (name, owner, expires, token) VALUES (?, ?, ?, 1) ON CONFLICT (name) DO UPDATE SET "
    "owner = excluded.owner, expires = excluded.expires, "
    "token = CASE WHEN leases.owner = excluded.owner THEN max(leases.token, 1) ELSE leases.token + 1 END "
    "WHERE leases.owner = excluded.owner OR leases.expires <= ? RETURNING token"
)
#: Notes a write's newest bucket for its site, and counts it late when its oldest bucket
#: is older than the newest already written by more than LATE_WRITE_SECONDS.
_NOTE_WRITES: Final = (
    "INSERT INTO site_writes (site, newest, late) VALUES (?1, ?2, 0) ON CONFLICT (site) DO UPDATE SET "
    "late = site_writes.late + (?3 < site_writes.newest - ?4), newest = max(site_writes.newest, ?2)"
)
#: Sites per batched read: well under SQLite's limit on bound parameters.
_SITES_PER_QUERY: Final = 200

BucketKey = tuple[str, str, str, int]


class SQLiteStore(Store):
    """Buckets, roll-ups, incidents, alerts and leases in one SQLite file (see the module doc).

    :param url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, or
        ``sqlite://`` for ``nextmonth-health.db`` in the working directory. The path is
        resolved once, here, so a later ``chdir`` does not move the store.
    :param busy_timeout: seconds one attempt at a write waits for another process's write.

    Raises :class:`~nextmonth_health.errors.ConfigError` at once when the URL is malformed,
    the file cannot be created or opened, or it was written by a newer schema.
    """

    blocking = True
    fencing = True

    def __init__(self, url: str = "sqlite://", *, busy_timeout: float = _BUSY_TIMEOUT) -> None:
        self.url = url
        self.path = _path_of(url)
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        #: The newest bucket this process noted per site (see :meth:`write_marks`).
        self._noted: dict[str, int] = {}
        self._pid = os.getpid()
        self._closed = False
        #: The file the connections are open on: (device, inode), checked before each write.
        self._file: tuple[int, int] | None = None
        #: Bumped when the file changes, so that connections on the old one are not reused.
        self._generation = 0
        #: Times the file was found deleted or replaced (and recreated or adopted).
        self.file_changes = 0
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ConfigError(
                f"cannot create the SQLite store {self.path!r}: the directory {directory!r} does not exist; "
                f"create it, or point the store (NEXTMONTH_HEALTH_STORE) at a writable path"
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(
                f"cannot use the SQLite store {self.path!r}: the directory {directory!r} is not writable "
                f"(SQLite keeps its -wal and -shm files next to the database); "
                f"grant write access or point the store (NEXTMONTH_HEALTH_STORE) elsewhere"
            )
        try:
            self._setup()
        except (sqlite3.Error, StoreError) as exc:
            self.close()
            cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ is not None else exc
            raise ConfigError(
                f"cannot open the SQLite store {self.path!r}: {cause}; check that it is a nextmonth-health "
                f"database on a local, writable disk, or point the store (NEXTMONTH_HEALTH_STORE) elsewhere"
            ) from exc
        except BaseException:
            self.close()
            raise
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # Connections.

    def _setup(self) -> None:
        with self._connection() as conn:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"the SQLite store {self.path!r} cannot use write-ahead logging (journal mode is {mode!r}); "
                    f"put it on a local disk, not a network filesystem"
                )
            version = _user_version(conn)
            self._file = self._identity()
        if version != SCHEMA_VERSION:
            self._check_version(version)
            self._write(self._migrate)

    def _identity(self) -> tuple[int, int] | None:
        """The (device, inode) of the file at the store's path now; None when there is none."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (found.st_dev, found.st_ino)

    def _check_file(self) -> None:
        """Before a write: the path still names the file the connections are open on.

        A file deleted under the store is created anew, a replaced one adopted; either way
        the connections on the old file are dropped, the change is logged as an error and
        counted, and :class:`StoreError` tells the caller (whose write is then retried on the
        new file), so that nothing is written into a file nobody can see any more.
        """
        if self._identity() == self._file:
            return
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            log.error("nextmonth_health.sqlite_file_lost", path=self.path, reason="its directory was deleted")
            raise StoreError(
                f"the SQLite store {self.path} is gone with its directory {directory}, and nothing is written "
                f"until it is back: recreate the directory (the store then starts a new file), or point "
                f"NEXTMONTH_HEALTH_STORE elsewhere"
            )
        with _directory_lock(directory):
            found = self._identity()
            if found == self._file:  # another thread of this process got here first
                return
            with self._lock:
                idle, self._idle = self._idle, []
                self._generation += 1
                self.file_changes += 1
            for conn in idle:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            if found is None:
                reason, action = "was deleted", "a new, empty one was created in its place"
                for leftover in (self.path + "-wal", self.path + "-shm"):  # the deleted file's, never the new one's
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(leftover)
            else:
                reason, action = "was replaced by another file", "the store now uses that file"
            self._file = None
            try:
                self._setup()
            except Exception as exc:
                log.error("nextmonth_health.sqlite_file_lost", path=self.path, reason=reason, error=str(exc))
                raise StoreError(
                    f"the SQLite store {self.path} {reason} while in use and cannot be recreated ({exc}); "
                    f"restore the file, or make its directory writable, or point NEXTMONTH_HEALTH_STORE elsewhere"
                ) from exc
        log.error("nextmonth_health.sqlite_file_changed", path=self.path, reason=reason, action=action)
        raise StoreError(
            f"the SQLite store {self.path} {reason} while in use; {action}, so what the old file held is "
            f"gone from this store; this write will be sent again there. Keep the file in place while "
            f"the app runs (to start afresh, stop the app first)"
        )

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"the SQLite store {self.path!r} has schema version {version}, newer than the {SCHEMA_VERSION} "
                f"this nextmonth-health knows: upgrade nextmonth-health, or point the store at another file"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = _user_version(conn)  # again, under the write lock: another process may have migrated
        self._check_version(version)
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if version != SCHEMA_VERSION:
            log.info("nextmonth_health.sqlite_migrated", path=self.path, old=version, new=SCHEMA_VERSION)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
        )
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread's call, from a small pool shared by all threads.

        A pool rather than one connection per thread: the runner's worker threads come and
        go, and one connection behind a lock would make readers wait for a flush.
        """
        if self._pid != os.getpid():
            self._forget_connections()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            conn = self._idle.pop() if self._idle else None
            generation = self._generation
        try:
            if conn is None:
                conn = self._connect()
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from exc
        pid = self._pid
        try:
            yield conn
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from exc
        finally:
            with self._lock:
                keep = (
                    not self._closed
                    and pid == self._pid
                    and generation == self._generation
                    and not conn.in_transaction
                    and len(self._idle) < _MAX_IDLE_CONNECTIONS
                )
                if keep:
                    self._idle.append(conn)
            if not keep and pid == os.getpid():
                conn.close()

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, retrying a bounded number of
        times while another process holds the write lock past the busy timeout."""
        if self._file is not None:  # None while the file is first set up
            self._check_file()
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with self._connection() as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(conn)
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            with contextlib.suppress(sqlite3.Error):  # else the pool drops it
                                conn.execute("ROLLBACK")
                        raise
                    return result
            except StoreError as exc:
                if attempt == _WRITE_ATTEMPTS or not _is_busy(exc.__cause__):
                    raise
                log.debug("nextmonth_health.sqlite_busy", path=self.path, attempt=attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _forget_connections(self) -> None:
        """In a forked child: never use, nor close, what the parent opened."""
        _ORPHANED.extend(self._idle)
        self._idle = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self._pid == os.getpid():
            self._close_idle()
        _STORES.discard(self)

    # Buckets.

    def write(self, buckets: Sequence[Bucket], *, batch: BatchId | None = None) -> None:
        """Merge the deltas with their stored rows in one transaction.

        Roll-ups are summed into plain :class:`_Sums` (counts and a histogram dict): they
        keep no users, and a :class:`Bucket` with its two user sketches per roll-up was
        most of building them.
        """
        if not buckets:
            return
        raw: dict[BucketKey, Bucket] = {}
        rollups: dict[int, dict[BucketKey, _Sums]] = {width: {} for width in ROLLUP_WIDTHS}
        for bucket in buckets:
            site, signal, key, start = bucket.site, bucket.signal, bucket.key, bucket.start
            bkey = (site, signal, key, start)
            seen = raw.get(bkey)
            if seen is None:
                raw[bkey] = bucket
            else:
                raw[bkey] = merged = seen.copy()
                merged.merge(bucket)
            for width, table in rollups.items():
                rkey = (site, signal, key, rollup_of(start, width))
                sums = table.get(rkey)
                if sums is None:
                    table[rkey] = _Sums(bucket)
                else:
                    sums.add(bucket)

        starts: dict[str, tuple[int, int]] = {}
        for site, _, _, start in raw:
            low, high = starts.get(site, (start, start))
            starts[site] = (min(low, start), max(high, start))
        # Most flushes write into buckets this process already noted: nothing to tell.
        noted = self._noted
        starts = {
            site: (low, high)
            for site, (low, high) in starts.items()
            if (last := noted.get(site)) is None or high > last or low < last - LATE_WRITE_SECONDS
        }

        def work(conn: sqlite3.Connection) -> None:
            _add(conn, "buckets", raw)
            for width, table in rollups.items():
                _add(conn, ROLLUP_TABLES[width], table)
            conn.executemany(
                _NOTE_WRITES, [(site, high, low, LATE_WRITE_SECONDS) for site, (low, high) in starts.items()]
            )

        self._write(work)
        for site, (_, high) in starts.items():
            self._noted[site] = max(high, self._noted.get(site, high))

    def write_marks(self, sites: Sequence[str]) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        with self._connection() as conn:
            for chunk in _chunks(list(sites), _SITES_PER_QUERY):
                query = f"SELECT site, newest, late FROM site_writes WHERE site IN ({_marks(len(chunk))})"
                found.update((site, (int(newest), int(late))) for site, newest, late in conn.execute(query, chunk))
        return found

    def read(self, site: str, signal: str, start: float, end: float) -> list[Bucket]:
        rows = self._read(
            f"SELECT {_BUCKET_COLUMNS} FROM buckets WHERE site = ? AND signal = ? AND start >= ? AND start < ?",
            (site, signal, start, end),
        )
        return [_bucket(site, signal, row) for row in rows]

    def read_rollup(self, site: str, signal: str, width: int, start: float, end: float) -> list[Bucket]:
        rows = self._read(
            f"SELECT {_BUCKET_COLUMNS} FROM {ROLLUP_TABLES[width]} WHERE site = ? AND signal = ? AND start >= ? AND start < ?",
            (site, signal, start, end),
        )
        return [_bucket(site, signal, row) for row in rows]

    def read_many(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> dict[str, dict[str, list[Bucket]]]:
        """One query per batch of sites; user sketches are left out (see the base class)."""
        return _StoredBucket.grouped(sites, self.read_rows(sites, start, end, width=width, signals=signals))

    def read_rows(
        self,
        sites: Sequence[str],
        start: float,
        end: float,
        *,
        width: int | None = None,
        signals: Sequence[str] = SIGNALS,
    ) -> list[Row]:
        table = "buckets" if width is None else ROLLUP_TABLES[width]
        # Both IN lists are probes of the primary key (site, signal, start, key): each
        # (site, signal) is a range scan, however much history the table holds. So the
        # signals are named, not left open: a plugin's own are read only once declared.
        wanted = f"signal IN ({_marks(len(signals))})"
        rows: list[Row] = []
        with self._connection() as conn:
            for chunk in _chunks(list(dict.fromkeys(sites)), _SITES_PER_QUERY):
                rows += conn.execute(
                    f"SELECT site, signal, key, start, total, bad, hist FROM {table} "
                    f"WHERE site IN ({_marks(len(chunk))}) AND {wanted} AND start >= ? AND start < ?",
                    (*chunk, *signals, start, end),
                )
        return rows

    def decode_hist(self, hist: Any) -> Counter[int]:
        return _unpack_hist(hist)

    def sites(self) -> set[str]:
        # A skip-scan over the primary key: one index probe per distinct site, however many
        # buckets each has.
        rows = self._read(
            """WITH RECURSIVE s(site) AS (
                   SELECT min(site) FROM buckets
                   UNION ALL
                   SELECT (SELECT min(site) FROM buckets WHERE site > s.site) FROM s WHERE s.site IS NOT NULL
               )
               SELECT site FROM s WHERE site IS NOT NULL
               UNION SELECT site FROM incidents
               UNION SELECT site FROM alerts"""
        )
        return {row[0] for row in rows}

    # Incidents and alerts.

    def save_incident(self, incident: Incident, *, fence: Fence | None = None) -> Incident:
        row = _row(incident, _INCIDENT_FIELDS)

        def work(conn: sqlite3.Connection) -> Incident:
            if fence is not None:
                held = conn.execute("SELECT token FROM leases WHERE name = ?", (fence[0],)).fetchone()
                if held is None or held[0] != fence[1]:
                    raise StaleLease(f"the lease {fence[0]!r} has a newer holder than token {fence[1]}")
            select = f"SELECT {_INCIDENT_COLUMNS} FROM incidents"
            found = conn.execute(f"{select} WHERE id = ?", (incident.id,)).fetchone()
            if found is not None:
                stored = _value(Incident, found, _INCIDENT_FIELDS)
                if incident.is_open and not stored.is_open:
                    return stored
            elif incident.is_open:
                rival = conn.execute(
                    f"{select} WHERE site = ? AND check_name = ? AND key = ? AND status = 'open' AND id != ?",
                    (incident.site, incident.check, incident.key, incident.id),
                ).fetchone()
                if rival is not None:
                    return _value(Incident, rival, _INCIDENT_FIELDS)
            conn.execute(_SAVE_INCIDENT, row)
            return incident

        return self._write(work)

    def incidents(
        self, site: str | None = None, *, open_only: bool = False, resolved_since: datetime | None = None
    ) -> list[Incident]:
        where: list[str] = []
        params: list[Any] = []
        if site is not None:
            where.append("site = ?")
            params.append(site)
        if open_only:
            where.append("status = 'open'")
        elif resolved_since is not None:
            where.append("(status = 'open' OR resolved_at >= ?)")
            params.append(_seconds(resolved_since))
        sql = f"SELECT {_INCIDENT_COLUMNS} FROM incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._read(sql + " ORDER BY opened_at DESC, id DESC", params)
        return [_value(Incident, row, _INCIDENT_FIELDS) for row in rows]

    def open_incidents(self, sites: Sequence[str]) -> dict[str, list[Incident]]:
        found: dict[str, list[Incident]] = {site: [] for site in sites}
        with self._connection() as conn:
            for chunk in _chunks(list(found), _SITES_PER_QUERY):
                rows = conn.execute(
                    f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE site IN ({_marks(len(chunk))}) "
                    "AND status = 'open' ORDER BY opened_at DESC, id DESC",
                    chunk,
                )
                for row in rows:
                    incident = _value(Incident, row, _INCIDENT_FIELDS)
                    found[incident.site].append(incident)
        return found

    def save_alert(self, alert: Alert) -> None:
        row = _row(alert, _ALERT_FIELDS)
        self._write(lambda conn: conn.execute(_SAVE_ALERT, row))

    def alerts(self, site: str | None = None) -> list[Alert]:
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts"
        params: tuple[str, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            params = (site,)
        rows = self._read(sql + " ORDER BY created_at DESC, incident_id DESC", params)
        return [_value(Alert, row, _ALERT_FIELDS) for row in rows]

    def note_evaluations(self, sites: Sequence[str], at: float) -> None:
        if sites:
            rows = [(site, at) for site in sites]
            self._write(
                lambda conn: conn.executemany("INSERT OR REPLACE INTO evaluations (site, at) VALUES (?, ?)", rows)
            )

    def last_evaluations(self) -> dict[str, datetime]:
        return {site: timestamp(at) for site, at in self._read("SELECT site, at FROM evaluations")}

    def acknowledge_alert(self, incident_id: str, at: datetime) -> Alert | None:
        def work(conn: sqlite3.Connection) -> Alert | None:
            conn.execute(
                "UPDATE alerts SET acknowledged_at = ? WHERE incident_id = ? AND acknowledged_at IS NULL",
                (_seconds(at), incident_id),
            )
            row = conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE incident_id = ?", (incident_id,)).fetchone()
            return None if row is None else _value(Alert, row, _ALERT_FIELDS)

        return self._write(work)

    def mark_alert_notified(
        self, incident_id: str, *, expected: datetime | None, at: datetime, reminder: bool = False
    ) -> Alert | None:
        """One UPDATE whose WHERE is the comparison: of two processes, the second finds the
        time the first wrote, and changes nothing."""
        args = (_seconds(at), int(reminder), incident_id, _seconds(expected))

        def work(conn: sqlite3.Connection) -> Alert | None:
            row = conn.execute(_MARK_NOTIFIED, args).fetchone()
            return None if row is None else _value(Alert, row, _ALERT_FIELDS)

        return self._write(work)

    # Maintenance windows and silences: a few rows per site, read in the order they start.

    def save_maintenance(self, window: MaintenanceWindow) -> None:
        self._save_planned("maintenance", _MAINTENANCE_FIELDS, window)

    def maintenance_windows(self, site: str | None = None) -> list[MaintenanceWindow]:
        return self._planned("maintenance", _MAINTENANCE_FIELDS, MaintenanceWindow, site)

    def end_maintenance(self, window_id: str, at: datetime) -> MaintenanceWindow | None:
        return self._end_planned("maintenance", _MAINTENANCE_FIELDS, MaintenanceWindow, window_id, at)

    def save_silence(self, silence: Silence) -> None:
        self._save_planned("silences", _SILENCE_FIELDS, silence)

    def silences(self, site: str | None = None) -> list[Silence]:
        return self._planned("silences", _SILENCE_FIELDS, Silence, site)

    def end_silence(self, silence_id: str, at: datetime) -> Silence | None:
        return self._end_planned("silences", _SILENCE_FIELDS, Silence, silence_id, at)

    def _save_planned(self, table: str, fields: _Fields, value: MaintenanceWindow | Silence) -> None:
        row = _row(value, fields)
        columns = ", ".join(column for column, _, _ in fields)
        sql = f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({_marks(len(fields))})"
        self._write(lambda conn: conn.execute(sql, row))

    def _planned(self, table: str, fields: _Fields, kind: type[P], site: str | None) -> list[P]:
        sql = f"SELECT {', '.join(column for column, _, _ in fields)} FROM {table}"
        params: tuple[str, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            params = (site,)
        return [_value(kind, row, fields) for row in self._read(sql + " ORDER BY starts_at, id", params)]

    def _end_planned(self, table: str, fields: _Fields, kind: type[P], planned_id: str, at: datetime) -> P | None:
        """In one transaction, so that an end never undoes a change saved meanwhile (the
        base class reads, then saves)."""
        seconds = _seconds(at)
        columns = ", ".join(column for column, _, _ in fields)

        def work(conn: sqlite3.Connection) -> P | None:
            conn.execute(
                f"UPDATE {table} SET ends_at = max(?, starts_at) WHERE id = ? AND ends_at > ?",
                (seconds, planned_id, seconds),
            )
            row = conn.execute(f"SELECT {columns} FROM {table} WHERE id = ?", (planned_id,)).fetchone()
            return None if row is None else _value(kind, row, fields)

        return self._write(work)

    # Anonymous visitors.

    def visitor_key(self, day: int) -> bytes:
        def work(conn: sqlite3.Connection) -> bytes:
            conn.execute("INSERT OR IGNORE INTO visitor_keys (day, key) VALUES (?, ?)", (day, secrets.token_bytes(32)))
            conn.execute("DELETE FROM visitor_keys WHERE day < ?", (day - 1,))
            return bytes(conn.execute("SELECT key FROM visitor_keys WHERE day = ?", (day,)).fetchone()[0])

        return self._write(work)

    # Admin sessions.

    def session_generation(self, name: str, *, bump: bool = False) -> int:
        if bump:

            def work(conn: sqlite3.Connection) -> int:
                conn.execute(
                    "INSERT INTO session_generations (name, generation) VALUES (?, 1) "
                    "ON CONFLICT (name) DO UPDATE SET generation = generation + 1",
                    (name,),
                )
                return int(
                    conn.execute("SELECT generation FROM session_generations WHERE name = ?", (name,)).fetchone()[0]
                )

            return self._write(work)
        rows = self._read("SELECT generation FROM session_generations WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    # Leases and trimming.

    def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> int:
        return self.acquire_leases([name], owner, ttl, now)[0]

    def acquire_leases(self, names: Sequence[str], owner: str, ttl: float, now: float) -> list[int]:
        def work(conn: sqlite3.Connection) -> list[int]:
            taken = []
            for name in names:
                row = conn.execute(_ACQUIRE, (name, owner, now + ttl, now)).fetchone()
                taken.append(0 if row is None else int(row[0]))
            return taken

        return self._write(work) if names else []

    def release_lease(self, name: str, owner: str) -> None:
        # The row stays, expired, with its token: the next holder's must be greater.
        self._write(
            lambda conn: conn.execute(
                "UPDATE leases SET owner = '', expires = 0 WHERE name = ? AND owner = ?", (name, owner)
            )
        )

    def trim(
        self,
        *,
        buckets_before: float,
        hourly_before: float,
        resolved_before: datetime,
        five_minute_before: float | None = None,
    ) -> None:
        resolved = _seconds(resolved_before)
        fine = buckets_before if five_minute_before is None else five_minute_before

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM buckets WHERE start < ?", (buckets_before,))
            conn.execute("DELETE FROM hourly WHERE start < ?", (hourly_before,))
            conn.execute("DELETE FROM five_minute WHERE start < ?", (fine,))
            conn.execute(
                "DELETE FROM alerts WHERE incident_id IN (SELECT id FROM incidents WHERE resolved_at < ?)",
                (resolved,),
            )
            conn.execute("DELETE FROM incidents WHERE resolved_at < ?", (resolved,))
            conn.execute("DELETE FROM maintenance WHERE ends_at < ?", (resolved,))
            conn.execute("DELETE FROM silences WHERE ends_at < ?", (resolved,))
            # Leases long expired belong to sites nobody evaluates any more.
            conn.execute("DELETE FROM leases WHERE expires < ?", (buckets_before,))

        self._write(work)


# Fork safety: close idle connections before a fork (so none is inherited in the normal
# case), and make a child forget whatever was still open at that moment.

_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
#: Connections inherited through fork(): kept referenced so they are never closed (closing
#: one could release the locks of the child's own connections to the same file).
_ORPHANED: list[sqlite3.Connection] = []


def _before_fork() -> None:
    for store in list(_STORES):
        with contextlib.suppress(Exception):
            store._close_idle()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _path_of(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if scheme != "sqlite" or not sep:
        raise ConfigError(
            f"not an SQLite store URL: {url!r}; use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    if "?" in rest or "#" in rest:
        raise ConfigError(f"SQLite store URL {url!r} takes no query or fragment: use sqlite:///path/to/file.db")
    if rest == "":
        path = DEFAULT_FILE
    else:
        host, slash, path = rest.partition("/")
        if host or not slash:
            raise ConfigError(
                f"SQLite store URL {url!r} names a host {host!r}: write three slashes before a relative path "
                f"(sqlite:///data/health.db) and four before an absolute one (sqlite:////var/lib/health.db)"
            )
        path = unquote(path)
        if not path or path.endswith("/"):
            raise ConfigError(f"SQLite store URL {url!r} names no file: use sqlite:///path/to/file.db")
        if path == ":memory:" or path.startswith("file:"):
            raise ConfigError(
                f"SQLite store URL {url!r} is not a file path; for a store that is not kept, use memory://"
            )
    return os.path.abspath(os.path.expanduser(path))


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _is_busy(exc: BaseException | None) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _store_error(path: str, exc: sqlite3.Error) -> StoreError:
    """``exc`` as a :class:`StoreError` that says what to do about it."""
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and any(
        sign in text for sign in ("not a database", "malformed", "corrupt")
    ):
        advice = (
            f"the file is damaged: stop the app, move it aside with its -wal and -shm files "
            f"(mv {path} {path}.damaged) and start again to get a new, empty store, "
            f"or point NEXTMONTH_HEALTH_STORE elsewhere"
        )
    elif _is_busy(exc):
        advice = "another process kept it locked; if this lasts, look for a process stuck holding the file"
    elif any(sign in text for sign in ("readonly", "read-only", "disk I/O", "full", "unable to open")):
        advice = "check that its disk has room and that this process may write the file and its directory"
    else:
        advice = "check that it is a nextmonth-health database on a local, writable disk"
    return StoreError(f"the SQLite store {path} failed ({type(exc).__name__}: {text}): {advice}")


@contextlib.contextmanager
def _directory_lock(directory: str) -> Iterator[None]:
    """An exclusive lock on a directory between the processes of this host (none without ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _add(conn: sqlite3.Connection, table: str, deltas: Mapping[BucketKey, Bucket | _Sums]) -> None:
    """Add bucket deltas to the rows of ``table``, inside the caller's write transaction.

    Never mutates the deltas: if the transaction rolls back and is retried, they must still
    be exactly what the caller handed over. Deltas without users (roll-ups) leave the
    stored users as they are.
    """
    spans: dict[tuple[str, str], list[int]] = {}
    for site, signal, _, start in deltas:
        span = spans.get((site, signal))
        if span is None:
            spans[(site, signal)] = [start, start]
        elif start < span[0]:
            span[0] = start
        elif start > span[1]:
            span[1] = start
    # Series whose deltas span the same range (in a flush, nearly all of them) share one
    # query per batch of sites: a probe of the primary key per (site, signal).
    groups: dict[tuple[int, int], tuple[dict[str, None], dict[str, None]]] = {}
    for (site, signal), (low, high) in spans.items():
        sites, signals = groups.get((low, high)) or groups.setdefault((low, high), ({}, {}))
        sites[site] = signals[signal] = None
    rows: list[tuple[Any, ...]] = []
    merged: set[BucketKey] = set()
    for (low, high), (sites, signals) in groups.items():
        for chunk in _chunks(list(sites), _SITES_PER_QUERY):
            select = (
                f"SELECT site, signal, {_BUCKET_COLUMNS} FROM {table} WHERE site IN ({_marks(len(chunk))}) "
                f"AND signal IN ({_marks(len(signals))}) AND start BETWEEN ? AND ?"
            )
            stored = conn.execute(select, (*chunk, *signals, low, high))
            for site, signal, key, start, total, bad, hist, users, bad_users in stored:
                delta = deltas.get((site, signal, key, start))
                if delta is None:
                    continue
                merged.add((site, signal, key, start))
                if delta.hist:
                    hist = _add_hist(hist, delta.hist)
                if delta.users is not None:
                    users = _union(users, delta.users)
                    bad_users = _union(bad_users, delta.bad_users)
                total += delta.total
                bad += delta.bad
                rows.append((site, signal, start, key, total, bad, hist, users, bad_users))
    for bkey, delta in deltas.items():
        if bkey in merged:
            continue
        site, signal, key, start = bkey
        if delta.users is None:
            users = bad_users = None
        else:
            users, bad_users = _pack_users(delta.users), _pack_users(delta.bad_users)
        hist = _pack_hist(delta.hist)
        rows.append((site, signal, start, key, delta.total, delta.bad, hist, users, bad_users))
    conn.executemany(
        f"INSERT OR REPLACE INTO {table} (site, signal, start, key, total, bad, hist, users, bad_users) "
        f"VALUES ({_marks(9)})",
        rows,
    )


class _Sums:
    """A roll-up delta as a write sums it: counts and a histogram, no users."""

    __slots__ = ("bad", "hist", "total")

    users: None = None
    bad_users: None = None

    def __init__(self, bucket: Bucket) -> None:
        self.total = bucket.total
        self.bad = bucket.bad
        self.hist: dict[int, int] = dict(bucket.hist)

    def add(self, bucket: Bucket) -> None:
        self.total += bucket.total
        self.bad += bucket.bad
        hist_add(self.hist, bucket.hist)  # type: ignore[arg-type]


class _StoredBucket(StoredBucket):
    __slots__ = ()

    @staticmethod
    def decode_hist(blob: Any) -> Counter[int]:
        return _unpack_hist(blob)

    @staticmethod
    def decode_users(blob: Any) -> DistinctCounter:
        return DistinctCounter.from_bytes(blob) if blob else DistinctCounter()


def _bucket(site: str, signal: str, row: tuple[Any, ...]) -> Bucket:
    key, start, total, bad, hist, users, bad_users = row
    return _StoredBucket.of(site, signal, key, start, total, bad, (hist, users, bad_users))


def _pack_hist(hist: Mapping[int, int]) -> bytes | None:
    """Histogram slots as little-endian int64 (slot, count) pairs; None when empty."""
    if not hist:
        return None
    packed = array("q", itertools.chain.from_iterable(hist.items()))
    if not _LITTLE_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _unpack_hist(blob: bytes | None) -> Counter[int]:
    hist: Counter[int] = Counter()
    if blob:
        packed = array("q")
        packed.frombytes(blob)
        if not _LITTLE_ENDIAN:
            packed.byteswap()
        dict.update(hist, zip(packed[::2], packed[1::2], strict=True))
    return hist


def _add_hist(blob: bytes | None, delta: Mapping[int, int]) -> bytes | None:
    """A stored histogram plus a delta's, packed again: plain dict arithmetic, without the
    :class:`Counter` reading builds."""
    if not blob:
        return _pack_hist(delta)
    packed = array("q")
    packed.frombytes(blob)
    if not _LITTLE_ENDIAN:
        packed.byteswap()
    hist = dict(zip(packed[::2], packed[1::2], strict=True))
    get = hist.get
    for slot, n in delta.items():
        hist[slot] = get(slot, 0) + n
    return _pack_hist(hist)


def _pack_users(users: DistinctCounter) -> bytes | None:
    if users.is_exact:
        n = len(users)
        if not n:
            return None
        if n > EXACT_LIMIT:  # a recorder's unbounded delta: store the bounded form
            users = users.copy().compact()
    return users.to_bytes()


def _union(stored: bytes | None, delta: DistinctCounter) -> bytes | None:
    if delta.is_exact and not len(delta):
        return stored
    if stored is None:
        return _pack_users(delta)
    users = DistinctCounter.from_bytes(stored)
    before = len(users) if users.is_exact else -1
    users.merge(delta)
    if users.is_exact and len(users) == before:
        return stored  # nobody new: the common case for a roll-up, and encoding is the costly part
    return users.to_bytes()


def _seconds(moment: datetime | None) -> float | None:
    """A datetime as float Unix seconds; exact to the microsecond for this century."""
    return None if moment is None else moment.timestamp()


def _row(value: Incident | Alert | MaintenanceWindow | Silence, fields: _Fields) -> tuple[Any, ...]:
    """A value as its table's row: the codec's shape (times as Unix seconds, which the
    queries compare), lists of ids as JSON text."""
    data = to_dict(value, epoch=True)
    return tuple(json.dumps(data[attribute]) if kind == _IDS else data[attribute] for _, attribute, kind in fields)


def _value(cls: type[V], row: Sequence[Any], fields: _Fields) -> V:
    """The value a row of its table holds, read back through the codec."""
    data = {
        attribute: json.loads(item) if kind == _IDS and item is not None else item
        for item, (_, attribute, kind) in zip(row, fields, strict=True)
    }
    return from_dict(cls, data)
