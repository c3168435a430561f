"""Plugins' own signals: declared through ``register_signals``, recorded with
``Monitor.record``, read by checks through the same views as the built-in ones.

Declaring is validated when the monitor is built; recording never raises, and every event
ends up in a bucket or in ``status().drops``, an undeclared signal named once in the log.
The last tests record in one process and judge in another, on a real SQLite file and a
real Redis server.
"""

from __future__ import annotations

import enum
import inspect
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health import ConfigError, Health, Reading, hookimpl
from nextmonth_health.record.recorder import FIELDS, MAX_SIGNAL_KEYS
from nextmonth_health.signals import SIGNALS
from nextmonth_health.store import MemoryStore, SQLiteStore
from nextmonth_health.testing import START, FakeClock, capture_logs

from .redis_server import RedisServer

pytestmark = pytest.mark.anyio

QUEUE = "acme.queue_wait"
EVERYTHING = (0.0, 1e12)
WORKER = Path(__file__).with_name("signal_worker.py")


class Declares:
    """A plugin declaring signals (and nothing else)."""

    def __init__(self, *names: Any) -> None:
        self.names = names

    @hookimpl
    def register_signals(self, register: Callable[[Any], None]) -> None:
        for name in self.names:
            register(name)


class SlowQueue:
    """A plugin's check on its own signal: the queue's median wait against the hour before.

    It opens its own incident, in its own words, when jobs wait five times longer than
    they did (and over ten seconds), as a plugin author would write it.
    """

    name = "queue_wait"
    interval = None
    timeout = None

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        readings = []
        for key in sorted(view.keys(QUEUE)):
            window, usual = view.window(QUEUE, key), view.baseline(QUEUE, key).quantile(0.5)
            wait = window.quantile(0.5)
            line = max(10.0, 5 * usual) if usual is not None else 10.0
            slow = wait is not None and window.samples >= 5 and wait > line
            status = Health.DEGRADED if slow or window.ratio > 0.5 else Health.OK
            readings.append(
                Reading(
                    check=self.name,
                    site=view.site,
                    key=key,
                    area="bookings",
                    status=status,
                    subject=f"Jobs waiting on the {key} queue",
                    value=wait,
                    threshold=line,
                    affected_users=view.affected(status, self.name, key, (QUEUE, key, False)),
                )
            )
        return readings


class Queues(Declares):
    @hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(SlowQueue())

    @hookimpl
    def register_message_renderers(self, register: Callable[[Any], None]) -> None:
        register(QueueNotice())


class QueueNotice:
    name = "queue_notice"
    areas = frozenset({"bookings"})

    def render(self, incident: nmh.Incident) -> nmh.Notice | None:
        if incident.check != "queue_wait":
            return None
        return nmh.Notice(
            area=incident.area,
            site=incident.site,
            severity=incident.severity,
            title="Confirmations are on their way",
            message="Booking confirmations are arriving a little late today.",
        )


def build(*plugins: Any, clock: FakeClock | None = None, store: str = "memory://", **settings: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme", store=store, clock=clock or FakeClock(), plugins=plugins, load_entrypoints=False, **settings
    )


@pytest.fixture
def queues(fake_clock: FakeClock, internal_errors: Callable[[Any], Any]) -> nmh.Monitor:
    monitor = build(Declares(QUEUE), clock=fake_clock)
    internal_errors(monitor)
    return monitor


def stored(monitor: nmh.Monitor, signal: str = QUEUE, site: str = "acme") -> list[Any]:
    return sorted(monitor.store.read(site, signal, *EVERYTHING), key=lambda b: (b.key, b.start))


# Declaring.


def test_declared_signals_follow_the_built_in_ones_once_each_in_plugin_order():
    monitor = build(Declares("acme.jobs", QUEUE), Declares(QUEUE, "other.mail"), Declares("acme.jobs"))
    assert monitor.signals == (*SIGNALS, "acme.jobs", QUEUE, "other.mail")
    assert monitor.recorder.declared == {"acme.jobs", QUEUE, "other.mail"}
    assert monitor.plugin_failures == ()
    assert build().signals == SIGNALS


@pytest.mark.parametrize("name", SIGNALS)
def test_a_signal_named_like_a_built_in_one_fails_start_up(name: str):
    with pytest.raises(ConfigError, match=rf"declared the signal '{name}', which is built in .*e\.g\. 'acme\.{name}'"):
        build(Declares(name))


