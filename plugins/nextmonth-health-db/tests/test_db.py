"""nextmonth-health-db, installed: discovery, then real PostgreSQL and SQLite databases.

PostgreSQL is the machine's own (``conftest.pg_dsn``; missing, the tests fail). A
slowdown is a real ``pg_sleep`` whose length a test changes between passes, so the
probe's baseline is real too. Every async test runs on asyncio (psycopg's
``AsyncConnection``) and trio (psycopg on a worker thread).
"""

from __future__ import annotations

import importlib.metadata
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import nextmonth_health as nmh
import psycopg
import pytest
from nextmonth_health.plugin import REQUEST, SIGNALS
from nextmonth_health.testing import FakeClock, run_passes

import nextmonth_health_db
from nextmonth_health_db import APPLICATION_NAME, SIGNAL, DbCheck, Sample, judge, record_query, timed_query

pytestmark = pytest.mark.anyio

INTERVAL = 30.0


def db_settings(*probes: Any, **options: Any) -> dict[str, Any]:
    return {
        "probes": list(probes),
        "interval": INTERVAL,
        "timeout": 1.0,
        "slow_seconds": 0.1,
        "history": 3,
        "min_probes": 3,
        **options,
    }


def build(clock: FakeClock, *, entrypoints: bool = False, **settings: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme",
        store="memory://",
        clock=clock,
        plugins=() if entrypoints else [nextmonth_health_db],
        load_entrypoints=entrypoints,
        **settings,
    )


def db_check(monitor: nmh.Monitor) -> DbCheck:
    [check] = [c for c in monitor.checks if c.name == "db_slowdown"]
    assert isinstance(check, DbCheck)
    return check


def db_readings(evaluation: nmh.Evaluation) -> list[nmh.Reading]:
    return [r for r in evaluation.readings if r.check == "db_slowdown"]


def statuses(evaluations: list[nmh.Evaluation]) -> list[str]:
    return [r.status.value for e in evaluations for r in db_readings(e)]


# Discovery and settings.


@pytest.fixture
def only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", "db")
    monkeypatch.delenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", raising=False)


def test_the_distribution_declares_its_entry_point():
    [ep] = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.name == "db"]
    assert ep.value == "nextmonth_health_db"
    assert ep.dist is not None and ep.dist.name == "nextmonth-health-db"


@pytest.mark.usefixtures("only_this_plugin")
def test_an_installed_monitor_discovers_the_check(fake_clock: FakeClock, pg_dsn: str):
    monitor = build(fake_clock, entrypoints=True, plugin_settings={"db": db_settings(pg_dsn)})
    assert monitor.plugin_failures == ()
    assert monitor.plugin_manager.get_plugin("db") is nextmonth_health_db
    assert (db_check(monitor).interval, db_check(monitor).timeout) == (INTERVAL, 6.0)


@pytest.mark.usefixtures("only_this_plugin")
def test_with_no_settings_the_plugin_registers_nothing(fake_clock: FakeClock):
    monitor = build(fake_clock, entrypoints=True)
    assert "db_slowdown" not in [c.name for c in monitor.checks]
    assert monitor.signals == SIGNALS, "nor declares its signal"
    assert monitor.plugin_failures == ()


@pytest.mark.usefixtures("only_this_plugin")
def test_the_signal_is_declared_once_recorded_timings_are_configured(fake_clock: FakeClock, pg_dsn: str):
    assert build(fake_clock, entrypoints=True, plugin_settings={"db": db_settings(pg_dsn)}).signals == SIGNALS
    configured = build(fake_clock, entrypoints=True, plugin_settings={"db": {"recorded": True}})
    assert configured.signals == (*SIGNALS, SIGNAL) == (*SIGNALS, "db.query")
    on_one_site = build(fake_clock, entrypoints=True, sites={"tiny": {"plugin_settings": {"db": {"recorded": True}}}})
    assert on_one_site.signals[-1] == SIGNAL and on_one_site.plugin_failures == ()


