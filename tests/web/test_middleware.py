"""The ASGI and WSGI middlewares against real servers on loopback, and the three examples.

Starlette apps run under uvicorn, Flask and Django apps under a threaded wsgiref server;
requests go over real sockets with httpx. The middleware records a request after the app
has returned (ASGI) or the server has closed the response (WSGI) — a moment after the
client has its answer — so assertions wait for the recording (``wait_for``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

import nextmonth_health as nmh
from nextmonth_health import asgi, wsgi
from nextmonth_health.testing import FakeClock

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

Calls = list[tuple[str, int, float, str | None, str | None]]


def spy(monitor: nmh.Monitor) -> Calls:
    """Capture every record_request of ``monitor`` (install before building the middleware)."""
    calls: Calls = []
    real = monitor.record_request

    def record_request(
        route: str, status: int, duration: float, user: str | None = None, site: str | None = None
    ) -> None:
        calls.append((route, status, duration, user, site))
        real(route, status, duration, user, site)

    monitor.record_request = record_request  # type: ignore[method-assign]
    return calls


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the middleware to record")
        time.sleep(0.005)


#: A request nobody signed in to, as ``recorded`` shows it: the middleware passed the
#: client's address and user agent (this test client's), for the recorder to hash.
ANONYMOUS = "anonymous visitor"


def who(user: Any) -> Any:
    if type(user) is tuple:
        address, agent = user
        agent = agent.decode("latin-1") if isinstance(agent, bytes) else agent
        assert address == "127.0.0.1" and agent == f"python-httpx/{httpx.__version__}", user
        return ANONYMOUS
    return user


def recorded(calls: Calls, n: int) -> list[tuple[str, int, str | None]]:
    wait_for(lambda: len(calls) >= n)
    time.sleep(0.05)  # nothing more should arrive
    return [(route, status, who(user)) for route, status, _, user, _ in calls]


@pytest.fixture
def calls(monitor: nmh.Monitor) -> Calls:
    return spy(monitor)


# --- ASGI (Starlette under uvicorn) ----------------------------------------------------------


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


class Boom(Exception):
    pass


RAISED: list[BaseException] = []


async def booking(request: Request) -> Response:
    return PlainTextResponse(f"booking {request.path_params['id']}")


async def failing(request: Request) -> Response:
    RAISED.append(Boom("the app's own exception"))
    raise RAISED[-1]


async def broken_stream(request: Request) -> Response:
    async def body() -> Any:
        yield b"first part"
        raise Boom("mid-stream")

    return StreamingResponse(body())


async def item(request: Request) -> Response:
    return PlainTextResponse("item")


async def portal(request: Request) -> Response:
    request.state.user = "from-state"  # an app that knows its user only inside the view
    return PlainTextResponse("portal")


def starlette_site() -> Starlette:
    return Starlette(
        routes=[
            Route("/bookings/{id:int}", booking),
            Route("/media-upload", failing, methods=["POST"]),
            Route("/stream", broken_stream),
            Route("/portal/{page}", portal),
            Mount("/api", routes=[Route("/items/{item_id}", item)]),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=HeaderAuth())],
    )


def catching(app: Any, caught: list[BaseException]) -> Any:
    """An outer ASGI app that keeps whatever the middleware re-raises and answers 500."""

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, watch)
        except Exception as exc:
            caught.append(exc)
            if not started:
                await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return outer


def test_asgi_records_route_template_status_and_user(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor))
    with httpx.Client(base_url=base) as client:
        assert client.get("/bookings/123", headers={"x-user": "u-17"}).text == "booking 123"
        assert client.get("/bookings/7").status_code == 200
        assert client.get("/api/items/9").status_code == 200
        assert client.get("/nowhere/42").status_code == 404
        assert client.get("/portal/home").status_code == 200
    assert recorded(calls, 5) == [
        ("/bookings/{id:int}", 200, "u-17"),
        ("/bookings/{id:int}", 200, ANONYMOUS),
        ("/api/items/{item_id}", 200, ANONYMOUS),
        ("/nowhere/42", 404, ANONYMOUS),
        ("/portal/{page}", 200, "from-state"),
    ]
    assert all(0 < duration < 5 for _, _, duration, _, _ in calls)


def test_asgi_exception_is_recorded_as_500_and_reraised_untouched(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    caught: list[BaseException] = []
    base = serve_asgi(catching(asgi.HealthMiddleware(starlette_site(), monitor), caught))
    RAISED.clear()
    with httpx.Client(base_url=base) as client:
        assert client.post("/media-upload", headers={"x-user": "u-3"}).status_code == 500
    assert recorded(calls, 1) == [("/media-upload", 500, "u-3")]
    assert len(caught) == 1 and caught[0] is RAISED[0]
    assert caught[0].__traceback__ is not None and caught[0].args == ("the app's own exception",)


def test_asgi_exception_after_the_response_started_is_a_500(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    caught: list[BaseException] = []
    base = serve_asgi(catching(asgi.HealthMiddleware(starlette_site(), monitor), caught))
    with httpx.Client(base_url=base) as client:
        assert client.get("/stream").status_code == 200  # the status line had gone out already
    assert recorded(calls, 1) == [("/stream", 500, ANONYMOUS)]
    assert isinstance(caught[0], Boom) and caught[0].args == ("mid-stream",)


def test_asgi_custom_user_route_and_site(monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]) -> None:
    def user(scope: Any) -> str | None:
        return dict(scope["headers"]).get(b"x-member", b"").decode() or None

    middleware = asgi.HealthMiddleware(
        starlette_site(),
        monitor,
        user=user,
        route=lambda scope: "/custom" + scope["path"],
        site=lambda scope: "tenant-" + dict(scope["headers"]).get(b"x-tenant", b"x").decode(),
    )
    base = serve_asgi(middleware)
    with httpx.Client(base_url=base) as client:
        client.get("/bookings/1", headers={"x-member": "m-1", "x-tenant": "a"})
    wait_for(lambda: len(calls) == 1)
    assert calls[0][0] == "/custom/bookings/1" and calls[0][1] == 200 and calls[0][3:] == ("m-1", "tenant-a")


def test_asgi_a_broken_user_extractor_never_breaks_the_request(
    fake_clock: FakeClock, serve_asgi: Callable[[Any], str]
) -> None:
    monitor = nmh.Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
    calls = spy(monitor)

    def user(scope: Any) -> str:
        raise RuntimeError("the host's extractor is buggy")

    base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor, user=user))
    with httpx.Client(base_url=base) as client:
        assert client.get("/bookings/5").status_code == 200
    assert recorded(calls, 1) == [("/bookings/5", 200, ANONYMOUS)]
    assert monitor.status().internal_errors == {"asgi.middleware": 1}


def test_asgi_long_or_odd_users_are_made_recordable(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    users = iter(["x" * 300, 42, ""])
    base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor, user=lambda scope: next(users)))
    with httpx.Client(base_url=base) as client:
        for _ in range(3):
            client.get("/bookings/1")
    got = [user for _, _, user in recorded(calls, 3)]
    assert got[0] is not None and len(got[0]) <= 200 and got[1:] == ["42", ANONYMOUS]
    anyio.run(monitor.evaluate)
    assert monitor.status().drops.get("invalid", 0) == 0


def test_asgi_sdk_endpoints_are_served_and_not_recorded(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor, prefix="/_nmh"))
    with httpx.Client(base_url=base) as client:
        notices = client.get("/_nmh/notices", params={"area": "uploads"})
        assert notices.status_code == 200 and notices.json() == {"notices": []}
        assert (
            client.get(
                "/_nmh/notices", params={"area": "uploads"}, headers={"if-none-match": notices.headers["etag"]}
            ).status_code
            == 304
        )
        head = client.head("/_nmh/static/overlay.js")
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 1000
        body = json.dumps({"page": "/dashboard", "seconds": 1.5, "session": "browser-0001"})
        assert client.post("/_nmh/beacon", content=body, headers={"content-type": "text/plain"}).status_code == 204
        assert client.get("/admin/system-health/").status_code in (401, 403)
        assert client.get("/_nmh").status_code == 404
        client.get("/bookings/1")
    assert recorded(calls, 1) == [("/bookings/{id:int}", 200, ANONYMOUS)]


def test_asgi_beacon_body_limit_over_the_wire(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor))
    big = b'{"page": "/dashboard", "seconds": 1.5, "session": "browser-0001", "pad": "' + b"x" * 4000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    with httpx.Client(base_url=base) as client:
        assert client.post("/health/beacon", content=big, headers={"content-type": "text/plain"}).status_code == 413
        chunked = client.post("/health/beacon", content=chunks(), headers={"content-type": "text/plain"})
        assert chunked.status_code == 413
    assert monitor.status().buffered == 0 and calls == []


def test_rate_limit_uses_the_peer_unless_proxies_are_trusted(
    monitor: nmh.Monitor, serve_asgi: Callable[[Any], str], serve_wsgi: Callable[[Any], str]
) -> None:
    body = json.dumps({"page": "/dashboard", "seconds": 1.5, "session": "browser-0001"})
    headers = {"content-type": "text/plain"}
    over_asgi = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor, beacon_burst=2))
    direct = serve_wsgi(wsgi.HealthMiddleware(raw_wsgi, monitor, beacon_burst=2))
    proxied = serve_wsgi(wsgi.HealthMiddleware(raw_wsgi, monitor, beacon_burst=2, trusted_proxies=1))

    def send(base: str, forwarded: bool) -> list[int]:
        return [
            client.post(
                f"{base}/health/beacon",
                content=body,
                headers={**headers, "x-forwarded-for": f"203.0.113.{n}"} if forwarded else headers,
            ).status_code
            for n in range(3)
        ]

    with httpx.Client() as client:
        assert send(over_asgi, forwarded=False) == [204, 204, 429]
        assert send(direct, forwarded=True) == [204, 204, 429]  # a client cannot pick its own address
        assert send(proxied, forwarded=True) == [204, 204, 204]  # ... unless a trusted proxy says so


def test_asgi_websocket_scopes_pass_through(monitor: nmh.Monitor, calls: Calls) -> None:
    """(The lifespan scope runs the monitor: tests/web/test_lifespan.py.)"""
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = asgi.HealthMiddleware(inner, monitor)

    async def main() -> None:
        async def receive() -> Any:
            return {"type": "websocket.connect"}

        async def send(message: Any) -> None:
            pass

        await middleware({"type": "websocket", "path": "/health/notices", "headers": []}, receive, send)

    anyio.run(main)
    assert seen == ["websocket"] and calls == []


def test_asgi_app_that_never_responds_counts_as_500(monitor: nmh.Monitor, calls: Calls) -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    async def main() -> None:
        async def nothing(*args: Any) -> Any:
            return {"type": "http.disconnect"}

        await asgi.HealthMiddleware(silent, monitor)(
            {"type": "http", "path": "/portal", "method": "GET", "headers": []}, nothing, nothing
        )

    anyio.run(main)
    assert [(c[0], c[1]) for c in calls] == [("/portal", 500)]


def test_default_route_and_user_read_what_starlette_leaves() -> None:
    route = Route("/bookings/{id}", booking)
    assert asgi.default_route({"path": "/bookings/1", "route": route}) == "/bookings/{id}"
    assert asgi.default_route({"path": "/x", "route": Mount("/static", routes=[])}) == "/x"
    mounted = {
        "path": "/v1/api/items/3",
        "route": Route("/items/{id}", item),
        "root_path": "/v1/api",
        "app_root_path": "/v1",
    }
    assert asgi.default_route(mounted) == "/api/items/{id}"
    assert asgi.default_user({"user": SimpleUser("ann")}) == "ann"
    assert asgi.default_user({"user": "bob"}) == "bob"
    assert asgi.default_user({"state": {"user": "cy"}}) == "cy"
    assert asgi.default_user({"state": {"user": 5}}) is None
    assert asgi.default_user({}) is None


# --- WSGI (Flask and Django under wsgiref) -----------------------------------------------------


def flask_site() -> Any:
    from flask import Flask, request

    app = Flask("test_flask_site")

    @app.before_request
    def who() -> None:
        if request.headers.get("x-user"):
            request.environ[wsgi.USER_KEY] = request.headers["x-user"]

    @app.get("/bookings/<int:booking_id>")
    def booking_view(booking_id: int) -> str:
        return f"booking {booking_id}"

    @app.post("/media-upload")
    def upload() -> Any:
        raise Boom("flask view failed")

    return app


def test_wsgi_flask_route_template_status_and_user(
    monitor: nmh.Monitor, calls: Calls, serve_wsgi: Callable[[Any], str]
) -> None:
    app = flask_site()
    wsgi.instrument_flask(app, monitor)
    base = serve_wsgi(app)
    with httpx.Client(base_url=base) as client:
        assert client.get("/bookings/123", headers={"x-user": "u-17"}).text == "booking 123"
        assert client.post("/media-upload").status_code == 500  # Flask turns the exception into a 500 itself
        assert client.get("/nowhere").status_code == 404
    assert recorded(calls, 3) == [
        ("/bookings/<int:booking_id>", 200, "u-17"),
        ("/media-upload", 500, ANONYMOUS),
        ("/nowhere", 404, ANONYMOUS),
    ]


def raw_wsgi(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/raise":
        RAISED.append(Boom("raised by the WSGI app"))
        raise RAISED[-1]
    if path == "/raise-later":

        def body() -> Iterator[bytes]:
            yield b"part"
            raise Boom("raised while iterating")

        start_response("200 OK", [("content-type", "text/plain")])
        return body()
    if path == "/slow-stream":

        def slow() -> Iterator[bytes]:
            yield b"a"
            time.sleep(0.1)
            yield b"b"

        start_response("200 OK", [("content-type", "text/plain")])
        return slow()
    start_response("201 Created", [("content-type", "text/plain")])
    return [b"made"]


def catching_wsgi(app: Any, caught: list[BaseException]) -> Any:
    def outer(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return _drain(app(environ, start_response))
        except Exception as exc:
            caught.append(exc)
            start_response("500 Internal Server Error", [("content-type", "text/plain")], sys.exc_info())
            return [b"caught"]

    return outer


def _drain(result: Any) -> list[bytes]:
    try:
        return list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def test_wsgi_exception_is_recorded_and_reraised_untouched(
    monitor: nmh.Monitor, calls: Calls, serve_wsgi: Callable[[Any], str]
) -> None:
    caught: list[BaseException] = []
    RAISED.clear()
    base = serve_wsgi(catching_wsgi(wsgi.HealthMiddleware(raw_wsgi, monitor), caught))
    with httpx.Client(base_url=base) as client:
        assert client.get("/raise").status_code == 500
        assert client.get("/raise-later").status_code == 500
        assert client.get("/made").status_code == 201
    assert recorded(calls, 3) == [
        ("/raise", 500, ANONYMOUS),
        ("/raise-later", 500, ANONYMOUS),
        ("/made", 201, ANONYMOUS),
    ]
    assert caught[0] is RAISED[0]
    assert isinstance(caught[1], Boom) and caught[1].args == ("raised while iterating",)


def test_wsgi_streaming_response_is_timed_to_its_end(
    monitor: nmh.Monitor, calls: Calls, serve_wsgi: Callable[[Any], str]
) -> None:
    base = serve_wsgi(wsgi.HealthMiddleware(raw_wsgi, monitor))
    with httpx.Client(base_url=base) as client:
        assert client.get("/slow-stream").text == "ab"
    wait_for(lambda: len(calls) == 1)
    assert calls[0][:2] == ("/slow-stream", 200) and calls[0][2] >= 0.1


def test_wsgi_sdk_endpoints(monitor: nmh.Monitor, calls: Calls, serve_wsgi: Callable[[Any], str]) -> None:
    base = serve_wsgi(wsgi.HealthMiddleware(raw_wsgi, monitor))
    with httpx.Client(base_url=base) as client:
        notices = client.get("/health/notices", params={"area": "uploads"})
        assert notices.json() == {"notices": []} and notices.headers["cache-control"] == "public, max-age=5"
        assert client.get("/health/notices").status_code == 400
        assert (
            client.get(
                "/health/notices", params={"area": "uploads"}, headers={"if-none-match": notices.headers["etag"]}
            ).status_code
            == 304
        )
        static = client.get("/health/static/overlay.css")
        assert static.status_code == 200 and static.headers["content-type"].startswith("text/css")
        head = client.head("/health/static/overlay.css")
        assert head.content == b"" and head.headers["content-length"] == str(len(static.content))
        body = json.dumps({"page": "/dashboard", "seconds": 1.5, "session": "browser-0001"})
        assert client.post("/health/beacon", content=body, headers={"content-type": "text/plain"}).status_code == 204
        assert (
            client.post("/health/beacon", content=b"x" * 5000, headers={"content-type": "text/plain"}).status_code
            == 413
        )
        assert (
            client.post(
                "/health/beacon", content=body, headers={"content-type": "text/plain", "origin": "https://evil.example"}
            ).status_code
            == 403
        )
    assert calls == []


def test_wsgi_default_route_and_user() -> None:
    assert wsgi.default_route({"PATH_INFO": "/a/1"}) == "/a/1"
    assert wsgi.default_route({"PATH_INFO": "/a/1", wsgi.ROUTE_KEY: "/a/<id>"}) == "/a/<id>"
    assert wsgi.default_user({"REMOTE_USER": "ann"}) == "ann"
    assert wsgi.default_user({wsgi.USER_KEY: "bob", "REMOTE_USER": "ann"}) == "bob"
    assert wsgi.default_user({}) is None


# --- routes with a method ------------------------------------------------------------------------


def payments_monitor(clock: FakeClock) -> nmh.Monitor:
    """A host that tells a payment provider's webhook POSTs apart from people on /payments."""
    return nmh.Monitor(
        "test-site",
        store="memory://",
        clock=clock,
        load_entrypoints=False,
        routes={"/payments": "payments", "POST /payments/webhook": "payments"},
        critical_routes=["/media-upload", "/bookings", "/portal", "POST /payments/webhook"],
    )


