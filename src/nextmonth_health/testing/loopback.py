"""A real HTTP server on 127.0.0.1 for plugin tests: the ``http_receiver`` fixture.

A plugin that talks HTTP (a probe fetching assets, a sink posting alerts) is best tested
against a real socket, so that timeouts, retries and headers are the library's, not a
mock's. The receiver answers any method; each path can have a standing reply
(:meth:`HttpReceiver.route`) and replies can be scripted in order (:meth:`HttpReceiver.reply`),
with statuses, headers and delays; every request is recorded. Delays end at teardown, so a
test that leaves a request hanging still finishes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from attrs import define, field, frozen

__all__ = ["HttpReceiver", "Received", "Reply", "serve_loopback"]


@frozen
class Reply:
    """What the receiver answers: a status, headers, a body, after ``delay`` seconds."""

    status: int = 200
    headers: Mapping[str, str] = field(factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"


@frozen
class Received:
    """One request as the receiver saw it; ``body`` is decoded JSON when it was JSON, else bytes."""

    at: float
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: HttpReceiver

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up mid-reply is what timeout tests are for


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        receiver = self.server.receiver
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = raw
        if raw and "json" in (self.headers.get("Content-Type") or ""):
            try:
                body = json.loads(raw)
            except ValueError:
                pass
        with receiver.lock:
            receiver.received.append(Received(time.monotonic(), self.command, path, query, dict(self.headers), body))
            reply = receiver.script.popleft() if receiver.script else receiver.routes.get(path, receiver.default)
        if reply.delay:
            receiver.released.wait(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except ConnectionError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


@define
class HttpReceiver:
    """The running server: where it is, what it will answer, and what it received."""

    httpd: _Server
    default: Reply = field(factory=Reply)
    routes: dict[str, Reply] = field(factory=dict)
    script: deque[Reply] = field(factory=deque)
    received: list[Received] = field(factory=list)
    released: threading.Event = field(factory=threading.Event)
    lock: threading.Lock = field(factory=threading.Lock)

    def url(self, path: str = "/") -> str:
        return f"http://{self.netloc}{path}"

    @property
    def netloc(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host!s}:{port}"

    def route(
        self,
        path: str,
        status: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        body: bytes = b"ok",
    ) -> None:
        """Answer every request for ``path`` this way (until changed), after any scripted replies."""
        self.routes[path] = Reply(status, dict(headers or {}), delay, body)

    def reply(self, *statuses: int, headers: Mapping[str, str] | None = None, delay: float = 0.0) -> None:
        """Script the next replies, whatever the path: one per status, each with these headers and delay."""
        self.script.extend(Reply(status, dict(headers or {}), delay) for status in statuses)

    @property
    def hits(self) -> Counter[str]:
        """Requests received per path."""
        return Counter(r.path for r in self.received)

    def bodies(self) -> list[Any]:
        return [r.body for r in self.received]


def serve_loopback() -> Iterator[HttpReceiver]:
    """Run an :class:`HttpReceiver` on an ephemeral port of 127.0.0.1 while the generator is open."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    receiver = httpd.receiver = HttpReceiver(httpd)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