@pytest.mark.usefixtures("only_this_plugin")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "configure 'probes'"),
        ({"probes": ["mysql://db/x"]}, "dsn must start with postgresql://"),
        ({"probes": ["sqlite:///:memory:"]}, "a SQLite probe needs a file"),
        ({"probes": ["sqlite:///a.db"], "slow_seconds": 9}, r"slow_seconds \(9.0\) must be below timeout"),
        ({"probes": ["sqlite:///a.db"], "treshold": 1}, "unknown option 'treshold'"),
        ({"probes": ["sqlite:///a.db", {"dsn": "sqlite:///b/a.db"}]}, "two probes share a name"),
        ({"probes": [{"dsn": "sqlite:///a.db", "qeury": "SELECT 2"}]}, "unknown option 'qeury'; did you mean 'query'"),
        ({"recorded": {"route": "/_db"}}, "'route' is gone: recorded timings are the plugin's own signal 'db.query'"),
        ({"recorded": {"min_samples": 0}}, "min_samples must be a whole number of at least 1"),
    ],
)
def test_bad_settings_are_reported_at_start_up(fake_clock: FakeClock, options: dict[str, Any], message: str):
    monitor = build(fake_clock, entrypoints=True, plugin_settings={"db": options})
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "db",
        "register_health_checks",
        "nextmonth-health-db",
    )
    assert failure.error.startswith("ConfigError: plugin_settings['db']") and re.search(message, failure.error)
    with pytest.raises(nmh.ConfigError, match=message):
        build(fake_clock, entrypoints=True, strict_plugins=True, plugin_settings={"db": options})


def test_per_site_settings_are_validated_with_the_sites_name(fake_clock: FakeClock):
    bad = {"recorded": {"min_samples": 0}}
    with pytest.raises(nmh.ConfigError, match=r"sites\['tiny'\]: plugin_settings\['db'\]\['recorded'\]"):
        build(fake_clock, strict_plugins=True, sites={"tiny": {"plugin_settings": {"db": bad}}})
    monitor = build(fake_clock, sites={"tiny": {"plugin_settings": {"db": {"recorded": True}}}})
    assert db_check(monitor).config_for("acme") is None and db_check(monitor).config_for("tiny") is not None


# PostgreSQL.


async def test_postgres_select_1_reads_ok(fake_clock, pg_dsn, internal_errors):
    monitor = build(fake_clock, plugin_settings={"db": db_settings(pg_dsn)})
    internal_errors(monitor)
    [evaluation] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    [reading] = db_readings(evaluation)
    assert (reading.key, reading.area, reading.status) == ("127.0.0.1/test", "portal", nmh.Health.OK)
    assert reading.subject == "Database query times on 127.0.0.1/test"
    assert reading.value is not None and reading.value < 0.05
    assert reading.threshold == 0.1  # no baseline yet: the floor
    assert dict(reading.detail) == {
        "source": "probe",
        "probes": 1,
        "failures": 0,
        "timeouts": 0,
        "last": "ok",
        "baseline_p95": None,
    }


async def test_a_postgres_slowdown_against_its_baseline_opens_then_resolves(
    fake_clock, pg_dsn, pg_delay, internal_errors
):
    query, set_delay = pg_delay
    settings = db_settings({"dsn": pg_dsn, "name": "primary", "query": query}, slow_seconds=0.08, baseline_factor=3.0)
    monitor = build(fake_clock, cooldown_seconds=60, plugin_settings={"db": settings})
    internal_errors(monitor)
    set_delay(0.05)  # a database that is always a little slow: 50 ms
    normal = (await run_passes(monitor, 9, tick=INTERVAL)).evaluations
    assert set(statuses(normal)) <= {"ok", "elevated"}  # "elevated" while the floor alone is the line
    assert not any(e.opened for e in normal)
    check = db_check(monitor)
    line = db_readings(normal[-1])[0].threshold
    assert line is not None and 0.14 <= line < 0.3  # 3 x its own p95, above the 80 ms floor
    set_delay(0.1)  # above the floor, but within what is normal here: not news
    busier = (await run_passes(monitor, 3, tick=INTERVAL)).evaluations
    assert set(statuses(busier)) <= {"ok", "elevated"} and not any(e.opened for e in busier)
    set_delay(0.5)  # a real slowdown
    slow = (await run_passes(monitor, 3, tick=INTERVAL)).evaluations
    assert statuses(slow) == ["elevated", "degraded", "degraded"]
    [opened] = slow[1].opened
    incident = opened.incident
    assert (incident.check, incident.key, incident.area) == ("db_slowdown", "primary", "portal")
    assert incident.summary == "Database query times on primary"
    assert incident.threshold == db_readings(slow[1])[0].threshold and line <= incident.threshold < 0.5
    assert [s.seconds >= 0.5 for s in check.history("acme", "primary")] == [True] * 3
    set_delay(0.0)
    recovering = (await run_passes(monitor, 6, tick=INTERVAL)).evaluations
    assert statuses(recovering)[:3] == ["degraded", "elevated", "ok"]
    assert [t.incident.id for e in recovering for t in e.resolved] == [incident.id]