def keys_stored(monitor: nmh.Monitor) -> dict[str, int]:
    monitor.flush()
    found: dict[str, int] = {}
    for bucket in monitor.store.read(monitor.site, "request", 0, 10**10):
        found[bucket.key] = found.get(bucket.key, 0) + bucket.total
    return found


async def webhook(request: Request) -> Response:
    if request.method == "POST":
        await request.body()
        return PlainTextResponse("down", status_code=503 if request.headers.get("x-fail") else 200)
    return PlainTextResponse("a page about our webhook")


def test_asgi_a_route_with_a_method_counts_that_method_only(
    fake_clock: FakeClock, serve_asgi: Callable[[Any], str]
) -> None:
    monitor = payments_monitor(fake_clock)
    calls = spy(monitor)
    site = starlette_site()
    site.router.routes.append(Route("/payments/webhook", webhook, methods=["GET", "POST"]))
    base = serve_asgi(asgi.HealthMiddleware(site, monitor, start_monitor=False))
    with httpx.Client(base_url=base) as client:
        for n in range(12):
            headers = {"x-fail": "1", "x-user": f"shop-{n % 4}"} if n < 10 else {}
            client.post("/payments/webhook", content=b'{"event": "paid"}', headers=headers)
        for _ in range(20):
            assert client.get("/payments/webhook").status_code == 200
        assert client.get("/bookings/7").status_code == 200
        assert client.delete("/nowhere").status_code == 404
    assert recorded(calls, 34)[-3:] == [
        ("GET /payments/webhook", 200, ANONYMOUS),
        ("GET /bookings/{id:int}", 200, ANONYMOUS),
        ("DELETE /nowhere", 404, ANONYMOUS),
    ]
    assert calls[0][0] == "POST /payments/webhook"
    assert keys_stored(monitor) == {"POST /payments/webhook": 12, "/payments": 20, "/bookings": 1, "other": 1}
    evaluation = anyio.run(monitor.evaluate)
    [opened] = [t.incident for t in evaluation.opened]
    assert (opened.check, opened.key, opened.area) == ("api_errors", "POST /payments/webhook", "payments")
    assert monitor.status().drops == {}