class Names(enum.StrEnum):
    QUEUE = QUEUE


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Acme.queue",
        "acme queue",
        "acme:queue",
        "acme{x}",
        "9lives",
        "_acme",
        "acme\tq",
        "a" * 65,
        42,
        None,
        Names.QUEUE,
    ],
)
def test_a_badly_named_signal_fails_start_up_naming_the_plugin(name: Any):
    with pytest.raises(ConfigError, match=r"^plugin '.*Declares.*' declared a signal named .*: a signal's name is"):
        build(Declares(name))


def test_the_longest_and_oddest_good_names_are_fine():
    names = ("a" * 64, "a", "a.b-c_9", "x.")
    assert build(Declares(*names)).signals[len(SIGNALS) :] == names


# Recording.


def test_events_land_in_buckets_with_counts_values_and_users(queues: nmh.Monitor, fake_clock: FakeClock):
    queues.record(QUEUE, "mail", value=2.0, user="u-1")
    queues.record(QUEUE, "mail", ok=False, value=40.0, user="u-2")
    queues.record(QUEUE, "mail", ok=False, value=42, user="u-2")
    queues.record(QUEUE, "sms", user="u-3")
    queues.record(QUEUE)
    fake_clock.advance(10)
    queues.record(QUEUE, "sms", site="tiny")
    assert queues.flush() == 6
    empty, mail, sms = stored(queues)
    assert (empty.key, empty.total, empty.bad, empty.samples, len(empty.users)) == ("", 1, 0, 0, 0)
    assert (mail.site, mail.signal, mail.start) == ("acme", QUEUE, START)
    assert (mail.total, mail.bad, mail.samples, len(mail.users), len(mail.bad_users)) == (3, 2, 3, 2, 1)
    assert mail.quantile(0.5) == pytest.approx(40.0, rel=0.05)
    assert (sms.total, sms.samples, len(sms.users)) == (1, 0, 1), "no value, no sample"
    [tiny] = stored(queues, site="tiny")
    assert (tiny.key, tiny.start, tiny.total) == ("sms", START + 10, 1)
    assert queues.status().drops == {}


def test_record_costs_one_event_in_the_buffer_like_record_request(queues: nmh.Monitor):
    queues.record_request("/bookings", 200, 0.1)
    queues.record(QUEUE, "mail", ok=False, value=1.5, user="u-1", site="tiny")
    buffer = queues.recorder.buffer
    assert len(buffer) == 2 * FIELDS and buffer[FIELDS:-1] == [QUEUE, "tiny", "mail", False, 1.5, "u-1"]


@pytest.mark.parametrize(
    "event",
    [
        {"ok": "yes"},
        {"ok": 1},
        {"ok": None},
        {"value": -0.1},
        {"value": math.nan},
        {"value": math.inf},
        {"value": True},
        {"value": "1.5"},
        {"value": 2**64},
        {"key": 7},
        {"key": None},
        {"key": "k" * 10_000},
        {"user": ""},
        {"site": ""},
    ],
)
def test_malformed_events_never_raise_and_are_counted_invalid(queues: nmh.Monitor, event: dict[str, Any]):
    args = {"key": "mail", **event}
    queues.record(QUEUE, args.pop("key"), **args)
    queues.flush()
    assert queues.status().drops == {"invalid": 1}
    assert stored(queues) == []


def test_a_signal_that_is_not_a_str_is_invalid_and_never_raises(queues: nmh.Monitor):
    for signal in (None, 42, ["acme"], Names.QUEUE):
        queues.record(signal)  # type: ignore[arg-type]
    queues.flush()
    assert queues.status().drops == {"invalid": 4}


def test_an_undeclared_signal_is_dropped_counted_and_named_once(queues: nmh.Monitor):
    with capture_logs() as logs:
        for _ in range(3):
            queues.record("acme.queue_wiat", "mail", value=1.0)
        queues.record("request", "/bookings")  # a built-in name, not as record_request records it
        queues.flush()
        queues.record("acme.queue_wiat")
        queues.record("acme.other")
        queues.record(QUEUE, "mail")
        queues.flush()
    assert queues.status().drops == {"undeclared_signal": 5, "invalid": 1}
    said = [e for e in logs if e["event"] == "nextmonth_health.undeclared_signal"]
    assert [(e["signal"], e["events"], e["log_level"]) for e in said] == [
        ("acme.queue_wiat", 3, "warning"),
        ("acme.other", 1, "warning"),
    ]
    assert said[0]["declared"] == [QUEUE] and "register_signals" in said[0]["hint"]
    assert [b.total for b in stored(queues)] == [1]
    assert stored(queues, "acme.queue_wiat") == []


