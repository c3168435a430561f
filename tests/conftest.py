"""Fixtures for every test: the anyio backends, real servers (Redis, WSGI) on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: ``redis_server`` (one private server for the session), ``redis_db``, ``durable_redis``,
#: ``redis_cluster`` and ``silent_server``; ``make_dist`` (an installed plugin distribution).
pytest_plugins = ["tests.redis_server", "tests.dists"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _memory_store_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Monitors built without ``store=`` use memory here; the SQLite default has its own test."""
    monkeypatch.setenv("NEXTMONTH_HEALTH_STORE", "memory://")


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], str]]:
    """Start a WSGI app under a real threaded wsgiref server on 127.0.0.1; returns its base URL."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    servers: list[Any] = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
