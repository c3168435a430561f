"""A real HTTP receiver on loopback that answers with scripted statuses, headers and delays."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from attrs import define, field


@define
class Reply:
    status: int = 200
    headers: dict[str, str] = field(factory=dict)
    delay: float = 0.0


@define
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: Any


@define
class Receiver:
    """Answers POSTs with the scripted replies in order, then 200; records every request."""

    httpd: ThreadingHTTPServer
    script: deque[Reply] = field(factory=deque)
    received: list[Received] = field(factory=list)
    released: threading.Event = field(factory=threading.Event)
    lock: threading.Lock = field(factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def reply(self, *statuses: int, headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Script the next replies: one per status, each with these headers and delay."""
        self.script.extend(Reply(status, dict(headers or {}), delay) for status in statuses)

    def bodies(self) -> list[Any]:
        return [r.body for r in self.received]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_POST(self) -> None:
        state: Receiver = self.server.state  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"null")
        with state.lock:
            state.received.append(Received(time.monotonic(), self.path, dict(self.headers), body))
            reply = state.script.popleft() if state.script else Reply()
        if reply.delay:
            state.released.wait(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except ConnectionError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    state = Receiver(httpd)
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
