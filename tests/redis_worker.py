"""One worker process sharing a Redis store, driven line by line by ``tests/test_store_redis.py``.

Run as ``python tests/redis_worker.py REDIS_URL``. It builds a Monitor for site ``shop`` on a
FakeClock at ``START``, prints ``ready``, then obeys one command per stdin line and answers
each with one JSON line (internal errors and drops always included), so the test decides
when every worker acts and never sleeps:

``load N FIRST_USER``
    records N requests over four routes (every twentieth a 503, all on /dashboard, which
    no check pages for) from 50 users ``u-FIRST_USER`` onwards, plus a successful login per
    five requests, flushing every 250 events.
``spike N FIRST_USER SECONDS``
    moves the clock to ``START + SECONDS`` and records one 503 on /media-upload for each
    of N users ``s-FIRST_USER`` onwards, then flushes.
``evaluate SECONDS``
    moves the clock to ``START + SECONDS`` and runs one pass: which sites it led, which
    incidents it opened, how many alerts it raised.
``release``
    gives up this worker's leadership of ``shop``.
``plan``
    saves :data:`WINDOW` and :data:`SILENCE`.
``planned``
    answers the windows and silences it sees, each as [id, ends_at in seconds].
``end ID SECONDS``
    ends maintenance window ID at ``START + SECONDS``.
``notify ID``
    marks the alert of incident ID notified at the clock's time, if no process has yet:
    ``won`` says whether it was this one.
``quit``
    closes the store and exits.

``python tests/redis_worker.py REDIS_URL fork N`` instead plays a pre-fork server
(gunicorn ``--preload``): it builds a Monitor for site ``forked``, uses it, forks N
children that each ``start()`` it, record 100 requests (every fourth a 503, ten users a
child) and ``stop()`` it, then records one more request itself and prints one JSON line
with the children's exit codes and its own internal errors and drops.
"""

from __future__ import annotations

import json
import os
import sys

import anyio

from nextmonth_health import Monitor
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.values import MaintenanceWindow, Silence, timestamp

LOAD_ROUTES = ("/media-upload", "/bookings/1", "/portal/home", "/dashboard")
LOAD_USERS = 50
LOAD_FLUSH_EVERY = 250
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


def main(url: str) -> None:
    clock = FakeClock()
    monitor = Monitor("shop", store=url, clock=clock, load_entrypoints=False)

    def answer(**extra: object) -> None:
        status = monitor.status()
        print(
            json.dumps({"internal_errors": dict(status.internal_errors), "drops": dict(status.drops), **extra}),
            flush=True,
        )

    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "load":
            n, first = int(args[0]), int(args[1])
            for i in range(n):
                user = f"u-{first + i % LOAD_USERS}"
                code = 503 if i % 20 == 3 else 200
                monitor.record_request(LOAD_ROUTES[i % len(LOAD_ROUTES)], code, 0.05, user=user)
                if i % 5 == 0:
                    monitor.record_login(ok=True, user=user)
                if (i + 1) % LOAD_FLUSH_EVERY == 0:
                    monitor.flush()
            monitor.flush()
            answer()
        elif command == "spike":
            n, first = int(args[0]), int(args[1])
            clock.set(START + float(args[2]))
            for i in range(n):
                monitor.record_request("/media-upload", 503, 0.2, user=f"s-{first + i}")
            monitor.flush()
            answer()
        elif command == "evaluate":
            clock.set(START + float(args[0]))
            evaluation = anyio.run(monitor.evaluate)
            answer(
                led=list(evaluation.sites),
                opened=[t.incident.id for t in evaluation.opened],
                alerts=len(evaluation.alerts),
            )
        elif command == "release":
            monitor.store.release_lease("leader:shop", monitor.evaluator.owner)
            answer()
        elif command == "plan":
            monitor.store.save_maintenance(WINDOW)
            monitor.store.save_silence(SILENCE)
            answer()
        elif command == "planned":
            answer(
                windows=[[w.id, w.ends_at.timestamp()] for w in monitor.store.maintenance_windows()],
                silences=[[s.id, s.ends_at.timestamp()] for s in monitor.store.silences()],
            )
        elif command == "end":
            monitor.store.end_maintenance(args[0], timestamp(START + float(args[1])))
            answer()
        elif command == "notify":
            won = monitor.store.mark_alert_notified(args[0], expected=None, at=timestamp(clock.now()))
            answer(won=won is not None)
        elif command == "quit":
            monitor.store.close()
            answer()
            return


def pre_fork(url: str, children: int) -> None:
    monitor = Monitor("forked", store=url, clock=FakeClock(), load_entrypoints=False)
    monitor.record_request("/bookings", 200, 0.1, user="parent")
    monitor.flush()  # the parent's pool now holds a connection its children must not share
    pids = []
    for n in range(children):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                monitor.start()  # the child's own background flusher
                for i in range(100):
                    http = 503 if i % 4 == 0 else 200
                    monitor.record_request("/bookings", http, 0.1, user=f"c{n}-{i % 10}")
                monitor.stop()
                health = monitor.status()
                code = 0 if not health.internal_errors and not health.drops else 2
            finally:
                os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    monitor.record_request("/bookings", 200, 0.1, user="parent")
    monitor.flush()
    status = monitor.status()
    errors, drops = dict(status.internal_errors), dict(status.drops)
    print(json.dumps({"children": codes, "internal_errors": errors, "drops": drops}))
    monitor.store.close()


if __name__ == "__main__":
    if sys.argv[2:3] == ["fork"]:
        pre_fork(sys.argv[1], int(sys.argv[3]))
    else:
        main(sys.argv[1])