def test_wsgi_a_route_with_a_method_counts_that_method_only(
    fake_clock: FakeClock, serve_wsgi: Callable[[Any], str]
) -> None:
    from flask import request

    monitor = payments_monitor(fake_clock)
    calls = spy(monitor)
    app = flask_site()

    @app.route("/payments/webhook", methods=["GET", "POST"])
    def flask_webhook() -> Any:
        return ("ok", 200) if request.method == "GET" else ("down", 503)

    wsgi.instrument_flask(app, monitor, start_monitor=False)
    base = serve_wsgi(app)
    with httpx.Client(base_url=base) as client:
        assert client.post("/payments/webhook", content=b"{}").status_code == 503
        assert client.get("/payments/webhook").status_code == 200
        assert client.get("/bookings/3").status_code == 200
    assert recorded(calls, 3) == [
        ("POST /payments/webhook", 503, ANONYMOUS),
        ("GET /payments/webhook", 200, ANONYMOUS),
        ("GET /bookings/<int:booking_id>", 200, ANONYMOUS),
    ]
    assert keys_stored(monitor) == {"POST /payments/webhook": 1, "/payments": 1, "/bookings": 1}


def test_a_custom_route_gets_the_method_unless_it_names_one(
    fake_clock: FakeClock, serve_wsgi: Callable[[Any], str], serve_asgi: Callable[[Any], str]
) -> None:
    monitor = payments_monitor(fake_clock)
    calls = spy(monitor)

    def route(scope_or_environ: Any) -> str:
        path = scope_or_environ.get("path") or scope_or_environ["PATH_INFO"]
        return "PUT /payments/webhook" if path == "/made" else path.replace("/raw", "/payments")

    wsgi_base = serve_wsgi(wsgi.HealthMiddleware(raw_wsgi, monitor, route=route, start_monitor=False))
    asgi_base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor, route=route, start_monitor=False))
    for base in (wsgi_base, asgi_base):
        with httpx.Client(base_url=base) as client:
            client.post("/raw/webhook")
            client.get("/made")
    assert [(r, s) for r, s, _ in recorded(calls, 4)] == [
        ("POST /payments/webhook", 201),
        ("PUT /payments/webhook", 201),
        ("POST /payments/webhook", 404),
        ("PUT /payments/webhook", 404),
    ]


