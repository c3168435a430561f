"""Who gets in, and how the admin view answers everyone else: sign-in redirects for people,
401 for scripts, throttled guessing, sign-out that sticks, headers on every answer."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock
from nextmonth_health.web import HealthApp, Request, Response
from nextmonth_health.web.admin import ADMIN_HEADERS, admin_routes
from nextmonth_health.web.auth import SESSION_COOKIE, token_authorizer
from nextmonth_health.web.csrf import CSRF_COOKIE
from nextmonth_health.web.http import TrustedProxies
from nextmonth_health.web.signin import safe_next

from .test_admin import cookie_value, parse

PREFIX = "/admin/system-health"
TOKEN = "access-token-0123456789abcdef"
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "host": "127.0.0.1:8000"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monitor(clock: FakeClock, internal_errors: Callable[[Any], Any]) -> nmh.Monitor:
    m = nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False)
    internal_errors(m)
    return m


@pytest.fixture
def app(monitor: nmh.Monitor) -> HealthApp:
    return HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())


def call(
    app: HealthApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    client: str = "203.0.113.7",
    query: str = "",
) -> Response:
    return app.handle(Request(method, PREFIX + path, query, headers, body, client))


def assert_admin_headers(response: Response) -> None:
    for name, value in ADMIN_HEADERS:
        assert response.header(name) == value, (response.status, name)
    assert response.header("x-content-type-options") == "nosniff"


def sign_in(
    app: HealthApp, token: str = TOKEN, next_: str | None = None, client: str = "203.0.113.7", scheme: str = "http"
) -> tuple[Response, dict[str, str]]:
    """The form as a browser fills it in: GET it (a CSRF nonce cookie), POST the token."""
    query = urlencode({"next": next_}) if next_ is not None else ""
    form = app.handle(Request("GET", PREFIX + "/signin", query, BROWSER, b"", client, scheme=scheme))
    nonce = cookie_value(form, CSRF_COOKIE)
    fields = {
        dict(a)["name"]: dict(a).get("value")
        for t, a in parse(form.body.decode()).tags
        if t == "input" and dict(a).get("type") == "hidden"
    }
    headers = {**BROWSER, "cookie": f"{CSRF_COOKIE}={nonce}", "content-type": "application/x-www-form-urlencoded"}
    body = urlencode({**fields, "token": token}).encode()
    return app.handle(Request("POST", PREFIX + "/signin", "", headers, body, client, scheme=scheme)), headers


# People are sent to sign in; scripts get 401 ----------------------------------------------------------


def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(app: HealthApp) -> None:
    response = call(app, "GET", "/incidents/abc", BROWSER, query="x=1")
    assert response.status == 303
    location = response.header("location") or ""
    assert location == f"{PREFIX}/signin?next={quote(PREFIX + '/incidents/abc?x=1', safe='/')}"
    assert_admin_headers(response)
    target = parse_qs(urlsplit(location).query)["next"][0]
    signed_in, _ = sign_in(app, next_=target)
    assert signed_in.status == 303 and signed_in.header("location") == f"{PREFIX}/incidents/abc?x=1"
    assert (signed_in.header("set-cookie") or "").startswith(f"{SESSION_COOKIE}=")


def test_scripts_keep_getting_401_json(app: HealthApp) -> None:
    for headers in (
        {},
        {"accept": "application/json"},
        {"accept": "*/*"},
        {"authorization": "Bearer nope-nope-nope-nope"},
    ):
        response = call(app, "GET", "/", headers)
        assert response.status == 401 and response.header("www-authenticate") == "Bearer"
        assert json.loads(response.body) == {"error": "sign in required"}
        assert_admin_headers(response)
    post = call(app, "POST", "/api/ack", BROWSER, b"{}")
    assert post.status == 401, "only page loads are redirected, never a POST"


def test_a_host_authoriser_with_no_sign_in_page_shows_a_page_not_json(monitor: nmh.Monitor) -> None:
    host = HealthApp(monitor, authorize=lambda request: None, admin_routes=admin_routes())
    response = call(host, "GET", "/", BROWSER)
    assert response.status == 401 and b"Sign in first" in response.body
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert_admin_headers(response)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/admin/system-health/",
        "/\\evil.example",
        "\\\\evil.example",
        "/admin/system-healthy/",
        "/admin/system-health/../../logout",
        "/admin/system-health/%2e%2e/%2E%2E/elsewhere",
        "/admin/system-health/%2F%2Fevil.example",
        "/admin/system-health/\r\nSet-Cookie: a=b",
        "/admin/system-health/\t/",
        "javascript:alert(1)",
        "/admin/system-health/#frag",
        "",
        "x" * 3000,
    ],
)
def test_next_only_ever_points_inside_the_admin_prefix(app: HealthApp, target: str) -> None:
    assert safe_next(app, target) == f"{PREFIX}/"
    response, _ = sign_in(app, next_=target)
    assert response.header("location") == f"{PREFIX}/"


@pytest.mark.parametrize("target", [f"{PREFIX}/", f"{PREFIX}/incidents/abc", f"{PREFIX}/?site=a%20b&q=x", PREFIX])
def test_next_inside_the_prefix_is_kept(app: HealthApp, target: str) -> None:
    assert safe_next(app, target) == target


# Guessing is throttled --------------------------------------------------------------------------------


def test_wrong_bearer_tokens_are_throttled_per_client(app: HealthApp, clock: FakeClock) -> None:
    wrong = {"authorization": "Bearer wrong-token-0123456789"}
    right = {"authorization": f"Bearer {TOKEN}"}
    statuses = [call(app, "GET", "/api/alerts", wrong).status for _ in range(300)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    throttled = call(app, "GET", "/api/alerts", right)
    assert throttled.status == 429, "refused before the token is compared: no faster guessing"
    assert throttled.header("retry-after") == "6" and json.loads(throttled.body) == {"error": "too many attempts"}
    assert_admin_headers(throttled)
    assert call(app, "GET", "/api/alerts", right, client="198.51.100.1").status == 200, "another client is not held up"
    clock.advance(6)
    assert call(app, "GET", "/api/alerts", right).status == 200
    assert call(app, "GET", "/api/alerts", wrong).status == 401
    assert call(app, "GET", "/api/alerts", wrong).status == 429


def test_wrong_tokens_in_the_sign_in_form_are_throttled(app: HealthApp, clock: FakeClock) -> None:
    statuses = [sign_in(app, token="not-the-token-0123456789")[0].status for _ in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    throttled, _ = sign_in(app)
    assert throttled.status == 429 and throttled.header("retry-after") == "6"
    assert b"Too many wrong tokens from here. Try again in 6 seconds." in throttled.body
    assert cookie_value(throttled, SESSION_COOKIE) is None
    assert_admin_headers(throttled)
    clock.advance(6)
    assert sign_in(app)[0].status == 303


# Signing out sticks -----------------------------------------------------------------------------------------


def session_headers(response: Response, headers: dict[str, str]) -> dict[str, str]:
    return {**BROWSER, "cookie": f"{headers['cookie']}; {SESSION_COOKIE}={cookie_value(response, SESSION_COOKIE)}"}


def csrf_of(app: HealthApp, headers: dict[str, str]) -> str:
    page = call(app, "GET", "/", headers)
    assert page.status == 200
    return next(
        dict(a)["value"] for t, a in parse(page.body.decode()).tags if t == "input" and dict(a).get("name") == "csrf"
    )


def sign_out(app: HealthApp, headers: dict[str, str]) -> Response:
    body = urlencode({"csrf": csrf_of(app, headers)}).encode()
    return call(app, "POST", "/signout", {**headers, "content-type": "application/x-www-form-urlencoded"}, body)


def test_signing_out_ends_the_session_everywhere(monitor: nmh.Monitor) -> None:
    worker_a = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    worker_b = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    laptop = session_headers(*sign_in(worker_a))
    phone = session_headers(*sign_in(worker_b, client="198.51.100.9"))
    assert call(worker_b, "GET", "/api/alerts", laptop).status == 200
    out = sign_out(worker_a, laptop)
    assert out.status == 303 and "Max-Age=0" in (out.header("set-cookie") or "")
    for worker in (worker_a, worker_b):
        for who in (laptop, phone):
            assert call(worker, "GET", "/api/alerts", {**who, "accept": "application/json"}).status == 401
    assert call(worker_a, "GET", "/api/alerts", {"authorization": f"Bearer {TOKEN}"}).status == 200
    again = session_headers(*sign_in(worker_b))
    assert call(worker_a, "GET", "/api/alerts", again).status == 200, "signing in again works"


def test_signing_out_sticks_across_processes_sharing_sqlite(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'health.db'}"
    one, two = (nmh.Monitor("acme", store=url, clock=clock, load_entrypoints=False) for _ in range(2))
    try:
        first = HealthApp(one, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
        second = HealthApp(two, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
        browser = session_headers(*sign_in(first))
        assert call(second, "GET", "/api/alerts", browser).status == 200
        assert sign_out(second, browser).status == 303
        assert call(first, "GET", "/api/alerts", {**browser, "accept": "application/json"}).status == 401
    finally:
        one.store.close()
        two.store.close()


# Headers on every answer, errors too ------------------------------------------------------------------------


def test_every_admin_answer_carries_the_security_headers(app: HealthApp, monitor: nmh.Monitor) -> None:
    answers = {
        401: call(app, "GET", "/api/alerts", {}),
        404: call(app, "GET", "/no-such-page", {"authorization": f"Bearer {TOKEN}"}),
        405: call(app, "DELETE", "/", {"authorization": f"Bearer {TOKEN}"}),
        413: call(app, "POST", "/api/ack", {"authorization": f"Bearer {TOKEN}"}, b"x" * 20_000),
        303: call(app, "GET", "/", BROWSER),
    }
    closed = HealthApp(monitor, admin_routes=admin_routes())
    answers[403] = call(closed, "GET", "/", {})
    for _ in range(11):
        answers[429] = call(app, "GET", "/", {"authorization": "Bearer wrong-token-0123456789"}, client="192.0.2.1")
    answers[413] = app.too_large(PREFIX + "/api/ack")
    for status, response in answers.items():
        assert response.status == status
        assert_admin_headers(response)
    public_404 = app.handle(Request("GET", "/health/nothing"))
    assert public_404.status == 404 and public_404.header("x-content-type-options") == "nosniff"
    assert public_404.header("content-security-policy") is None, "the public endpoints have their own rules"


def test_a_dead_store_is_a_clear_503(clock: FakeClock, internal_errors: Callable[[Any], Any]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    m = nmh.Monitor("acme", store=f"redis://127.0.0.1:{port}/0?timeout=0.5", clock=clock, load_entrypoints=False)
    swallowed = internal_errors(m)
    app = HealthApp(m, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    began = time.monotonic()
    page = call(app, "GET", "/", {**BROWSER, "authorization": f"Bearer {TOKEN}"})
    api = call(app, "GET", "/api/alerts", {"authorization": f"Bearer {TOKEN}"})
    assert time.monotonic() - began < 2
    assert page.status == 503 and b"The store is not answering" in page.body and page.header("retry-after")
    assert api.status == 503 and json.loads(api.body) == {"error": "the store is not answering"}
    for response in (page, api):
        assert_admin_headers(response)
    assert {where for where, _ in swallowed} == {"web.store"}
    swallowed.clear()  # expected: counted as the store's trouble, shown in the monitor's status
    m.store.close()


# Secure cookies from the request's scheme -----------------------------------------------------------------------


def test_the_scheme_comes_from_x_forwarded_proto_only_through_trusted_proxies() -> None:
    nobody = TrustedProxies()
    assert nobody.scheme("10.0.0.2", "http", "https") == "http"
    assert nobody.scheme("10.0.0.2", "https", None) == "https"
    ours = TrustedProxies(["10.0.0.0/8"])
    assert ours.scheme("10.0.0.2", "http", "https") == "https"
    assert ours.scheme("203.0.113.5", "http", "https") == "http", "a client's own header is not believed"
    assert ours.scheme("10.0.0.2", "http", "https, http") == "https", "the outermost proxy's entry"
    one_hop = TrustedProxies(1)
    assert one_hop.scheme("127.0.0.1", "http", "http, https") == "https", "the entry our proxy appended"


def test_the_session_cookie_is_secure_over_https_only(app: HealthApp) -> None:
    over_tls, _ = sign_in(app, scheme="https", client="192.0.2.50")
    assert "; Secure" in (over_tls.header("set-cookie") or "")
    plain, _ = sign_in(app, scheme="http", client="192.0.2.51")
    assert "Secure" not in (plain.header("set-cookie") or "")
    pinned = HealthApp(app.monitor, authorize=token_authorizer(TOKEN, secure_cookie=True), admin_routes=admin_routes())
    assert "; Secure" in (sign_in(pinned, scheme="http", client="192.0.2.52")[0].header("set-cookie") or "")
