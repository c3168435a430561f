"""A real HTTP server on loopback whose paths answer with injected delays and statuses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import pytest
from attrs import define, field


@define
class Behaviour:
    status: int = 200
    delay: float = 0.0
    body: bytes = b"/* asset */" * 100


@define
class AssetServer:
    """Serves ``behaviours[path]`` (200 at once by default) and counts hits per path."""

    httpd: ThreadingHTTPServer
    behaviours: dict[str, Behaviour] = field(factory=dict)
    hits: dict[str, int] = field(factory=dict)
    released: threading.Event = field(factory=threading.Event)
    lock: threading.Lock = field(factory=threading.Lock)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    @property
    def netloc(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def set(self, path: str, **behaviour: object) -> None:
        self.behaviours[path] = Behaviour(**behaviour)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        state: AssetServer = self.server.state  # type: ignore[attr-defined]
        path = self.path.partition("?")[0]
        with state.lock:
            state.hits[path] = state.hits.get(path, 0) + 1
        behaviour = state.behaviours.get(path, Behaviour())
        if behaviour.delay:
            state.released.wait(behaviour.delay)
        try:
            self.send_response(behaviour.status)
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Content-Length", str(len(behaviour.body)))
            self.end_headers()
            self.wfile.write(behaviour.body)
        except ConnectionError:
            pass  # the probe gave up on us first: that is the point of the test

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@pytest.fixture
def asset_server() -> Iterator[AssetServer]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    state = AssetServer(httpd)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


class Stopwatch:
    def __enter__(self) -> Self:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


@pytest.fixture
def stopwatch() -> type[Stopwatch]:
    return Stopwatch
