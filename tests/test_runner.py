"""The loops: running(), run(), start()/stop(), on asyncio and trio, driven by a FakeClock."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock, capture_logs

pytestmark = pytest.mark.anyio


async def settle(clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    """Advance the fake clock in steps, letting woken tasks run after each."""
    for _ in range(int(seconds / step)):
        clock.advance(step)
        await anyio.wait_all_tasks_blocked()


async def test_running_flushes_and_evaluates_on_its_intervals(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    async with monitor.running():
        await anyio.wait_all_tasks_blocked()
        assert monitor.status().last_evaluation == nmh.values.timestamp(fake_clock.now())
        monitor.record_request("/bookings", 200, 0.1, user="a")
        assert monitor.status().buffered == 1
        await settle(fake_clock, 1)
        assert monitor.status().buffered == 0 and monitor.status().events_flushed == 1
        first = monitor.status().last_evaluation
        await settle(fake_clock, 13)
        assert monitor.status().last_evaluation == first
        await settle(fake_clock, 1)
        assert (monitor.status().last_evaluation - first).total_seconds() == 15
    monitor.record_request("/bookings", 200, 0.1)
    assert monitor.status().buffered == 1


async def test_running_detects_and_resolves_without_manual_passes(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    async with monitor.running():
        for _ in range(3):
            for user in range(12):
                for _ in range(3):
                    monitor.record_upload(False, user=f"u{user}")
                monitor.record_upload(True, user=f"u{user}")
            await settle(fake_clock, 60, step=5)
        [incident] = monitor.incidents()
        assert incident.check == "upload_failures" and incident.severity == "critical"
        assert monitor.notices("uploads")
        await settle(fake_clock, 15 * 60, step=15)
        [incident] = monitor.incidents()
        assert incident.status == "resolved"
        assert monitor.notices("uploads") == []


async def test_running_says_once_how_the_store_may_lose_incidents(monitor: nmh.Monitor) -> None:
    with capture_logs() as logs:
        async with monitor.running():
            await anyio.wait_all_tasks_blocked()
            [caveat] = monitor.status().store_caveats
        async with monitor.running():  # a second run of the same monitor does not repeat it
            await anyio.wait_all_tasks_blocked()
    assert caveat.startswith("memory:// keeps incidents and alerts in this process only")
    said = [e for e in logs if e["event"] == "nextmonth_health.store_caveat"]
    assert [(e["log_level"], e["caveat"], e["store"]) for e in said] == [("warning", caveat, "memory://")]


async def test_a_store_that_fails_to_say_its_caveats_does_not_stop_the_monitor(fake_clock: FakeClock) -> None:
    class Grumpy(nmh.store.MemoryStore):
        def caveats(self) -> tuple[str, ...]:
            raise RuntimeError("cannot tell")

    monitor = nmh.Monitor("acme", store=Grumpy(), clock=fake_clock, load_entrypoints=False)
    async with monitor.running():
        await anyio.wait_all_tasks_blocked()
        assert monitor.status().last_evaluation is not None, "it evaluated all the same"
    assert monitor.status().store_caveats == ()
    assert monitor.status().internal_errors == {"store.caveats": 1}


async def test_run_is_cancellable_and_flushes_on_the_way_out(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        await anyio.wait_all_tasks_blocked()
        monitor.record_login(False, user="x")
        tg.cancel_scope.cancel()
    assert monitor.status().buffered == 0
    assert monitor.status().events_flushed == 1


async def test_a_raising_pass_does_not_stop_the_loop(fake_clock: FakeClock) -> None:
    calls = []

    class Flaky:
        name = "flaky"
        interval = None
        timeout = None

        def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
            calls.append(view.now)
            raise RuntimeError("boom")

    class Plugin:
        @nmh.hookimpl
        def register_health_checks(self, register):  # type: ignore[no-untyped-def]
            register(Flaky())

    m = nmh.Monitor("s", clock=fake_clock, plugins=[Plugin()], load_entrypoints=False)
    async with m.running():
        await anyio.wait_all_tasks_blocked()
        await settle(fake_clock, 30, step=15)
    assert len(calls) == 3
    assert m.status().internal_errors == {"check.flaky": 3}


async def test_check_intervals_are_honoured(fake_clock: FakeClock, internal_errors: object) -> None:
    seen: list[float] = []

    class Slow:
        name = "probe"
        interval = 60.0
        timeout = None

        def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
            seen.append(view.now)
            return []

    class Plugin:
        @nmh.hookimpl
        def register_health_checks(self, register):  # type: ignore[no-untyped-def]
            register(Slow())

    m = nmh.Monitor("s", clock=fake_clock, plugins=[Plugin()], load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    for _ in range(9):
        await m.evaluate()
        fake_clock.advance(15)
    assert [t - seen[0] for t in seen] == [0, 60, 120]


async def test_evaluate_returns_what_changed(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    for user in range(20):
        monitor.record_upload(False, user=f"u{user}")
        monitor.record_upload(True, user=f"u{user}")
    fake_clock.advance(10)
    result = await monitor.evaluate()
    assert result.sites == ("test-site",)
    assert [t.kind for t in result.opened] == ["opened"]
    assert [a.incident_id for a in result.alerts] == [result.opened[0].incident.id]
    assert result.at == nmh.values.timestamp(fake_clock.now())
    assert result.failures == ()
    assert {r.check for r in result.readings} >= {"upload_failures"}


def test_start_and_stop_run_the_loop_in_a_thread(fake_clock: FakeClock, internal_errors: object) -> None:
    m = nmh.Monitor("sync-site", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    evaluated = threading.Event()
    original = m.evaluator.evaluate

    async def watched() -> nmh.Evaluation:
        result = await original()
        evaluated.set()
        return result

    m.evaluator.evaluate = watched  # type: ignore[method-assign]
    m.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            m.start()
        assert evaluated.wait(10)
        evaluated.clear()
        for user in range(20):
            m.record_upload(False, user=f"u{user}")
        fake_clock.advance(15)
        assert evaluated.wait(10)
        assert [i.check for i in m.incidents()] == ["upload_failures"]
    finally:
        m.stop()
    m.stop()
    m.record_upload(True)
    assert m.status().buffered == 1


async def test_only_one_process_leads_a_site(fake_clock: FakeClock) -> None:
    store = nmh.store.MemoryStore()
    a = nmh.Monitor("shared", store=store, clock=fake_clock, load_entrypoints=False)
    b = nmh.Monitor("shared", store=store, clock=fake_clock, load_entrypoints=False)
    for m in (a, b):
        for user in range(20):
            m.record_upload(False, user=f"{id(m)}-{user}")
    fake_clock.advance(10)
    first, second = await a.evaluate(), await b.evaluate()
    assert first.sites == ("shared",) and second.sites == ()
    assert len(first.opened) == 1 and second.transitions == ()
    assert len(store.alerts()) == 1
    fake_clock.advance(3 * 60)
    assert (await b.evaluate()).sites == ("shared",)


class ThreadWatchingStore(nmh.store.MemoryStore):
    """A memory store that says it blocks, and notes the threads that call it."""

    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[tuple[str, int]] = []

    def __getattribute__(self, name: str) -> object:
        attr = super().__getattribute__(name)
        if name in {
            "write",
            "read",
            "read_many",
            "incidents",
            "open_incidents",
            "alerts",
            "save_alert",
            "save_incident",
            "acquire_leases",
            "count_users",
            "window_users",
        }:
            threads = super().__getattribute__("threads")

            def watched(*args: object, **kwargs: object) -> object:
                threads.append((name, threading.get_ident()))
                return attr(*args, **kwargs)  # type: ignore[operator]

            return watched
        return attr


async def test_a_blocking_store_is_never_called_on_the_event_loop(
    fake_clock: FakeClock, internal_errors: object
) -> None:
    store = ThreadWatchingStore()
    m = nmh.Monitor("io", store=store, clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    loop_thread = threading.get_ident()
    for user in range(20):
        m.record_upload(False, user=f"u{user}")
        m.record_request("/media-upload", 503, 0.1, user=f"u{user}")
    fake_clock.advance(10)
    result = await m.evaluate()
    assert result.alerts, "the pass raised an alert, so save_alert ran"
    called = {name for name, _ in store.threads}
    assert {
        "write",
        "read_many",
        "open_incidents",
        "save_alert",
        "save_incident",
        "acquire_leases",
        "window_users",
    } <= called
    on_loop = sorted({name for name, thread in store.threads if thread == loop_thread})
    assert on_loop == []


async def test_notices_answer_from_memory_while_the_runner_runs(fake_clock: FakeClock, internal_errors: object) -> None:
    store = ThreadWatchingStore()
    m = nmh.Monitor("io", store=store, clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    assert m.notices("uploads") == []
    passes: list[anyio.Event] = [anyio.Event()]
    original = m.evaluator.evaluate

    async def watched() -> nmh.Evaluation:
        result = await original()
        passes[-1].set()
        return result

    m.evaluator.evaluate = watched  # type: ignore[method-assign]
    async with m.running():
        await passes[-1].wait()
        passes.append(anyio.Event())
        loop_thread = threading.get_ident()
        store.threads.clear()
        for user in range(20):
            m.record_upload(False, user=f"u{user}")
        fake_clock.advance(15)
        await passes[-1].wait()
        for _ in range(100):
            assert m.notices("uploads")
        assert [name for name, thread in store.threads if thread == loop_thread] == []


def test_a_monitor_built_before_fork_works_in_the_child_and_counts_each_event_once(tmp_path, internal_errors) -> None:  # type: ignore[no-untyped-def]
    """gunicorn --preload: the app (and its monitor) is built, then workers fork and start it."""
    import os

    from nextmonth_health.signals import LOGIN

    db = tmp_path / "fork.db"
    m = nmh.Monitor("forked", store=f"sqlite:///{db}", load_entrypoints=False)
    internal_errors(m)
    m.record_login(False, user="parent")
    pid = os.fork()
    if pid == 0:  # the child: a pre-fork server's worker
        code = 1
        try:
            if m.status().buffered == 0:
                m.record_login(True, user="child")
                m.start()
                m.stop()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    m.start()
    m.stop()
    rows = m.store.read("forked", LOGIN, 0, 2**40)
    assert (sum(b.total for b in rows), sum(b.bad for b in rows)) == (2, 1), "each event counted once"


def test_a_monitor_started_before_fork_flushes_in_the_child_without_being_started_again(
    tmp_path, internal_errors
) -> None:  # type: ignore[no-untyped-def]
    """An app module that calls start() at import, under gunicorn --preload: each worker
    gets its own background loop, so its events reach the store with no post_fork hook."""
    import os
    import signal
    import time

    from nextmonth_health.signals import LOGIN

    db = tmp_path / "fork.db"
    m = nmh.Monitor("forked", store=f"sqlite:///{db}", load_entrypoints=False, flush_seconds=0.02)
    internal_errors(m)
    m.start()
    try:
        pid = os.fork()
        if pid == 0:  # the child: never calls start()
            code = 1
            try:
                m.record_login(False, user="child")
                deadline = time.monotonic() + 10
                while m.status().events_flushed == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                if m.status().events_flushed == 1 and m._future is not None:
                    code = 0
                m.stop()
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError("the child hung at fork, or its loop never flushed")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's own loop flushed its event"
        m.record_login(True, user="parent")
    finally:
        m.stop()
    rows = m.store.read("forked", LOGIN, 0, 2**40)
    assert (sum(b.total for b in rows), sum(b.bad for b in rows)) == (2, 1), "each event counted once"


def test_a_started_monitor_flushes_when_its_process_exits_without_stop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from nextmonth_health.signals import UPLOAD
    from nextmonth_health.store import SQLiteStore

    db = tmp_path / "exit.db"
    code = (
        "import nextmonth_health as nmh; "
        f"m = nmh.Monitor('acme', store='sqlite:///{db}', load_entrypoints=False, flush_seconds=3600); "
        "m.start(); "
        "[m.record_upload(False, user=f'u{n}') for n in range(7)]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with SQLiteStore(f"sqlite:///{db}") as store:
        rows = store.read("acme", UPLOAD, 0, 2**40)
    assert sum(b.bad for b in rows) == 7, "stop() ran at exit and flushed what was buffered"


def test_the_core_import_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nextmonth_health as nmh; "
        "heavy = [m for m in ('jinja2', 'redis', 'click', 'uvicorn', 'starlette', 'pytest', 'nextmonth_health.web') "
        "if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert nmh.asgi.HealthMiddleware and nmh.wsgi.HealthMiddleware"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_a_store_that_fails_to_read_windows_pauses_the_pass_and_recovers(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    """Leases taken, then the batched read fails: the pass reports it and judges nothing;
    the next pass reads the sites whole again and opens the incident once."""

    class Flaky(nmh.store.SQLiteStore):
        failing = False

        def read_rows(self, *args: Any, **kwargs: Any) -> Any:
            if self.failing:
                raise OSError("disk went away")
            return super().read_rows(*args, **kwargs)

    store = Flaky(f"sqlite:///{tmp_path}/flaky.db")
    m = nmh.Monitor("io", store=store, clock=fake_clock, load_entrypoints=False)
    reported: list[str] = []
    m.errors.subscribe(lambda where, exc: reported.append(where))
    for user in range(20):
        m.record_upload(False, user=f"u{user}")
    fake_clock.advance(10)
    store.failing = True
    failed = await m.evaluate()
    assert (failed.sites, failed.readings, failed.transitions) == ((), (), ())
    assert reported == ["store.read"]
    store.failing = False
    fake_clock.advance(15)
    recovered = await m.evaluate()
    assert recovered.sites == ("io",)
    assert [t.incident.check for t in recovered.opened] == ["upload_failures"]
    store.close()


def test_passes_run_one_at_a_time_even_from_two_threads(fake_clock: FakeClock) -> None:
    """A host awaiting evaluate() while the loop runs a pass (another thread, another event
    loop) waits for that pass to end: two passes never share the caches."""
    order: list[str] = []
    refused = threading.Event()

    class Watched:
        """The evaluator's pass lock, noting when a pass has to wait for it."""

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def acquire(self, blocking: bool = True) -> bool:
            if self.lock.acquire(blocking=False):
                return True
            refused.set()
            return self.lock.acquire() if blocking else False

        def release(self) -> None:
            self.lock.release()

    second = threading.Thread(target=lambda: anyio.run(m.evaluate))

    class Probe:
        name = "probe"
        interval = None
        timeout = None

        def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
            order.append(f"start {len(order) // 2}")
            if len(order) == 1:  # the first pass starts the second, which must wait
                second.start()
                assert refused.wait(10), "the second pass did not wait for the first"
            order.append(f"end {len(order) // 2}")
            return []

    class Plugin:
        @nmh.hookimpl
        def register_health_checks(self, register):  # type: ignore[no-untyped-def]
            register(Probe())

    m = nmh.Monitor("s", clock=fake_clock, plugins=[Plugin()], load_entrypoints=False)
    m.evaluator._passing = Watched()  # type: ignore[assignment]
    anyio.run(m.evaluate)
    second.join(10)
    assert order == ["start 0", "end 0", "start 1", "end 1"]