class WebhookCheck:
    """A third party's check whose route no host lists: it declares it, method and all."""

    name = "webhook_failures"
    routes: ClassVar[dict[str, str]] = {"POST /payments/webhook": "payments"}

    def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        window = view.window("request", "POST /payments/webhook")
        status = "degraded" if window.bad >= 3 else "ok"
        return [nmh.Reading(self.name, view.site, "POST /payments/webhook", "payments", status, "Webhooks failing")]


class WebhookPlugin:
    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(WebhookCheck())


def test_a_plugins_method_route_is_recorded_by_the_middleware(
    fake_clock: FakeClock, serve_asgi: Callable[[Any], str]
) -> None:
    monitor = nmh.Monitor(
        "test-site", store="memory://", clock=fake_clock, load_entrypoints=False, plugins=[WebhookPlugin()]
    )
    site = starlette_site()
    site.router.routes.append(Route("/payments/webhook", webhook, methods=["GET", "POST"]))
    base = serve_asgi(asgi.HealthMiddleware(site, monitor, start_monitor=False))
    with httpx.Client(base_url=base) as client:
        for _ in range(3):
            assert client.post("/payments/webhook", headers={"x-fail": "1"}).status_code == 503
            assert client.get("/payments/webhook").status_code == 200
    wait_for(lambda: monitor.recorder.buffered == 6)
    assert keys_stored(monitor) == {"POST /payments/webhook": 3, "other": 3}
    evaluation = anyio.run(monitor.evaluate)
    assert [(t.incident.check, t.incident.area) for t in evaluation.opened] == [("webhook_failures", "payments")]


