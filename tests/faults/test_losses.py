"""Nothing recorded is lost silently: events a store never took are counted and logged.

A monitor whose store is down, or hung, when it stops cannot write its last events. They
are counted in ``status().drops["store_at_exit"]`` and logged once with their number; the
stop itself is bounded by ``stop_timeout``. ``events_stored`` says how many reached the store.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

from ..redis_server import RedisServer, SilentServer


def record(monitor: nmh.Monitor, n: int) -> None:
    for i in range(n):
        monitor.record_request("/media-upload", 503 if i % 10 == 0 else 200, 0.1, user=f"u-{i % 50}")


async def run_briefly(monitor: nmh.Monitor) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


def test_events_a_dead_redis_never_took_are_counted_at_stop(
    durable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = nmh.Monitor("acme", store=durable_redis.url(timeout=0.5), clock=FakeClock(), load_entrypoints=False)
    record(monitor, 400)
    monitor.flush()
    assert monitor.status().events_stored == 400
    durable_redis.kill()
    record(monitor, 1000)
    monitor.flush()  # fails: kept for the next flush, not yet lost
    status = monitor.status()
    assert (status.events_flushed, status.events_stored, status.unsent_events) == (1400, 400, 1000)
    assert status.drops == {}
    with caplog.at_level(logging.WARNING, logger="nextmonth_health"):
        anyio.run(run_briefly, monitor)
    status = monitor.status()
    assert status.drops == {"store_at_exit": 1000} and status.unsent_events == 0
    lost = [r for r in caplog.records if "events_lost" in r.getMessage()]
    assert len(lost) == 1 and "events=1000" in lost[0].getMessage() and "store_at_exit" in lost[0].getMessage()
    monitor.store.close()


def test_a_hung_store_bounds_the_stop_and_counts_what_is_left(silent_server: SilentServer) -> None:
    # The store's own timeout bounds a call under way; stop_timeout bounds the last flush.
    monitor = nmh.Monitor(
        "acme",
        store=silent_server.url(timeout=1.0),
        clock=FakeClock(),
        load_entrypoints=False,
        stop_timeout=0.5,
    )
    record(monitor, 250)
    began = time.monotonic()
    anyio.run(run_briefly, monitor)
    took = time.monotonic() - began
    assert took < 1.0 + 1.0 + 0.5 + 1.0, f"stop waited {took:.1f} s for a store that never answers"
    # The flush left hanging counts what it held once the store's timeout ends it.
    deadline = time.monotonic() + 5.0
    while not monitor.status().drops and time.monotonic() < deadline:
        time.sleep(0.05)
    assert monitor.status().drops == {"store_at_exit": 250}


def test_a_healthy_stop_loses_nothing(tmp_path: Path) -> None:
    monitor = nmh.Monitor("acme", store=f"sqlite:///{tmp_path / 'h.db'}", clock=FakeClock(), load_entrypoints=False)
    record(monitor, 300)
    anyio.run(run_briefly, monitor)
    status = monitor.status()
    assert status.drops == {} and status.events_stored == 300 and status.unsent_events == 0
    monitor.store.close()


DISK_FULL = """
import json, resource, signal, sys
import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
monitor = nmh.Monitor("acme", store=sys.argv[1], clock=FakeClock(), load_entrypoints=False)

def record(n):
    for i in range(n):
        monitor.record_request("/media-upload", 503 if i % 10 == 0 else 200, 0.1, user=f"u-{i % 50}")
    monitor.flush()
    s = monitor.status()
    return [s.events_flushed, s.events_stored, s.unsent_events, s.drops]

seen = [record(400)]
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the disk is full
seen.append(record(1000))
seen.append(record(0))  # still full: the retry fails too, and keeps the events
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is freed
seen.append(record(0))
print(json.dumps(seen))
"""


def test_a_full_disk_keeps_the_events_until_space_frees_then_stores_them_all(
    tmp_path: Path,
) -> None:
    """A real process whose SQLite file cannot grow: its flushes fail, the events wait
    (``unsent_events``, not dropped) and reach the file once it can grow again."""
    import json
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'full.db'}"
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == [
        [400, 400, 0, {}],
        [1400, 400, 1000, {}],
        [1400, 400, 1000, {}],
        [1400, 1400, 0, {}],
    ], done.stderr
    with nmh.store.SQLiteStore(url) as store:
        stored = store.read("acme", "request", 0, float("inf"))
        assert sum(b.total for b in stored) == 1400