async def test_a_hung_postgres_query_reads_slow_is_cancelled_on_the_server_and_never_stalls(
    fake_clock, pg_dsn, internal_errors
):
    monitor = build(
        fake_clock,
        plugin_settings={
            "db": db_settings({"dsn": pg_dsn, "query": "SELECT pg_sleep(30)"}, timeout=0.3, slow_seconds=0.2)
        },
    )
    internal_errors(monitor)
    durations, evaluations = [], []
    for _ in range(3):
        started = time.perf_counter()
        with anyio.fail_after(5):
            evaluations.append(await monitor.evaluate())
        durations.append(time.perf_counter() - started)
        fake_clock.advance(INTERVAL)
    assert all(0.28 <= d < 1.5 for d in durations), durations
    assert all(e.failures == () for e in evaluations)
    reading = db_readings(evaluations[-1])[0]
    assert reading.status is nmh.Health.DEGRADED and reading.value == pytest.approx(0.3)
    assert (reading.detail["timeouts"], reading.detail["last"]) == (3, "timeout")
    deadline = time.monotonic() + 3
    while True:  # the server stopped the query too (no pg_sleep(30) left behind)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
                (APPLICATION_NAME,),
            ).fetchone()
        if left == (0,) or time.monotonic() > deadline:
            break
        await anyio.sleep(0.05)
    assert left == (0,)


async def test_an_unreachable_postgres_is_critical(fake_clock, internal_errors):
    with anyio.fail_after(5):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()
    monitor = build(fake_clock, plugin_settings={"db": db_settings(f"postgresql://postgres@127.0.0.1:{port}/test")})
    internal_errors(monitor)
    evaluations = (await run_passes(monitor, 3, tick=INTERVAL)).evaluations
    assert statuses(evaluations) == ["elevated", "elevated", "critical"]
    [opened] = evaluations[-1].opened
    assert opened.alert is not None and "Database query times on 127.0.0.1/test" in opened.alert.message
    assert db_readings(evaluations[-1])[0].detail["last"] == "OperationalError"


async def test_a_failing_query_is_a_failure_not_a_slowdown(fake_clock, pg_dsn, internal_errors):
    monitor = build(
        fake_clock, plugin_settings={"db": db_settings({"dsn": pg_dsn, "query": "SELECT * FROM no_such_table"})}
    )
    internal_errors(monitor)
    [evaluation] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    reading = db_readings(evaluation)[0]
    assert (reading.status, reading.detail["last"], reading.value) == (nmh.Health.ELEVATED, "UndefinedTable", None)


# SQLite.


async def test_sqlite_probe_reads_ok_and_opens_the_file_read_only(
    fake_clock, sqlite_db: Path, tmp_path: Path, internal_errors
):
    missing = tmp_path / "missing.db"
    monitor = build(
        fake_clock,
        plugin_settings={
            "db": db_settings(
                {"dsn": f"sqlite:///{sqlite_db}", "query": "SELECT count(*) FROM bookings"}, f"sqlite:///{missing}"
            )
        },
    )
    internal_errors(monitor)
    [evaluation] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    readings = {r.key: r for r in db_readings(evaluation)}
    assert readings["app.db"].status is nmh.Health.OK and readings["app.db"].value < 0.05
    assert (readings["missing.db"].status, readings["missing.db"].detail["last"]) == ("elevated", "OperationalError")
    assert not missing.exists()