def test_keys_past_the_limit_of_a_site_are_dropped_and_counted(queues: nmh.Monitor, fake_clock: FakeClock):
    for n in range(MAX_SIGNAL_KEYS + 5):
        queues.record(QUEUE, f"q{n}")
    queues.flush()
    fake_clock.advance(60)
    queues.record(QUEUE, "q0")  # a key already kept stays kept, flush after flush
    queues.record(QUEUE, "q-late")
    queues.record(QUEUE, "q-late", site="tiny")  # every site has its own keys
    queues.flush()
    assert len({b.key for b in stored(queues)}) == MAX_SIGNAL_KEYS
    assert [b.key for b in stored(queues, site="tiny")] == ["q-late"]
    assert queues.status().drops == {"key_limit": 6}


def test_a_full_buffer_counts_record_like_every_other_call(fake_clock: FakeClock):
    monitor = build(Declares(QUEUE), clock=fake_clock, buffer_capacity=2)
    for _ in range(3):
        monitor.record(QUEUE)
    monitor.flush()
    assert monitor.status().drops == {"buffer_full": 1}
    assert [b.total for b in stored(monitor)] == [2]


def test_the_documented_signature_of_record_is_the_real_one():
    docs = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    parts: list[str] = []
    for param in list(inspect.signature(nmh.Monitor.record).parameters.values())[1:]:
        if param.kind is param.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        parts.append(
            param.name if param.default is param.empty else f"{param.name}={param.default!r}".replace("'", '"')
        )
    assert f"monitor.record({', '.join(parts)})" in docs


# Reading.


def test_a_view_reads_window_recent_baseline_keys_and_users(queues: nmh.Monitor, fake_clock: FakeClock):
    for n in range(20):
        queues.record(QUEUE, "mail", value=1.0, user=f"u-{n % 4}")
    fake_clock.advance(1200)  # those are the baseline's now
    for n in range(6):
        queues.record(QUEUE, "mail", ok=n > 1, value=30.0, user=f"v-{n}")
    queues.record(QUEUE, "sms", value=2.0)
    queues.flush()
    view = nmh.SiteView("acme", fake_clock.now(), queues.settings, queues.store)
    window = view.window(QUEUE, "mail")
    assert (window.total, window.bad, window.quantile(0.5)) == (6, 2, pytest.approx(30.0, rel=0.05))
    assert view.window(QUEUE).total == 7 and view.recent(QUEUE, "mail").total == 6
    baseline = view.baseline(QUEUE, "mail")
    assert (baseline.total, baseline.quantile(0.5)) == (20, pytest.approx(1.0, rel=0.05))
    assert view.keys(QUEUE) == {"mail", "sms"}
    assert view.users((QUEUE, "mail", False)) == 6 and view.users((QUEUE, "mail", True)) == 2
    assert not view.learning(QUEUE, "mail")


async def test_a_plugin_check_opens_its_own_incident_from_its_own_signal(fake_clock: FakeClock, internal_errors):
    monitor = build(Queues(QUEUE), clock=fake_clock)
    internal_errors(monitor)
    for n in range(60):
        monitor.record(QUEUE, "confirmations", value=1.5, user=f"u-{n % 10}")
    fake_clock.advance(1200)
    for _ in range(6):
        monitor.record(QUEUE, "confirmations", value=1.5)
    [calm] = [r for r in (await monitor.evaluate()).readings if r.check == "queue_wait"]
    assert (calm.key, calm.status) == ("confirmations", Health.OK)
    for n in range(12):
        monitor.record(QUEUE, "confirmations", value=45.0, user=f"v-{n % 6}")
    evaluation = await monitor.evaluate()
    [opened] = evaluation.opened
    incident = opened.incident
    assert (incident.check, incident.key, incident.area, incident.severity) == (
        "queue_wait",
        "confirmations",
        "bookings",
        "degraded",
    )
    assert incident.summary == "Jobs waiting on the confirmations queue" and incident.affected_users == 6
    assert incident.threshold == 10.0 and incident.value == pytest.approx(45.0, rel=0.05)
    [notice] = monitor.notices("bookings")
    assert notice.title == "Confirmations are on their way"
    fake_clock.advance(600)
    for _ in range(50):
        monitor.record(QUEUE, "confirmations", value=1.0)
        await monitor.evaluate()
        fake_clock.advance(15)
    assert [i.status for i in monitor.incidents()] == ["resolved"] and not monitor.notices("bookings")


