"""``sqlite:///path`` on real files: the store contract, durability, many processes, bounded size.

Worker processes are real interpreters running ``tests/sqlite_worker.py``; the tests wait
on them (with timeouts) and never sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from nextmonth_health import Monitor
from nextmonth_health.errors import ConfigError, NextMonthHealthError, StoreError
from nextmonth_health.signals import LOGIN, REQUEST, Bucket
from nextmonth_health.sketch import user_hash
from nextmonth_health.store import SQLiteStore, Store, default_store_url, open_store
from nextmonth_health.store.sqlite import (
    _ALERT_FIELDS,
    _INCIDENT_FIELDS,
    _MAINTENANCE_FIELDS,
    _SILENCE_FIELDS,
    DEFAULT_FILE,
    MIGRATIONS,
    SCHEMA_VERSION,
)
from nextmonth_health.testing import START, FakeClock, capture_logs
from nextmonth_health.values import (
    Alert,
    Incident,
    IncidentStatus,
    MaintenanceWindow,
    Silence,
    timestamp,
)

from . import sqlite_worker as worker
from .store_contract import T0, StoreContract, alert, bucket, incident

pytestmark = pytest.mark.anyio

WORKER = Path(__file__).with_name("sqlite_worker.py")
TIMEOUT = 60.0


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "health.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(url(db))
    yield s
    s.close()


def pragma(path: Path, name: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def totals(store: Store, site: str, signal: str, *, hourly: bool = False) -> Bucket:
    read = store.read_hourly if hourly else store.read
    merged = Bucket(site, signal, "*", 0)
    for b in read(site, signal, T0 - 86_400, T0 + 86_400):
        merged.merge(b)
    return merged


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:  # type: ignore[override]
        s = SQLiteStore(url(tmp_path / "contract.db"))
        yield s
        s.close()


# Opening: URLs, the default file, failing fast.


def test_urls_name_relative_absolute_and_default_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SQLiteStore("sqlite://") as default:
        assert default.path == str(tmp_path / DEFAULT_FILE)
    (tmp_path / "data").mkdir()
    with SQLiteStore("sqlite:///data/rel.db") as relative:
        assert relative.path == str(tmp_path / "data" / "rel.db")
    with SQLiteStore(f"sqlite:///{tmp_path}/abs.db") as absolute:
        assert absolute.path == str(tmp_path / "abs.db") and absolute.url == f"sqlite:///{tmp_path}/abs.db"
        assert repr(absolute) == f"SQLiteStore('sqlite:///{tmp_path}/abs.db')"
        assert absolute.blocking
    monkeypatch.chdir("/")
    assert relative.path == str(tmp_path / "data" / "rel.db"), "resolved once, at construction"


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///", "names no file"),
        ("sqlite:///data/", "names no file"),
        ("sqlite:///x.db?mode=ro", "no query"),
        ("sqlite:///:memory:", "memory://"),
    ],
)
def test_malformed_urls_fail_fast_saying_what_to_write(bad: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=hint):
        SQLiteStore(bad)


def test_an_unusable_place_fails_fast_saying_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SQLiteStore(url(tmp_path / "missing" / "x.db"))
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match="does not exist"):
        SQLiteStore(url(tmp_path / "file" / "x.db"))
    (tmp_path / "junk.db").write_bytes(b"this is not an SQLite database, just bytes" * 100)
    with pytest.raises(ConfigError, match="cannot open the SQLite store .*junk.db"):
        SQLiteStore(url(tmp_path / "junk.db"))


def test_open_store_knows_sqlite_and_the_environment_default(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(url(db)) as s:
        assert isinstance(s, SQLiteStore)
    monkeypatch.setenv("NEXTMONTH_HEALTH_STORE", url(db))
    assert default_store_url() == url(db)
    with open_store(None) as s:
        assert isinstance(s, SQLiteStore) and s.path == str(db)
    monkeypatch.delenv("NEXTMONTH_HEALTH_STORE")
    assert default_store_url() == "sqlite:///nextmonth-health.db"


# Persistence and schema.


def test_everything_survives_close_and_reopen(db: Path) -> None:
    with SQLiteStore(url(db)) as s:
        s.write([bucket(), bucket(signal=LOGIN, key="")])
        s.save_incident(incident("i1"))
        s.save_alert(alert("i1", acknowledged_at=timestamp(START + 5)))
        assert s.acquire_lease("leader:s", "a", 30, START)
    with SQLiteStore(url(db)) as s:
        [got] = s.read("s", REQUEST, T0, T0 + 10)
        assert (got.total, got.bad, dict(got.hist), len(got.users), len(got.bad_users)) == (10, 2, {1: 3, 40: 7}, 2, 1)
        assert [b.total for b in s.read_hourly("s", LOGIN, T0, T0 + 3600)] == [10]
        assert s.incidents() == [incident("i1")]
        assert s.alerts() == [alert("i1", acknowledged_at=timestamp(START + 5))]
        assert not s.acquire_lease("leader:s", "b", 30, START + 1)
        assert s.sites() == {"s"}


def test_a_new_file_gets_the_current_schema_in_wal_mode(store: SQLiteStore, db: Path) -> None:
    assert pragma(db, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)
    assert pragma(db, "journal_mode") == "wal"
    assert pragma(db, "integrity_check") == "ok"


def test_an_older_schema_is_migrated_in_place(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO incidents (id, site, check_name, area, key, severity, status, affected_users, opened_at,"
            " summary, updated_at) VALUES ('old', 's', 'api_errors', 'bookings', '/bookings', 'degraded', 'open',"
            " 3, ?, 'API Errors on /bookings route', ?)",
            (START, START),
        )
        conn.execute(
            "INSERT INTO alerts (incident_id, site, message, created_at, updated_at, check_name, key, area,"
            " affected_users, incident_ids) VALUES ('old', 's', 'old news', ?, ?, 'api_errors', '/bookings',"
            " 'bookings', 3, '[\"old\"]')",
            (START, START),
        )
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    with SQLiteStore(url(db)) as s:
        [old] = s.incidents("s", open_only=True)
        assert (old.id, old.affected_now, old.maintenance_id) == ("old", 0, None)
        [told] = s.alerts()
        assert (told.incident_ids, told.notified_at, told.reminders) == (("old",), None, 0)
        assert s.mark_alert_notified("old", expected=None, at=timestamp(START + 1)) is not None
        assert s.maintenance_windows() == [] and s.silences() == []
    assert pragma(db, "user_version") == SCHEMA_VERSION
    with contextlib.closing(sqlite3.connect(db)) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"incidents_by_site_status", "incidents_by_resolved_at", "alerts_by_site"} <= indexes
    assert {"maintenance_by_site", "silences_by_site"} <= indexes


def test_a_file_from_a_newer_version_is_refused(db: Path) -> None:
    SQLiteStore(url(db)).close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}, newer .* upgrade nextmonth-health"):
        SQLiteStore(url(db))


def test_every_field_of_incidents_alerts_windows_and_silences_has_a_column() -> None:
    assert [name for _, name, _ in _INCIDENT_FIELDS] == [f.name for f in attrs.fields(Incident)]
    assert [name for _, name, _ in _ALERT_FIELDS] == [f.name for f in attrs.fields(Alert)]
    assert [name for _, name, _ in _MAINTENANCE_FIELDS] == [f.name for f in attrs.fields(MaintenanceWindow)]
    assert [name for _, name, _ in _SILENCE_FIELDS] == [f.name for f in attrs.fields(Silence)]


def test_shared_alerts_round_trip_and_keep_their_first_creation(store: SQLiteStore) -> None:
    joined = incident("i2", alert_id="i1", severity="critical", escalated_at=timestamp(START + 60))
    store.save_incident(joined)
    assert store.incidents() == [joined]
    store.save_alert(alert("i1", incident_ids=("i1", "i2")))
    store.save_alert(alert("i1", at=START + 60, incident_ids=("i1", "i2"), resolved_at=timestamp(START + 90)))
    [stored] = store.alerts()
    assert stored.incident_ids == ("i1", "i2")
    assert (stored.created_at, stored.updated_at) == (timestamp(START), timestamp(START + 60))
    assert stored.resolved_at == timestamp(START + 90)


def test_a_large_delta_is_stored_as_a_bounded_sketch(store: SQLiteStore, db: Path) -> None:
    crowd = [f"user-{i}" for i in range(5000)]
    store.write([bucket(users=crowd, bad_users=crowd[:100])])
    with contextlib.closing(sqlite3.connect(db)) as conn:
        sizes = conn.execute("SELECT length(users), length(bad_users) FROM buckets").fetchone()
    assert sizes == (4097, 801), "a 4 KiB HyperLogLog, and the bad users still exact"
    [got] = store.read("s", REQUEST, T0, T0 + 10)
    assert abs(len(got.users) - 5000) <= 150 and len(got.bad_users) == 100


def test_a_closed_store_says_so(db: Path) -> None:
    s = SQLiteStore(url(db))
    s.close()
    with pytest.raises(RuntimeError, match="is closed"):
        s.incidents()


# Monitors on one file.


async def test_a_monitor_keeps_its_incident_and_alert_for_the_next_one(
    db: Path, internal_errors: Callable[[Monitor], object]
) -> None:
    clock = FakeClock()
    first = Monitor("acme", store=url(db), clock=clock, load_entrypoints=False)
    internal_errors(first)
    for user in range(30):
        first.record_request("/media-upload", 503, 0.2, user=f"u-{user}")
    clock.advance(15)
    evaluation = await first.evaluate()
    [opened] = evaluation.opened
    assert (opened.incident.check, opened.incident.key, opened.incident.severity) == (
        "api_errors",
        "/media-upload",
        "critical",
    )
    assert opened.incident.affected_users == 30 and len(evaluation.alerts) == 1
    first.store.close()

    second = Monitor("acme", store=url(db), clock=clock, load_entrypoints=False)
    internal_errors(second)
    try:
        assert second.incidents() == [opened.incident]
        [stored] = second.alerts()
        assert stored == evaluation.alerts[0] and "30 users" in stored.message
        [notice] = second.notices("uploads")
        assert notice.area == "uploads" and second.notices("bookings") == []
        assert second.status().store == url(db)
    finally:
        second.store.close()


def test_a_locked_file_delays_the_flush_never_the_request_path(db: Path) -> None:
    clock = FakeClock()
    monitor = Monitor("acme", store=SQLiteStore(url(db), busy_timeout=0.05), clock=clock, load_entrypoints=False)
    monitor.store.save_incident(incident("i1", site="acme"))
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("DELETE FROM leases")
        for user in range(20):
            monitor.record_request("/bookings", 500, 0.1, user=f"u-{user}")
        assert monitor.flush() == 20
        assert monitor.status().internal_errors == {"recorder.flush": 1}
        assert [i.id for i in monitor.incidents()] == ["i1"], "readers never wait for a writer"
        other.execute("COMMIT")
    monitor.record_request("/bookings", 200, 0.1, user="u-0")
    monitor.flush()
    got = totals(monitor.store, "acme", REQUEST)
    assert (got.total, got.bad, len(got.users), len(got.bad_users)) == (21, 20, 20, 20)
    assert monitor.status().drops == {}
    monitor.store.close()


# The file going away, or going bad, under a running monitor.


def outage(monitor: Monitor, people: int = 12) -> None:
    for n in range(people):
        monitor.record_request("/media-upload", 503, 0.2, user=f"u-{n}")
        monitor.record_upload(ok=False, user=f"u-{n}")


def test_a_deleted_file_is_said_counted_and_recreated_never_written_blind(db: Path) -> None:
    monitor = Monitor("acme", store=url(db), clock=FakeClock(), load_entrypoints=False)
    monitor.record_request("/portal", 200, 0.1, user="before")
    assert monitor.flush() == 1
    for leftover in (db, db.with_name("health.db-wal"), db.with_name("health.db-shm")):
        leftover.unlink(missing_ok=True)  # as `rm health.db*` would, with the monitor's connections open
    with capture_logs() as logs:
        outage(monitor, 3)
        assert monitor.flush() == 6  # folded, but the write that noticed raised: kept for the next flush
    assert db.exists(), "a new file in its place"
    assert monitor.status().internal_errors == {"recorder.flush": 1}
    assert monitor.store.file_changes == 1
    [said] = [e for e in logs if e["event"] == "nextmonth_health.sqlite_file_changed"]
    assert (said["log_level"], said["reason"]) == ("error", "was deleted")
    monitor.flush()  # the kept batch goes to the new file
    with SQLiteStore(url(db)) as other:  # what another process sees on disk
        got = totals(other, "acme", REQUEST)
        assert (got.total, got.bad) == (3, 3), "the events after the deletion are in the new file, once"
    assert monitor.status().drops == {}
    monitor.store.close()


def test_a_replaced_file_is_adopted(db: Path, tmp_path: Path) -> None:
    monitor = Monitor("acme", store=url(db), clock=FakeClock(), load_entrypoints=False)
    monitor.record_request("/portal", 200, 0.1, user="u")
    monitor.flush()
    restored = tmp_path / "restored.db"
    with SQLiteStore(url(restored)) as backup:
        backup.save_incident(incident("from-the-backup", site="acme"))
    for leftover in (db.with_name("health.db-wal"), db.with_name("health.db-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(restored, db)  # an operator restores a backup in place
    monitor.record_request("/portal", 200, 0.1, user="u")
    monitor.flush()
    assert monitor.store.file_changes == 1 and monitor.status().internal_errors == {"recorder.flush": 1}
    monitor.flush()
    assert [i.id for i in monitor.incidents()] == ["from-the-backup"]
    assert totals(monitor.store, "acme", REQUEST).total == 1
    monitor.store.close()


def test_a_deleted_file_that_cannot_be_recreated_is_refused_not_written_blind(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "health.db"
    monitor = Monitor("acme", store=url(db), clock=FakeClock(), load_entrypoints=False)
    shutil.rmtree(folder)  # the whole directory went away
    outage(monitor, 2)
    monitor.flush()
    monitor.flush()
    assert monitor.status().internal_errors == {"recorder.flush": 2}
    assert monitor.status().unsent > 0, "kept for when the store comes back, drops counted past the bound"
    folder.mkdir()
    monitor.flush()  # notices the directory is back: a new file, and the write is kept once more
    monitor.flush()
    assert monitor.status().internal_errors == {"recorder.flush": 3} and monitor.store.file_changes == 1
    with SQLiteStore(url(db)) as other:
        assert totals(other, "acme", REQUEST).total == 2
    monitor.store.close()


def test_a_damaged_file_raises_a_store_error_saying_what_to_do_and_notices_do_not_pretend(db: Path) -> None:
    clock = FakeClock()
    monitor = Monitor("acme", store=url(db), clock=clock, load_entrypoints=False)
    outage(monitor)
    anyio.run(monitor.evaluate)
    [shown] = monitor.notices("uploads")
    for name in ("health.db", "health.db-wal", "health.db-shm"):
        damaged = db.with_name(name)
        if damaged.exists():
            damaged.write_bytes(b"\x17 not a database any more " * (damaged.stat().st_size // 27 + 1))
    clock.advance(5)  # past the notices' cache: they must read the store again
    with pytest.raises(StoreError) as raised:
        monitor.incidents()
    assert isinstance(raised.value, NextMonthHealthError) and not isinstance(raised.value, sqlite3.Error)
    assert str(db) in str(raised.value) and "move it aside" in str(raised.value)
    for read in (monitor.alerts, monitor.store.sites, lambda: monitor.store.read("acme", REQUEST, 0, 2**40)):
        with pytest.raises(StoreError):
            read()
    assert monitor.notices("uploads") == [shown], "the last notice known, not a calm nobody knows"
    assert monitor.notices("bookings") == []
    assert monitor.status().internal_errors["notices"] == 2
    with pytest.raises(ConfigError, match="not a database"):
        SQLiteStore(url(db))


# Many processes.


class Worker:
    """A ``sqlite_worker.py`` subprocess speaking its line protocol, with timeouts."""

    count = 0

    def __init__(self, mode: str, db: Path, *args: str) -> None:
        Worker.count += 1
        self.stderr = db.with_name(f"worker-{Worker.count}.log")  # a file: a full pipe would stall it
        with self.stderr.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER), mode, str(db), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self) -> str:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"worker silent for {TIMEOUT}s") from None
        if line is None:
            self.proc.wait(TIMEOUT)
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.stderr.read_text()}")
        return line

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, object]:
        outcome = json.loads(self.expect())
        assert self.proc.wait(TIMEOUT) == 0
        return outcome  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(TIMEOUT) == -signal.SIGKILL
        self.close()

    def close(self) -> None:
        """Close our end of stdin (the reader thread closes stdout when it ends)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