def hold_write_lock(path: Path, seconds: float, ready: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


async def test_a_locked_sqlite_database_is_slow_and_a_runaway_query_is_cut_off(
    fake_clock, sqlite_db: Path, internal_errors
):
    runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    monitor = build(
        fake_clock,
        plugin_settings={
            "db": db_settings(
                {"dsn": f"sqlite:///{sqlite_db}", "name": "bookings"},
                {"dsn": f"sqlite:///{sqlite_db}", "name": "runaway", "query": runaway},
                timeout=0.4,
                slow_seconds=0.1,
            )
        },
    )
    internal_errors(monitor)
    evaluations = []
    for _ in range(3):
        ready = threading.Event()
        writer = threading.Thread(target=hold_write_lock, args=(sqlite_db, 0.2, ready))
        writer.start()
        ready.wait(5)
        started = time.perf_counter()
        evaluations.append(await monitor.evaluate())
        assert time.perf_counter() - started < 1.2
        writer.join()
        fake_clock.advance(INTERVAL)
    readings = {r.key: r for r in db_readings(evaluations[-1])}
    locked = readings["bookings"]
    assert locked.status is nmh.Health.DEGRADED and 0.15 <= locked.value < 0.4  # waited for the writer, then answered
    assert locked.detail["timeouts"] == 0
    assert readings["runaway"].status is nmh.Health.DEGRADED
    assert (readings["runaway"].value, readings["runaway"].detail["timeouts"]) == (pytest.approx(0.4), 3)


# Timings recorded by the app.


async def test_recorded_query_timings_are_judged_against_their_baseline(fake_clock, internal_errors):
    monitor = build(fake_clock, plugin_settings={"db": {"recorded": True, "slow_seconds": 0.05}})
    internal_errors(monitor)
    for n in range(40):
        record_query(monitor, 0.004, user=f"u-{n % 8}")
    fake_clock.advance(600)  # those are the baseline now
    [quiet] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    assert [(r.key, r.status.value) for r in db_readings(quiet)] == [
        ("recorded", "ok")
    ]  # too few samples in the window
    for n in range(30):
        record_query(monitor, 0.3 if n % 3 else 0.01, user=f"u-{n % 5}")
    with timed_query(monitor, user="u-9"):
        pass
    with pytest.raises(RuntimeError), timed_query(monitor, user="u-9"):
        raise RuntimeError("deadlock detected")
    [evaluation] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    [reading] = db_readings(evaluation)
    assert reading.status is nmh.Health.DEGRADED
    assert reading.threshold == 0.05  # 3 x a 4 ms baseline is under the floor
    assert reading.value == pytest.approx(0.3, rel=0.05)
    assert dict(reading.detail) == {
        "source": "recorded",
        "samples": 32,
        "failures": 1,
        "baseline_p95": pytest.approx(0.004, rel=0.05),
    }
    [opened] = evaluation.opened
    assert (opened.incident.area, opened.incident.key, opened.incident.affected_users) == ("portal", "recorded", 6)
    assert opened.incident.summary == "Database query times recorded by the app"
    store = monitor.store
    series = store.read("acme", SIGNAL, 0, 1e12)
    assert {b.key for b in series} == {""} and (sum(b.total for b in series), sum(b.bad for b in series)) == (72, 1)
    assert store.read("acme", REQUEST, 0, 1e12) == [], "no pseudo-route among the requests"
    assert monitor.status().drops == {}


def test_recorded_timings_are_dropped_and_counted_until_the_option_is_set(fake_clock: FakeClock, pg_dsn: str):
    monitor = build(fake_clock, plugin_settings={"db": db_settings(pg_dsn)})
    record_query(monitor, 0.004)
    with timed_query(monitor):
        pass
    monitor.flush()
    assert monitor.status().drops == {"undeclared_signal": 2}
    assert monitor.store.read("acme", SIGNAL, 0, 1e12) == []


# The judgement itself.


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([Sample(0.01)] * 3, "ok"),
        ([Sample(0.01)] * 2 + [Sample(0.5)], "elevated"),
        ([Sample(0.01)] + [Sample(0.5)] * 2, "degraded"),
        ([Sample(0.01)] + [Sample(1.0, timed_out=True)] * 2, "degraded"),
        ([Sample(0.01)] + [Sample(0.01, failed=True)] * 2, "degraded"),
        ([Sample(0.01, failed=True)] * 3, "critical"),
        ([Sample(0.07)] * 3, "elevated"),  # above the recovery line (0.06), below the line
    ],
)
def test_judge(samples: list[Sample], expected: str):
    status, _ = judge(samples, line=0.1, recovery=0.06, failure_ratio=0.3, min_probes=3)
    assert status == expected
