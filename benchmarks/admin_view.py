"""The admin view for an agency: rendering the overview of 1,000 sites, per store.

For each store (``memory://``, ``sqlite:///<tmp>/bench.db``, ``redis://`` on a private
``redis-server``, set up by ``tick.stores()``), a fresh :class:`~nextmonth_health.Monitor`
on a ``FakeClock`` is given a day of history through the real ``record_*`` calls and
flushes (untimed): every one of 1,000 sites one request an hour on a critical route, and
twenty of them an outage of 503s in the last minutes, which one real evaluation pass turns
into twenty open critical incidents with their alerts. Then, through
``HealthApp.handle`` with a bearer token (authorisation, every store read, the Jinja2
render, the SVG charts — what the server does for one page view), each is timed several
times:

* **overview** — ``GET /admin/system-health/``: twenty sites needing attention as full
  cards (the first six with their 24-hour and 7-day charts), 980 calm ones one line each;
* **overview JSON** — ``GET /api/overview``, what an open page polls (its ETag's 304 is
  cheaper still);
* **one site** — ``GET /?site=…`` of a troubled site, every chart drawn;
* **one incident** — ``GET /incidents/{id}``, its readings at bucket resolution.

Goal: the overview of 1,000 sites in ≤ 300 ms (median, wall clock), on every store.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

import anyio
from _report import Goal, Row, Section
from tick import machine_note, machine_reference_us, quiet_logs, stores

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock

__all__ = ["run"]

SITES = 1000
TROUBLED = 20
GOAL_MS = 300.0
TOKEN = "bench-admin-token-0123456789"
PREFIX = "/admin/system-health"


def _site(n: int) -> str:
    return f"client-{n:04d}"


def _monitor(url: str) -> nmh.Monitor:
    """A day of one request an hour per site, then an outage at twenty sites, evaluated once."""
    clock = FakeClock(START - 86_400)
    monitor = nmh.Monitor(_site(0), store=url, clock=clock, load_entrypoints=False)
    for hour in range(24):
        for n in range(SITES):
            monitor.record_request("/bookings", 200, 0.12, user=f"u-{hour % 7}", site=_site(n))
        monitor.flush()
        clock.advance(3600 - 60 if hour == 23 else 3600)
    for minute in range(4):
        for n in range(0, SITES, SITES // TROUBLED):
            for i in range(6):
                monitor.record_request("/media-upload", 503, 0.2, user=f"u-{minute}-{i}", site=_site(n))
        monitor.flush()
        clock.advance(15)
    anyio.run(monitor.evaluate)
    return monitor


def _time(app: Any, request: Any, repeat: int) -> tuple[list[float], int]:
    """Wall-clock milliseconds of ``repeat`` calls (after one untimed), and the body's size."""
    response = app.handle(request)
    assert response.status == 200, (request.path, response.status, response.body[:200])
    times = []
    for _ in range(repeat):
        gc.collect()
        began = time.perf_counter()
        response = app.handle(request)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status == 200
    return times, len(response.body)


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def run(quick: bool = False) -> list[Section]:
    from nextmonth_health.web import HealthApp, Request
    from nextmonth_health.web.admin import admin_routes
    from nextmonth_health.web.auth import token_authorizer

    repeat = 5 if quick else 15
    reference = [machine_reference_us()]
    section = Section(
        f"admin view — HealthApp.handle(GET …) with {SITES:,} sites, {TROUBLED} of them with an open incident",
        ("median", "best", "worst", "body"),
    )
    bearer = {"authorization": f"Bearer {TOKEN}", "host": "127.0.0.1"}
    with quiet_logs(), stores() as specs:
        for spec in specs:
            if spec.url is None:
                section.rows.append(Row(f"{spec.name}: overview", ("n/a",), spec.reason))
                section.goals.append(
                    Goal(f"overview of {SITES:,} sites on {spec.name}", float("nan"), "<=", GOAL_MS, " ms")
                )
                continue
            began = time.perf_counter()
            monitor = _monitor(spec.url)
            prefill = time.perf_counter() - began
            try:
                app = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
                incidents = monitor.incidents()
                assert len([i for i in incidents if i.is_open]) == TROUBLED, f"{len(incidents)} incidents opened"
                troubled = incidents[0]
                pages = {
                    "overview": Request("GET", PREFIX + "/", "", bearer),
                    "overview JSON": Request("GET", PREFIX + "/api/overview", "", bearer),
                    "one site": Request("GET", PREFIX + "/", f"site={troubled.site}", bearer),
                    "one incident": Request("GET", f"{PREFIX}/incidents/{troubled.id}", "", bearer),
                }
                measured: dict[str, Any] = {"prefill_seconds": round(prefill, 1)}
                for name, request in pages.items():
                    times, size = _time(app, request, repeat)
                    median = statistics.median(times)
                    measured[name] = {
                        "median_ms": median,
                        "best_ms": min(times),
                        "worst_ms": max(times),
                        "bytes": size,
                        "samples": times,
                    }
                    section.rows.append(
                        Row(
                            f"{spec.name}: {name}",
                            (_ms(median), _ms(min(times)), _ms(max(times)), f"{size / 1000:.0f} kB"),
                            f"prefill {prefill:.0f} s" if name == "overview" else "",
                        )
                    )
                section.data[spec.name] = measured
                section.goals.append(
                    Goal(
                        f"overview of {SITES:,} sites on {spec.name}",
                        round(measured["overview"]["median_ms"], 1),
                        "<=",
                        GOAL_MS,
                        " ms",
                    )
                )
            finally:
                monitor.store.close()
                spec.reset()
    reference.append(machine_reference_us())
    section.notes.append(
        "server-side only: authorisation, store reads, the Jinja2 render and the SVG charts, in this "
        "thread (the middlewares run it in a worker thread under a one-second deadline)"
    )
    section.notes.append(machine_note(reference, "absolute goals are plain Python"))
    return [section]


if __name__ == "__main__":
    from _report import render

    print(render(run(quick="--quick" in __import__("sys").argv), "admin view"))