def start_together(workers: list[Worker]) -> None:
    for w in workers:
        assert w.expect() == "ready"
    for w in workers:
        w.go()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait(TIMEOUT)
        w.close()


def test_four_processes_flushing_into_one_file_add_up_exactly(db: Path, workers: list[Worker]) -> None:
    workers += [Worker("load", db) for _ in range(4)]
    start_together(workers)
    outcomes = [w.result() for w in workers]
    events = range(worker.LOAD_EVENTS)
    logins = [i for i in events if i % 5 == 0]
    for outcome in outcomes:
        assert outcome == {"internal_errors": {}, "drops": {}, "flushed": len(events) + len(logins)}
    assert pragma(db, "integrity_check") == "ok"
    with SQLiteStore(url(db)) as s:
        for hourly in (False, True):
            requests = totals(s, "shop", REQUEST, hourly=hourly)
            assert (requests.total, requests.bad) == (4 * len(events), 4 * sum(1 for i in events if i % 10 == 0))
            assert len(requests.users) == (0 if hourly else worker.LOAD_USERS)
            assert requests.samples == 4 * len(events)
            login = totals(s, "shop", LOGIN, hourly=hourly)
            assert (login.total, login.bad) == (4 * len(logins), 4 * sum(1 for i in logins if i % 15 == 0))


