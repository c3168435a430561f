"""A hung store never stalls the host: a real Redis frozen with SIGSTOP under a real uvicorn.

While admin pages and API calls keep coming (each one waiting on Redis until its deadline),
the host's own ``GET /`` is timed on another connection: its latency must stay that of a
healthy host. The admin requests get a clear 503 "the store is not answering" within about
a second, and everything answers again once Redis is let go (SIGCONT).
"""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import nextmonth_health as nmh
from nextmonth_health.asgi import HealthMiddleware
from nextmonth_health.testing import FakeClock
from nextmonth_health.web import HealthApp, Request
from nextmonth_health.web.admin import admin_routes
from nextmonth_health.web.auth import token_authorizer

from ..redis_server import RedisServer, SilentServer

PREFIX = "/admin/system-health"
TOKEN = "hung-store-token-0123456789"
BEARER = {"authorization": f"Bearer {TOKEN}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture
def redis_alone() -> Iterator[RedisServer]:
    """A server of this test alone: it is frozen, so no other test may share it."""
    with RedisServer() as server:
        yield server


def host_latencies(base: str, seconds: float) -> list[float]:
    """The host's own route, timed back to back on one keep-alive connection."""
    found = []
    with httpx.Client(base_url=base, timeout=10) as client:
        client.get("/")  # the connection is open before timing starts
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            began = time.perf_counter()
            assert client.get("/").text == "host ok"
            found.append(time.perf_counter() - began)
            time.sleep(0.005)
    return found


def test_a_frozen_redis_costs_the_host_nothing_and_admins_get_a_clear_503(
    redis_alone: RedisServer,
    serve_asgi: Callable[[Any], str],
    artifacts: Path,
    internal_errors: Callable[[Any], Any],
) -> None:
    clock = FakeClock()
    monitor = nmh.Monitor("acme-studio", store=redis_alone.url(timeout=1), clock=clock, load_entrypoints=False)
    swallowed = internal_errors(monitor)
    for i in range(20):
        monitor.record_request("/media-upload", 200, 0.1, user=f"u-{i}")
    monitor.flush()

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("host ok")

    host = Starlette(routes=[Route("/", home)])
    base = serve_asgi(HealthMiddleware(host, monitor, authorize=token_authorizer(TOKEN), start_monitor=False))
    with httpx.Client(base_url=base, timeout=10, headers=BEARER) as admin:
        assert admin.get(f"{PREFIX}/").status_code == 200
        assert admin.get(f"{PREFIX}/api/alerts").status_code == 200
    healthy = host_latencies(base, 1.0)

    answers: list[tuple[str, int, float, str]] = []
    stop = threading.Event()

    def keep_asking(path: str, accept: str) -> None:
        with httpx.Client(base_url=base, timeout=10, headers={**BEARER, "accept": accept}) as client:
            while not stop.is_set():
                began = time.perf_counter()
                response = client.get(PREFIX + path)
                answers.append((path, response.status_code, time.perf_counter() - began, response.text))

    assert redis_alone.process is not None
    redis_alone.process.send_signal(signal.SIGSTOP)
    try:
        askers = [
            threading.Thread(target=keep_asking, args=(path, accept), daemon=True)
            for path, accept in (
                ("/", "text/html"),
                ("/api/alerts", "application/json"),
                ("/api/overview", "application/json"),
                ("/", "text/html"),
            )
        ]
        for t in askers:
            t.start()
        time.sleep(0.3)  # every asker is waiting on the frozen store
        frozen = host_latencies(base, 3.0)
        stop.set()
        for t in askers:
            t.join(10)
    finally:
        redis_alone.process.send_signal(signal.SIGCONT)

    report = {
        "healthy_ms": {
            "p50": 1000 * statistics.median(healthy),
            "p99": 1000 * percentile(healthy, 0.99),
            "n": len(healthy),
        },
        "frozen_ms": {
            "p50": 1000 * statistics.median(frozen),
            "p99": 1000 * percentile(frozen, 0.99),
            "max": 1000 * max(frozen),
            "n": len(frozen),
        },
        "admin_answers": len(answers),
        "admin_seconds": {"min": min(a[2] for a in answers), "max": max(a[2] for a in answers)},
    }
    (artifacts / "hung-store-latency.json").write_text(json.dumps(report, indent=2))
    print("hung store:", json.dumps(report))

    assert len(frozen) > 100
    assert percentile(frozen, 0.99) < 0.1, report  # on main it was ~1 s while two admin requests waited
    assert statistics.median(frozen) < 0.02, report
    assert len(answers) >= 8, report
    for path, status, seconds, text in answers:
        assert status == 503, (path, status, text[:200])
        assert 0.9 < seconds < 1.6, (path, seconds)  # the deadline: about a second, never the store's whole hang
        assert "not answering" in text
    pages = [a for a in answers if a[0] == "/"]
    assert pages and all("The store is not answering" in a[3] and "<!doctype html>" in a[3] for a in pages)
    assert all(json.loads(a[3]) == {"error": "the store is not answering"} for a in answers if a[0] != "/")

    # Let go, Redis answers again, and so does the admin view (its stuck threads are done).
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=base, timeout=10, headers=BEARER) as admin:
        while admin.get(f"{PREFIX}/api/alerts").status_code != 200:
            assert time.monotonic() < deadline, "the admin view did not come back after SIGCONT"
            time.sleep(0.1)
        assert admin.get(f"{PREFIX}/").status_code == 200
    assert {where for where, _ in swallowed} <= {"web.store"}, "the frozen store's timeouts, counted as the store's"
    swallowed.clear()
    monitor.store.close()


def test_a_wsgi_worker_gives_up_on_a_hung_store_after_the_deadline(
    silent_server: SilentServer,
    internal_errors: Callable[[Any], Any],
) -> None:
    monitor = nmh.Monitor("acme", store=silent_server.url(timeout=5), clock=FakeClock(), load_entrypoints=False)
    swallowed = internal_errors(monitor)
    app = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes(), deadline=0.5)
    began = time.monotonic()
    response = app.handle_in_thread(Request("GET", PREFIX + "/api/alerts", "", dict(BEARER)))
    assert 0.45 < time.monotonic() - began < 1.5, "half a second, though the store would keep it five"
    assert response.status == 503 and json.loads(response.body) == {"error": "the store is not answering"}
    assert response.header("content-security-policy") and response.header("retry-after") == "5"
    public = app.handle_in_thread(Request("GET", "/health/notices", "area=uploads"))
    assert public.status != 503, "public endpoints answer from memory, here and now"
    time.sleep(5)  # the abandoned call times out, and is counted as the store's
    assert {where for where, _ in swallowed} <= {"web.store"}
    swallowed.clear()
    monitor.store.close()


def test_the_deadline_is_a_setting_of_the_app() -> None:
    monitor = nmh.Monitor("acme", store="memory://", load_entrypoints=False)
    assert HealthApp(monitor).deadline.seconds == 1.0
    assert HealthApp(monitor, deadline=2.5).deadline.seconds == 2.5
    with pytest.raises(ValueError, match="positive"):
        HealthApp(monitor, deadline=0)