async def test_a_pass_reads_what_another_monitor_on_the_store_recorded(fake_clock: FakeClock):
    writer = build(Declares(QUEUE), clock=fake_clock)
    writer.record(QUEUE, "mail", value=1.0)
    writer.flush()
    seen: dict[str, Any] = {}

    class Peek:
        name, interval, timeout = "peek", None, None

        def evaluate(self, view: nmh.SiteView) -> list[Reading]:
            seen.update(queue=view.window(QUEUE).total)
            return []

    class Reader(Declares):
        @hookimpl
        def register_health_checks(self, register: Callable[[Any], None]) -> None:
            register(Peek())

    reader = nmh.Monitor("acme", store=writer.store, clock=fake_clock, plugins=[Reader(QUEUE)], load_entrypoints=False)
    await reader.evaluate()
    assert seen["queue"] == 1


class OlderStore(MemoryStore):
    """A store written before plugin signals: its ``sums`` names no ``signals``."""

    def sums(self, sites: Any, start: float, end: float, *, width: int | None = None) -> Any:  # type: ignore[override]
        return super().sums(sites, start, end, width=width)


class OlderBlockingStore(SQLiteStore):
    def read_rows(self, sites: Any, start: float, end: float, *, width: int | None = None) -> Any:  # type: ignore[override]
        return super().read_rows(sites, start, end, width=width)


async def test_a_store_written_before_plugin_signals_works_until_one_is_declared(tmp_path: Path, fake_clock: FakeClock):
    older = OlderStore()
    monitor = nmh.Monitor("acme", store=older, clock=fake_clock, load_entrypoints=False)
    monitor.record_request("/bookings", 503, 0.1)
    assert (await monitor.evaluate()).failures == () and monitor.errors.total == 0
    with pytest.raises(ConfigError, match=r"OlderStore\.sums must accept a keyword argument 'signals'"):
        nmh.Monitor("acme", store=older, plugins=[Declares(QUEUE)], load_entrypoints=False)
    blocking = OlderBlockingStore(f"sqlite:///{tmp_path / 'older.db'}")
    try:
        with pytest.raises(ConfigError, match=r"OlderBlockingStore\.read_rows must accept"):
            nmh.Monitor("acme", store=blocking, plugins=[Declares(QUEUE)], load_entrypoints=False)
    finally:
        blocking.close()


# One process records, another judges: real SQLite, real Redis.


def run_worker(store: str, *commands: str) -> list[dict[str, Any]]:
    """``tests/signal_worker.py`` on ``store``, given ``commands``; one JSON answer each."""
    done = subprocess.run(
        [sys.executable, str(WORKER), store],
        input="".join(f"{c}\n" for c in commands),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        server: RedisServer = request.getfixturevalue("redis_db")
        yield server.url()


async def test_a_signal_recorded_in_one_process_is_judged_in_another(shared_store: str, internal_errors):
    baseline, spike = run_worker(shared_store, "record 60 1.5 0", "record 12 45.0 1200")
    assert baseline == {"flushed": 60, "drops": {}, "internal_errors": {}}
    assert spike == {"flushed": 12, "drops": {}, "internal_errors": {}}
    clock = FakeClock(START + 1215)
    judge = build(Queues(QUEUE), clock=clock, store=shared_store)
    internal_errors(judge)
    try:
        evaluation = await judge.evaluate()
        [reading] = [r for r in evaluation.readings if r.check == "queue_wait"]
        assert (reading.key, reading.status, reading.affected_users) == ("confirmations", Health.DEGRADED, 6)
        assert reading.value == pytest.approx(45.0, rel=0.05) and reading.threshold == 10.0
        assert [t.incident.check for t in evaluation.opened] == ["queue_wait"]
        [incident] = judge.incidents()
        assert incident.summary == "Jobs waiting on the confirmations queue"
        [later] = run_worker(shared_store, "record 12 50.0 1230")
        assert later["flushed"] == 12
        clock.set(START + 1245)
        [again] = [r for r in (await judge.evaluate()).readings if r.check == "queue_wait"]
        assert again.status is Health.DEGRADED, "the pass after reads the worker's newer counts through its cache"
        hourly = judge.store.read_hourly("acme", QUEUE, START, START + 7200)
        assert sum(b.total for b in hourly) == 84, "roll-ups keep a plugin signal too"
    finally:
        judge.store.close()