def test_four_processes_evaluating_one_spike_give_one_incident_and_one_alert(db: Path, workers: list[Worker]) -> None:
    workers += [Worker("evaluate", db) for _ in range(4)]
    start_together(workers)
    outcomes = [w.result() for w in workers]
    assert all(o["internal_errors"] == {} and o["drops"] == {} for o in outcomes), outcomes
    assert sorted(len(o["led"]) for o in outcomes) == [0, 0, 0, 1], "one leader for the site"  # type: ignore[arg-type]
    opened = [i for o in outcomes for i in o["opened"]]  # type: ignore[attr-defined]
    assert len(opened) == 1 and sum(o["alerts"] for o in outcomes) == 1  # type: ignore[misc]
    with SQLiteStore(url(db)) as s:
        assert [i.id for i in s.incidents()] == opened
        assert [a.incident_id for a in s.alerts()] == opened


def test_windows_and_silences_saved_by_one_process_are_seen_by_another(db: Path, workers: list[Worker]) -> None:
    with SQLiteStore(url(db)) as reader:  # opened, and read from, before the worker writes
        assert reader.maintenance_windows() == [] and reader.silences() == []
        workers.append(Worker("plan", db))
        start_together(workers)
        assert workers[0].result() == {"windows": [worker.WINDOW.id], "silences": [worker.SILENCE.id]}
        assert reader.maintenance_windows("shop") == [worker.WINDOW]
        assert reader.silences("shop") == [worker.SILENCE]