def test_without_a_method_route_nothing_is_recorded_with_a_method(
    monitor: nmh.Monitor, calls: Calls, serve_asgi: Callable[[Any], str]
) -> None:
    base = serve_asgi(asgi.HealthMiddleware(starlette_site(), monitor, start_monitor=False))
    with httpx.Client(base_url=base) as client:
        client.delete("/bookings/1")
    assert recorded(calls, 1) == [("/bookings/{id:int}", 405, ANONYMOUS)]


# --- the examples ---------------------------------------------------------------------------------


@pytest.fixture
def example_path() -> Iterator[None]:
    added = [str(EXAMPLES), str(EXAMPLES / "django_app")]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            sys.path.remove(entry)


def serve_example(
    kind: str, monitor: nmh.Monitor, serve_asgi: Callable[[Any], str], serve_wsgi: Callable[[Any], str]
) -> str:
    if kind == "starlette":
        import starlette_app

        return serve_asgi(starlette_app.create_app(monitor, visitors=0, faults=""))
    if kind == "flask":
        import flask_app

        return serve_wsgi(flask_app.create_app(monitor, visitors=0, faults=""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme.settings")
    from acme.views import make_application
    from django.core.wsgi import get_wsgi_application

    return serve_wsgi(make_application(get_wsgi_application(), monitor, visitors=0, faults=""))


@pytest.mark.parametrize("kind", ["starlette", "flask", "django"])
def test_example_runs_the_whole_story(
    kind: str,
    example_path: None,
    monitor: nmh.Monitor,
    calls: Calls,
    fake_clock: FakeClock,
    serve_asgi: Callable[[Any], str],
    serve_wsgi: Callable[[Any], str],
) -> None:
    base = serve_example(kind, monitor, serve_asgi, serve_wsgi)
    with httpx.Client(base_url=base) as client:
        for path in ("/", "/media-upload", "/bookings", "/bookings/42", "/portal", "/login", "/dashboard"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert '<script src="/health/static/overlay.js"' in page.text
        assert client.get("/_fault").json() == {"faults": []}
        assert client.post("/_fault", params={"uploads": "fail"}).json() == {"faults": ["uploads"]}
        for n in range(12):
            assert client.post("/media-upload", headers={"cookie": f"demo_user=person-{n}"}).status_code == 503
        wait_for(lambda: len(calls) >= 21)
        assert (
            "/bookings/<int:pk>"
            if kind == "django"
            else "/bookings/<int:booking_id>"
            if kind == "flask"
            else "/bookings/{id:int}"
        ) in {c[0] for c in calls}
        assert {c[3] for c in calls if c[:2] == ("/media-upload", 503)} == {f"person-{n}" for n in range(12)}
        fake_clock.advance(15)
        anyio.run(monitor.evaluate)
        [notice] = client.get("/health/notices", params={"area": "uploads"}).json()["notices"]
        assert notice["area"] == "uploads"
        assert client.get("/health/notices", params={"area": "bookings"}).json() == {"notices": []}
        import demo_site

        alerts = client.get(
            "/admin/system-health/api/alerts", headers={"authorization": f"Bearer {demo_site.ADMIN_TOKEN}"}
        )
        if alerts.status_code != 404:  # the admin view is there when the web extra is
            assert alerts.status_code == 200 and "Impact detected for 12 users." in alerts.text
        assert client.get("/admin/system-health/api/alerts").status_code in (401, 403)
        assert client.post("/_fault", params={"uploads": "ok"}).json() == {"faults": []}
