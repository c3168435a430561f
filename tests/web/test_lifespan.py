"""The ASGI middleware runs the monitor through the server's lifespan, and stays out of the host's way.

Each test serves an app under a real uvicorn (in this process, ``lifespan="on"``) and stops
it as a server stops: the host's own startup and shutdown must run, their failures must
reach the server, a monitor the host already runs must not get a second loop, and one the
middleware started must be stopped (flushed) at shutdown.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import nextmonth_health as nmh
from nextmonth_health.asgi import HealthMiddleware
from nextmonth_health.signals import REQUEST
from nextmonth_health.testing import FakeClock

from .conftest import free_port


class Served:
    """A uvicorn server thread: its URL, whether it started, and how to stop it."""

    def __init__(self, server: Any, thread: threading.Thread, base: str) -> None:
        self.server = server
        self.thread = thread
        self.base = base

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "the server did not stop"


@pytest.fixture
def serve() -> Iterator[Callable[[Any], Served]]:
    import uvicorn

    running: list[Served] = []

    def start(app: Any) -> Served:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on"))
        server.ended = []

        def run() -> None:
            try:
                server.run()
            except BaseException as exc:  # a failed startup ends uvicorn with SystemExit(3)
                server.ended.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive():
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        served = Served(server, thread, f"http://127.0.0.1:{port}")
        running.append(served)
        return served

    yield start
    for served in running:
        if served.thread.is_alive():
            served.stop()


@pytest.fixture
def monitor(fake_clock: FakeClock, internal_errors: Callable[[Any], Any]) -> Iterator[nmh.Monitor]:
    m = nmh.Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)
    yield m
    m.stop()


async def hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("hello")


def site(lifespan: Any = None) -> Starlette:
    return Starlette(routes=[Route("/hello", hello)], lifespan=lifespan)


def requests_stored(monitor: nmh.Monitor) -> int:
    return sum(b.total for b in monitor.store.read("test-site", REQUEST, 0, 2**40))


def test_the_middleware_starts_the_monitor_after_the_hosts_startup_and_stops_it_after_its_shutdown(
    serve: Callable[[Any], Served], monitor: nmh.Monitor
) -> None:
    said: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        said.append(f"startup, monitor running: {monitor.is_running}")
        yield
        said.append(f"shutdown, monitor running: {monitor.is_running}")

    served = serve(HealthMiddleware(site(lifespan), monitor))
    assert served.server.started
    assert monitor.is_running and monitor._future is not None, "started in the background, once"
    assert httpx.get(served.base + "/hello").text == "hello"
    assert requests_stored(monitor) == 0, "still in the buffer: nothing has flushed on the still fake clock"
    served.stop()
    assert said == ["startup, monitor running: False", "shutdown, monitor running: True"]
    assert not monitor.is_running, "stopped at shutdown"
    assert requests_stored(monitor) == 1, "and flushed on the way out"


def test_a_monitor_the_host_runs_in_its_lifespan_gets_no_second_loop(
    serve: Callable[[Any], Served], monitor: nmh.Monitor
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with monitor.running():
            yield

    served = serve(HealthMiddleware(site(lifespan), monitor))
    assert monitor.is_running and monitor._future is None, "the host's loop, not a background thread"
    httpx.get(served.base + "/hello")
    assert monitor._future is None, "nor one started at the first request"
    served.stop()
    assert not monitor.is_running


def test_a_monitor_the_host_started_itself_is_left_to_it(serve: Callable[[Any], Served], monitor: nmh.Monitor) -> None:
    monitor.start()  # as a host that followed the old docs does
    served = serve(HealthMiddleware(site(), monitor))
    httpx.get(served.base + "/hello")
    served.stop()
    assert monitor.is_running, "the middleware stops only a loop it started"
    assert monitor.status().internal_errors == {}


def test_a_failing_host_startup_reaches_the_server_and_starts_nothing(
    serve: Callable[[Any], Served], monitor: nmh.Monitor
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        raise RuntimeError("the database is not there")
        yield  # pragma: no cover

    served = serve(HealthMiddleware(site(lifespan), monitor))
    served.thread.join(10)
    assert not served.server.started, "uvicorn refused to serve, as without the middleware"
    [ended] = served.server.ended
    assert isinstance(ended, SystemExit) and ended.code == 3  # uvicorn's STARTUP_FAILURE
    assert not monitor.is_running


def test_an_app_without_lifespan_support_gets_it_spoken_for_it(
    serve: Callable[[Any], Served], monitor: nmh.Monitor
) -> None:
    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("this app only handles HTTP")  # what Django's ASGI handler does
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    served = serve(HealthMiddleware(http_only, monitor))
    assert served.server.started and monitor.is_running
    assert httpx.get(served.base + "/hello").text == "ok"
    served.stop()
    assert not monitor.is_running and requests_stored(monitor) == 1


def test_start_monitor_false_leaves_it_alone(serve: Callable[[Any], Served], monitor: nmh.Monitor) -> None:
    served = serve(HealthMiddleware(site(), monitor, start_monitor=False))
    httpx.get(served.base + "/hello")
    assert not monitor.is_running
    served.stop()