def test_of_four_processes_marking_one_alert_notified_one_wins(db: Path, workers: list[Worker]) -> None:
    with SQLiteStore(url(db)) as s:
        s.save_alert(alert("i1", site="shop"))
    workers += [Worker("notify", db, "i1") for _ in range(4)]
    start_together(workers)
    assert sorted(w.result()["won"] for w in workers) == [False, False, False, True]  # type: ignore[type-var]
    with SQLiteStore(url(db)) as s:
        [told] = s.alerts()
        assert (told.notified_at, told.reminders) == (timestamp(START + 1), 0)


def test_sigkill_mid_flush_keeps_the_file_intact_and_every_committed_incident(db: Path, workers: list[Worker]) -> None:
    rounds, per_round = 3, 15
    reported: set[str] = set()
    for r in range(rounds):
        w = Worker("crash", db, str(r * 1000))
        workers.append(w)
        start_together([w])
        for n in range(r * 1000, r * 1000 + per_round):
            assert w.expect() == f"committed {n}"
            reported.add(f"crash-{n}")
        w.kill()
    assert pragma(db, "integrity_check") == "ok"
    with SQLiteStore(url(db)) as s:
        stored = {i.id for i in s.incidents("crash")}
        assert reported <= stored
        got = totals(s, "crash", REQUEST)
        batches, partial = divmod(got.total, worker.CRASH_BATCH)
        assert partial == 0, "a batch is committed whole or not at all"
        assert len(stored) <= batches <= len(stored) + rounds, "at most the batch in flight is lost"
        assert totals(s, "crash", REQUEST, hourly=True).total == got.total