async def test_a_failed_read_midway_judges_what_was_read_and_reads_no_more(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    """450 sites, three batches (read ahead of the one judged): when the second read
    fails, the first batch is still judged and nothing after it."""
    from nextmonth_health.judge.runner import _BATCH

    reads: list[int] = []

    class Flaky(nmh.store.SQLiteStore):
        failing = ""  # the first site of the batch whose read fails

        def read_rows(self, sites: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("width") is None:
                reads.append(len(sites))
                if sites[0] == self.failing:
                    raise OSError("disk went away")
            return super().read_rows(sites, *args, **kwargs)

    store = Flaky(f"sqlite:///{tmp_path}/ahead.db")
    m = nmh.Monitor("site-000", store=store, clock=fake_clock, load_entrypoints=False)
    reported: list[str] = []
    m.errors.subscribe(lambda where, exc: reported.append(where))
    sites = [f"site-{i:03d}" for i in range(2 * _BATCH + 50)]
    for site in sites:
        for user in range(20):
            m.record_upload(False, user=f"u{user}", site=site)
    fake_clock.advance(10)
    whole = await m.evaluate()
    assert sorted(reads) == [50, _BATCH, _BATCH] and len(whole.opened) == len(sites)
    reads.clear()
    store.failing = sites[_BATCH]
    fake_clock.advance(15)
    partial = await m.evaluate()
    assert sorted(reads) in ([_BATCH, _BATCH], [50, _BATCH, _BATCH]), "one read in flight, at most"
    assert partial.sites == tuple(sites[:_BATCH]) and reported == ["store.read"]
    assert len(partial.readings) == _BATCH * len(m.checks) + 2 * _BATCH  # api_errors: 3 routes
    store.close()


async def test_a_pass_cancelled_while_waiting_for_another_leaves_the_lock_free(fake_clock: FakeClock) -> None:
    m = nmh.Monitor("s", clock=fake_clock, load_entrypoints=False)
    lock = m.evaluator._passing
    lock.acquire()  # another pass, in another thread, is running
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(m.evaluate)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
            lock.release()  # that pass ends; the waiting one gets the lock, then its cancellation
    assert lock.acquire(blocking=False), "the cancelled pass let go of the lock"
    lock.release()
    assert (await m.evaluate()).sites == ("s",)


def test_recording_with_nothing_evaluating_is_said_once_and_shown_in_status(fake_clock: FakeClock) -> None:
    """The one failure nothing else shows: requests recorded, no pass, no notice ever."""
    from wsgiref.util import setup_testing_defaults

    from nextmonth_health.wsgi import HealthMiddleware

    m = nmh.Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
    site = HealthMiddleware(lambda environ, start: start("200 OK", []) or [b"ok"], m, start_monitor=False)

    def request() -> None:
        environ: dict[str, object] = {"PATH_INFO": "/portal"}
        setup_testing_defaults(environ)
        site._next_look = 0.0  # as if a second of requests had gone by
        response = site(environ, lambda status, headers, exc_info=None: None)
        b"".join(response)
        response.close()  # as a server does: the request is recorded then

    with capture_logs() as logs:
        request()
        assert m.status().evaluation_overdue is None
        fake_clock.advance(3 * m.settings.tick_seconds + 1)
        request()  # the middleware looks, and says so
        assert m.status().evaluation_overdue == 3 * m.settings.tick_seconds + 1
        fake_clock.advance(60)
        request()
        m.notices("uploads")
        assert m.status().evaluation_overdue == 3 * m.settings.tick_seconds + 61
    said = [e for e in logs if e["event"] == "nextmonth_health.not_evaluating"]
    assert [(e["log_level"], e["seconds"], e["running"]) for e in said] == [("warning", 46, False)]
    assert "HealthMiddleware" in said[0]["hint"] and "monitor.start()" in said[0]["hint"]

    anyio.run(m.evaluate)
    assert m.status().evaluation_overdue is None
    fake_clock.advance(600)
    assert m.status().evaluation_overdue is None, "nothing recorded since the last pass: nothing to evaluate"


def test_is_running_is_true_from_the_moment_running_is_entered(monitor: nmh.Monitor) -> None:
    async def main() -> None:
        assert not monitor.is_running
        async with monitor.running():
            assert monitor.is_running  # before its task had a chance to start
        assert not monitor.is_running

    anyio.run(main)
    monitor.start()
    assert monitor.is_running
    monitor.stop()
    assert not monitor.is_running
