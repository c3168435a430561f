"""One worker process of a host sharing an SQLite store, driven by ``tests/test_store_sqlite.py``.

Run as ``python tests/sqlite_worker.py MODE DB_PATH [ARG]``. Each mode sets up, prints ``ready``,
waits for a line on stdin (so the test can start every worker at the same moment, with no
sleeping), does its work and prints one JSON line with what it saw:

``load``
    records a known load through a Monitor (5000 requests, 500 of them 5xx, plus logins),
    flushing every 250 events, and reports its internal errors and drops.
``evaluate``
    records a 5xx spike on /media-upload from 30 users and runs one evaluation pass at a
    shared fake time, reporting what the pass opened and alerted.
``crash``
    loops forever, from N = ARG: writes a batch of buckets (one count each), saves incident
    ``crash-N`` and prints ``committed N`` once both are committed, until the test kills it.
``plan``
    saves :data:`WINDOW` and :data:`SILENCE`, and reports the ids of the windows and
    silences it then sees.
``notify``
    marks the alert of incident ARG notified at ``START + 1`` if no process has yet, and
    reports whether it was this one.
"""

from __future__ import annotations

import json
import sys

import anyio

from nextmonth_health import Monitor
from nextmonth_health.signals import REQUEST, Bucket
from nextmonth_health.sketch import user_hash
from nextmonth_health.store import SQLiteStore
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.values import (
    Incident,
    IncidentStatus,
    MaintenanceWindow,
    Severity,
    Silence,
    timestamp,
)

LOAD_EVENTS = 5000
LOAD_FLUSH_EVERY = 250
LOAD_ROUTES = ("/media-upload", "/bookings/1", "/portal/home", "/dashboard")
LOAD_USERS = 50
CRASH_BATCH = 200
WINDOW = MaintenanceWindow(
    id="deploy", site="shop", starts_at=timestamp(START), ends_at=timestamp(START + 1800), reason="v2", area="uploads"
)
SILENCE = Silence(
    id="known",
    site="shop",
    check="api_errors",
    key="/bookings",
    starts_at=timestamp(START),
    ends_at=timestamp(START + 3600),
    reason="on it",
)


def ready() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def report(monitor: Monitor, **extra: object) -> None:
    status = monitor.status()
    print(
        json.dumps(
            {
                "internal_errors": dict(status.internal_errors),
                "drops": dict(status.drops),
                "flushed": status.events_flushed,
                **extra,
            }
        ),
        flush=True,
    )


def load(db: str) -> None:
    clock = FakeClock()
    monitor = Monitor("shop", store=f"sqlite:///{db}", clock=clock, load_entrypoints=False)
    ready()
    for i in range(LOAD_EVENTS):
        user = f"u-{i % LOAD_USERS}"
        monitor.record_request(LOAD_ROUTES[i % len(LOAD_ROUTES)], 503 if i % 10 == 0 else 200, 0.05, user=user)
        if i % 5 == 0:
            monitor.record_login(ok=i % 15 != 0, user=user)
        if (i + 1) % LOAD_FLUSH_EVERY == 0:
            monitor.flush()
            clock.advance(1)
    monitor.flush()
    report(monitor)
    monitor.store.close()


def evaluate(db: str) -> None:
    clock = FakeClock()
    monitor = Monitor("shop", store=f"sqlite:///{db}", clock=clock, load_entrypoints=False)
    for user in range(30):
        monitor.record_request("/media-upload", 503, 0.2, user=f"u-{user}")
    clock.advance(15)
    ready()
    evaluation = anyio.run(monitor.evaluate)
    report(
        monitor,
        led=list(evaluation.sites),
        opened=[t.incident.id for t in evaluation.opened],
        alerts=len(evaluation.alerts),
    )
    monitor.store.close()


def crash(db: str, first: str = "0") -> None:
    store = SQLiteStore(f"sqlite:///{db}")
    ready()
    t0 = int(START)
    n = int(first)
    while True:
        batch = []
        for j in range(CRASH_BATCH):
            bucket = Bucket("crash", REQUEST, f"/k{j}", t0 + (n % 360) * 10)
            bucket.total = 1
            bucket.hist[j % 50] += 1
            bucket.users.add(user_hash(f"u-{n % 97}"))
            batch.append(bucket)
        store.write(batch)
        at = timestamp(START + n)
        store.save_incident(
            Incident(
                id=f"crash-{n}",
                site="crash",
                check="api_errors",
                area="uploads",
                key=f"/media-upload/{n}",
                severity=Severity.CRITICAL,
                status=IncidentStatus.OPEN,
                affected_users=n,
                opened_at=at,
                updated_at=at,
                summary="API Errors on /media-upload route",
            )
        )
        print(f"committed {n}", flush=True)
        n += 1


def plan(db: str) -> None:
    store = SQLiteStore(f"sqlite:///{db}")
    ready()
    store.save_maintenance(WINDOW)
    store.save_silence(SILENCE)
    windows, silences = store.maintenance_windows(), store.silences()
    print(json.dumps({"windows": [w.id for w in windows], "silences": [s.id for s in silences]}), flush=True)
    store.close()


def notify(db: str, incident_id: str) -> None:
    store = SQLiteStore(f"sqlite:///{db}")
    ready()
    won = store.mark_alert_notified(incident_id, expected=None, at=timestamp(START + 1))
    print(json.dumps({"won": won is not None}), flush=True)
    store.close()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"load": load, "evaluate": evaluate, "crash": crash, "plan": plan, "notify": notify}[mode](*args)