def test_a_store_used_before_fork_works_in_parent_and_child(store: SQLiteStore, db: Path) -> None:
    store.write([bucket(total=1, bad=0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+ warns about fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            for _ in range(20):
                store.write([bucket(total=1, bad=0)])
            code = 0
        finally:
            os._exit(code)
    store.write([bucket(total=1, bad=0)])
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.write([bucket(total=1, bad=0)])
    assert totals(store, "s", REQUEST).total == 23
    assert pragma(db, "integrity_check") == "ok"


# Staying small.


def file_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def test_months_of_traffic_keep_the_file_bounded(store: SQLiteStore, db: Path) -> None:
    """Three days of 10 s buckets on 5 routes, trimmed as the runner trims, roll-ups kept a day.

    Past the retention horizons the row counts stop growing, and so does the file: SQLite
    reuses the pages that trims free, with no VACUUM.
    """
    history, trend_retention, resolved_retention = 7200, 86_400, 86_400.0
    keys = [f"/route-{k}" for k in range(5)]
    step, batch_seconds = 10, 3600
    crowds = []  # a few hundred users in all, a dozen of them in each bucket
    for c in range(40):
        crowd = Bucket("", "", "", 0)
        crowd.users.update(user_hash(f"user-{(c * 7 + j) % 300}") for j in range(12))
        crowd.bad_users.update(user_hash(f"user-{(c * 7 + j) % 300}") for j in range(c % 4))
        crowd.hist.update({c: 30, 100 + c % 5: 10})
        crowds.append(crowd)
    sizes: list[tuple[int, int]] = []
    t = T0
    for n in range(3 * 86_400 // batch_seconds):
        batch = []
        for i, start in enumerate(range(t, t + batch_seconds, step)):
            for k, key in enumerate(keys):
                b = Bucket("big", REQUEST, key, start)
                crowd = crowds[(i + k) % len(crowds)]
                b.total, b.bad, b.hist, b.users, b.bad_users = (
                    40,
                    len(crowd.bad_users),
                    crowd.hist,
                    crowd.users,
                    crowd.bad_users,
                )
                batch.append(b)
        store.write(batch)
        t += batch_seconds
        if n % 6 == 0:
            opened = t - 1200
            store.save_incident(
                incident(
                    f"i{n}", site="big", opened=opened, status=IncidentStatus.RESOLVED, resolved_at=timestamp(t - 300)
                )
            )
            store.save_alert(alert(f"i{n}", site="big", at=opened))
        store.trim(
            buckets_before=t - history,
            hourly_before=t - trend_retention,
            resolved_before=timestamp(t - resolved_retention),
        )
        if (n + 1) % 24 == 0:
            wal = db.with_name(db.name + "-wal")
            sizes.append((db.stat().st_size, wal.stat().st_size if wal.exists() else 0))
    with contextlib.closing(sqlite3.connect(db)) as conn:
        count = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("buckets", "hourly", "incidents", "alerts")
        }
    assert count["buckets"] == len(keys) * history // step, "two hours of raw buckets, no more"
    assert count["hourly"] == len(keys) * trend_retention // 3600, "a day of roll-ups, no more"
    assert count["incidents"] == count["alerts"] == 86_400 // (6 * batch_seconds)
    assert pragma(db, "integrity_check") == "ok"
    print(f"(database, WAL) bytes at the end of each day: {sizes}")
    assert sizes[2][0] <= sizes[1][0] * 1.05, "no growth once the retention horizons are reached"
    assert sum(sizes[-1]) < 4 * 1024 * 1024


def test_roll_ups_are_kept_thirty_days_and_no_longer(store: SQLiteStore) -> None:
    retention = 30 * 86_400
    keys = [f"/route-{k}" for k in range(5)]
    t = T0
    for _ in range(40):
        batch = [bucket(site="big", key=key, start=t + h * 3600) for h in range(24) for key in keys]
        store.write(batch)
        t += 86_400
        store.trim(buckets_before=t - 7200, hourly_before=t - retention, resolved_before=timestamp(t - 86_400))
    rollups = store.read_hourly("big", REQUEST, T0, t)
    assert len(rollups) == len(keys) * 30 * 24
    assert min(b.start for b in rollups) == t - retention
