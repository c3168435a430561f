"""The public endpoints through ``HealthApp.handle``: notices, the beacon, the overlay assets.

No server here (the middleware tests run real ones): these pin down what each endpoint
answers, what it refuses and what it records, on a fake clock.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock
from nextmonth_health.web.http import HealthApp, Request, Response, clean_user, client_address, etag_for, etag_matches
from nextmonth_health.web.public import BEACON_MAX_BYTES, PUBLIC_ASSETS, SessionBudget, TokenBuckets, build_health_app

HOST = "shop.example"
GOOD = {"page": "/dashboard", "seconds": 1.25, "session": "abcdefgh1234"}


@pytest.fixture
def app(monitor: nmh.Monitor) -> HealthApp:
    return build_health_app(monitor, sites=["second-site"], allowed_origins=["https://cdn.example"])


def get(app: HealthApp, path: str, query: str = "", **headers: str) -> Response:
    return app.handle(Request("GET", path, query, {k.replace("_", "-"): v for k, v in headers.items()}))


def beacon(
    app: HealthApp,
    body: Any = GOOD,
    *,
    client: str = "198.51.100.7",
    content_type: str = "text/plain;charset=UTF-8",
    origin: str | None = f"https://{HOST}",
    query: str = "",
    user: str | None = None,
    **headers: str,
) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"host": HOST, "content-type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if origin is not None:
        all_headers["origin"] = origin
    return app.handle(Request("POST", "/health/beacon", query, all_headers, raw, client=client, user=user))


def break_uploads(monitor: nmh.Monitor, clock: FakeClock, site: str | None = None) -> None:
    for i in range(20):
        monitor.record_upload(ok=i % 2 == 0, user=f"u-{i}", site=site)
    clock.advance(15)
    anyio.run(monitor.evaluate)


# --- notices ------------------------------------------------------------------------------


def test_notices_need_a_valid_area(app: HealthApp) -> None:
    assert get(app, "/health/notices").status == 400
    assert get(app, "/health/notices", "area=").status == 400
    assert get(app, "/health/notices", "area=%3Cscript%3E").status == 400
    assert get(app, "/health/notices", "area=" + "a" * 65).status == 400


def test_quiet_area_has_no_notices(app: HealthApp) -> None:
    response = get(app, "/health/notices", "area=uploads")
    assert response.status == 200
    assert json.loads(response.body) == {"notices": []}
    assert response.header("content-type") == "application/json; charset=utf-8"
    assert response.header("cache-control") == "public, max-age=5"
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("etag") == etag_for(response.body)


def test_notice_shows_words_only_and_only_at_its_area(
    app: HealthApp, monitor: nmh.Monitor, fake_clock: FakeClock
) -> None:
    break_uploads(monitor, fake_clock)
    body = json.loads(get(app, "/health/notices", "area=uploads").body)
    [notice] = body["notices"]
    assert set(notice) == {"area", "title", "message", "severity", "kind"}
    assert notice["area"] == "uploads" and notice["severity"] in ("degraded", "critical")
    assert notice["title"] and notice["message"]
    text = json.dumps(body)
    for internal in ("upload_failures", "test-site", "incident", "%", "5xx"):
        assert internal not in text
    assert not any(ch.isdigit() for ch in notice["title"] + notice["message"])
    assert json.loads(get(app, "/health/notices", "area=bookings").body) == {"notices": []}


def test_etag_turns_an_unchanged_answer_into_304(app: HealthApp, monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    first = get(app, "/health/notices", "area=uploads")
    etag = first.header("etag")
    assert etag is not None
    again = get(app, "/health/notices", "area=uploads", if_none_match=etag)
    assert (again.status, again.body, again.header("etag")) == (304, b"", etag)
    assert get(app, "/health/notices", "area=uploads", if_none_match=f'"other", W/{etag}').status == 304
    break_uploads(monitor, fake_clock)
    changed = get(app, "/health/notices", "area=uploads", if_none_match=etag)
    assert changed.status == 200 and changed.header("etag") != etag


def test_polling_does_not_hit_the_store_per_request(
    app: HealthApp, monitor: nmh.Monitor, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = monitor.store.incidents

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(monitor.store, "incidents", counting)
    for _ in range(200):
        assert get(app, "/health/notices", "area=uploads").status == 200
    assert len(calls) <= 1
    fake_clock.advance(2)
    for _ in range(200):
        get(app, "/health/notices", "area=portal")
    assert len(calls) <= 2


def test_site_comes_from_the_allow_list_only(app: HealthApp, monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    break_uploads(monitor, fake_clock, site="second-site")
    assert json.loads(get(app, "/health/notices", "area=uploads").body) == {"notices": []}
    assert len(json.loads(get(app, "/health/notices", "area=uploads&site=second-site").body)["notices"]) == 1
    # A site outside the allow-list falls back to the monitor's own site.
    assert json.loads(get(app, "/health/notices", "area=uploads&site=somewhere-else").body) == {"notices": []}


def test_cors_only_for_allowed_origins(app: HealthApp) -> None:
    allowed = get(app, "/health/notices", "area=uploads", origin="https://cdn.example")
    assert allowed.header("access-control-allow-origin") == "https://cdn.example"
    other = get(app, "/health/notices", "area=uploads", origin="https://evil.example")
    assert other.header("access-control-allow-origin") is None
    assert other.header("vary") == "origin"


def test_notices_are_get_only(app: HealthApp) -> None:
    assert app.handle(Request("POST", "/health/notices", "area=uploads")).status == 405


# --- beacon -------------------------------------------------------------------------------


def test_beacon_records_a_page_load(app: HealthApp, monitor: nmh.Monitor) -> None:
    response = beacon(app)
    assert (response.status, response.body) == (204, b"")
    assert monitor.status().buffered > 0
    assert beacon(app, content_type="application/json").status == 204


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"text"',
        b"[" * 1000 + b"]" * 1000,
        {"page": "/dashboard", "seconds": 1.2},
        {**GOOD, "extra": 1},
        {**GOOD, "page": "dashboard"},
        {**GOOD, "page": "/dash board"},
        {**GOOD, "page": "/dash\nboard"},
        {**GOOD, "page": "/" + "a" * 200},
        {**GOOD, "page": 7},
        {**GOOD, "seconds": 0},
        {**GOOD, "seconds": -1},
        {**GOOD, "seconds": 601},
        {**GOOD, "seconds": True},
        {**GOOD, "seconds": "1.2"},
        {**GOOD, "seconds": None},
        b'{"page": "/dashboard", "seconds": NaN, "session": "abcdefgh1234"}',
        b'{"page": "/dashboard", "seconds": Infinity, "session": "abcdefgh1234"}',
        {**GOOD, "session": "short"},
        {**GOOD, "session": "x" * 65},
        {**GOOD, "session": "has space 123"},
        {**GOOD, "session": "<img src=x>"},
        {**GOOD, "session": 12345678},
    ],
)
def test_beacon_rejects_what_does_not_fit_the_schema(app: HealthApp, monitor: nmh.Monitor, body: Any) -> None:
    response = beacon(app, body)
    assert response.status == 400
    assert monitor.status().buffered == 0
    assert b"<" not in response.body or b"<img" not in response.body


def test_beacon_body_limit(app: HealthApp, monitor: nmh.Monitor) -> None:
    padded = {**GOOD, "page": "/dashboard"}
    raw = json.dumps(padded).encode()
    big = raw + b" " * (BEACON_MAX_BYTES - len(raw) + 1)
    assert beacon(app, big).status == 413
    assert beacon(app, big[:BEACON_MAX_BYTES]).status == 204
    assert app.body_limit("/health/beacon") == BEACON_MAX_BYTES


def test_beacon_wants_json_or_text(app: HealthApp, monitor: nmh.Monitor) -> None:
    assert beacon(app, content_type="application/x-www-form-urlencoded").status == 415
    assert beacon(app, content_type="").status == 415
    assert monitor.status().buffered == 0


@pytest.mark.parametrize(
    ("origin", "headers", "status"),
    [
        (f"https://{HOST}", {}, 204),
        (f"http://{HOST}", {}, 204),
        ("https://cdn.example", {}, 204),
        ("https://cdn.example/", {}, 204),
        ("https://evil.example", {}, 403),
        (f"https://{HOST}.evil.example", {}, 403),
        ("null", {}, 403),
        (None, {}, 204),
        (None, {"sec_fetch_site": "cross-site"}, 403),
        (None, {"sec_fetch_site": "same-origin"}, 204),
    ],
)
def test_beacon_origin_allow_list(
    app: HealthApp, monitor: nmh.Monitor, origin: str | None, headers: dict[str, str], status: int
) -> None:
    assert beacon(app, origin=origin, **headers).status == status
    assert (monitor.status().buffered > 0) == (status == 204)


def test_forwarded_host_counts_only_behind_trusted_proxies(monitor: nmh.Monitor) -> None:
    direct = build_health_app(monitor)
    proxied = build_health_app(monitor, trusted_proxies=1)
    origin = "https://public.example"
    assert beacon(direct, origin=origin, x_forwarded_host="public.example").status == 403
    assert beacon(proxied, origin=origin, x_forwarded_host="public.example").status == 204


def test_beacon_rate_limit_per_client(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    app = build_health_app(monitor, beacon_burst=3, beacon_per_minute=6)
    assert [beacon(app).status for _ in range(3)] == [204, 204, 204]
    limited = beacon(app)
    assert limited.status == 429 and limited.header("retry-after") == "10"
    # Another address has its own allowance; new session ids buy the first nothing.
    assert beacon(app, client="203.0.113.9").status == 204
    assert beacon(app, {**GOOD, "session": "zzzzzzzz9999"}).status == 429
    fake_clock.advance(10)
    assert beacon(app).status == 204
    assert beacon(app).status == 429


def test_rejected_beacons_spend_the_allowance_too(monitor: nmh.Monitor) -> None:
    app = build_health_app(monitor, beacon_burst=2)
    assert beacon(app, b"junk").status == 400
    assert beacon(app, b"junk").status == 400
    assert beacon(app).status == 429


def slow_dashboard(app: HealthApp, clients: list[str], sessions_each: int) -> None:
    for client in clients:
        for n in range(sessions_each):
            session = f"{client.replace('.', '')}-session-{n}"
            assert beacon(app, {"page": "/dashboard", "seconds": 5.0, "session": session}, client=client).status == 204


def dashboard_incidents(monitor: nmh.Monitor, clock: FakeClock) -> list[nmh.Incident]:
    clock.advance(15)
    anyio.run(monitor.evaluate)
    return [i for i in monitor.incidents() if i.area == "dashboard"]


def test_one_client_cannot_fake_a_slow_dashboard(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    app = build_health_app(monitor, beacon_burst=50)
    slow_dashboard(app, ["198.51.100.7"], sessions_each=20)
    assert dashboard_incidents(monitor, fake_clock) == []
    assert monitor.notices("dashboard") == []


def test_slow_loads_from_several_clients_open_the_dashboard_incident(
    monitor: nmh.Monitor, fake_clock: FakeClock
) -> None:
    app = build_health_app(monitor)
    slow_dashboard(app, ["198.51.100.7", "198.51.100.8", "203.0.113.1"], sessions_each=3)
    [incident] = dashboard_incidents(monitor, fake_clock)
    assert incident.check == "dashboard_load" and incident.affected_users == 3


def test_the_apps_own_user_counts_as_itself(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    app = build_health_app(monitor)
    for n in range(9):
        body = {"page": "/dashboard", "seconds": 5.0, "session": "samesession1"}
        assert beacon(app, body, user=f"member-{n % 3}").status == 204
    [incident] = dashboard_incidents(monitor, fake_clock)
    assert incident.affected_users == 3


def test_beacon_site_from_the_allow_list(app: HealthApp, monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    for client in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        for n in range(3):
            body = {"page": "/dashboard", "seconds": 5.0, "session": f"s{client.replace('.', '')}{n}"}
            assert beacon(app, body, client=client, query="site=second-site").status == 204
    fake_clock.advance(15)
    anyio.run(monitor.evaluate)
    assert [i.site for i in monitor.incidents()] == ["second-site"]


def test_beacon_is_post_only(app: HealthApp) -> None:
    assert get(app, "/health/beacon").status == 405


# --- the limiter and the session budget -----------------------------------------------------


def test_token_buckets_refill_and_forget_the_oldest_client() -> None:
    buckets = TokenBuckets(burst=2, rate=1.0, max_clients=3)
    assert buckets.take("a", 0) == 0 and buckets.take("a", 0) == 0
    assert buckets.take("a", 0) == pytest.approx(1.0)
    assert buckets.take("a", 0.5) == pytest.approx(0.5)  # half a token has come back
    assert buckets.take("a", 1.0) == 0
    assert buckets.take("a", 1.0) == pytest.approx(1.0)
    for client in ("b", "c", "d"):
        buckets.take(client, 2.0)
    assert "a" not in buckets._buckets and len(buckets._buckets) == 3


def test_session_budget_folds_extra_sessions_into_the_first() -> None:
    budget = SessionBudget(per_client=2, window=600, max_clients=100)
    assert budget.identity("1.2.3.4", "first-session", 0) == "first-session"
    assert budget.identity("1.2.3.4", "second-session", 1) == "second-session"
    assert budget.identity("1.2.3.4", "third-session", 2) == "first-session"
    assert budget.identity("1.2.3.4", "second-session", 3) == "second-session"
    assert budget.identity("5.6.7.8", "third-session", 3) == "third-session"
    assert budget.identity("1.2.3.4", "third-session", 600) == "third-session"  # a new window


# --- static assets --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [("overlay.js", "text/javascript"), ("overlay.css", "text/css")])
def test_overlay_assets(app: HealthApp, name: str, kind: str) -> None:
    response = get(app, f"/health/static/{name}")
    assert response.status == 200
    assert response.header("content-type").startswith(kind)
    assert response.header("cache-control") == "public, max-age=86400"
    etag = response.header("etag")
    assert etag == etag_for(response.body)
    assert get(app, f"/health/static/{name}", if_none_match=etag).status == 304
    assert app.handle(Request("HEAD", f"/health/static/{name}")).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/health/static/",
        "/health/static/../public.py",
        "/health/static/%2e%2e/http.py",
        "/health/static/widget.js",
        "/health/static/admin.css",
        "/health/static/overlay.js/",
        "/health/nope",
    ],
)
def test_nothing_else_is_served_publicly(app: HealthApp, path: str) -> None:
    assert get(app, path).status == 404


def test_overlay_script_is_small_inert_and_csp_friendly(app: HealthApp) -> None:
    script = get(app, "/health/static/overlay.js").body.decode()
    assert len(script.encode()) < 6 * 1024
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        ".style",
        'setAttribute("style"',
    ):
        assert forbidden not in script, forbidden
    assert "textContent" in script and 'aria-live", "polite"' in script
    css = get(app, "/health/static/overlay.css").body.decode()
    assert "prefers-reduced-motion: reduce" in css and "pointer-events: none" in css
    assert PUBLIC_ASSETS == ("overlay.js", "overlay.css")


# --- helpers --------------------------------------------------------------------------------


def test_etag_matching() -> None:
    assert etag_matches('"a"', '"a"') and etag_matches('W/"a"', '"a"') and etag_matches('"b", "a"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches(None, '"a"') and not etag_matches('"b"', '"a"') and not etag_matches("", '"a"')


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("10.0.0.1", "203.0.113.5", 0, "10.0.0.1"),
        ("10.0.0.1", "203.0.113.5", 1, "203.0.113.5"),
        ("10.0.0.1", "6.6.6.6, 203.0.113.5", 1, "203.0.113.5"),
        ("10.0.0.1", "6.6.6.6, 203.0.113.5, 10.0.0.2", 2, "203.0.113.5"),
        ("10.0.0.1", "203.0.113.5", 3, "203.0.113.5"),
        ("10.0.0.1", " , ", 1, "10.0.0.1"),
        (None, None, 1, None),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, trusted: int, expected: str | None) -> None:
    assert client_address(peer, forwarded, trusted) == expected


def test_clean_user() -> None:
    assert clean_user("u-1") == "u-1" and clean_user(17) == "17"
    assert clean_user("") is None and clean_user(None) is None and clean_user(object()) is None
    long = clean_user("x" * 500)
    assert long is not None and len(long) <= 200 and long != clean_user("y" * 500)


def test_handle_enforces_the_route_limit_for_direct_callers(app: HealthApp) -> None:
    request = Request("POST", "/health/beacon", "", {"host": HOST}, b"x" * (BEACON_MAX_BYTES + 1))
    assert app.handle(request).status == 413


@pytest.mark.parametrize(
    "options",
    [
        {"beacon_burst": 0},
        {"beacon_per_minute": -1},
        {"sessions_per_client": 0},
        {"beacon_brust": 5},
        {"max_clients": True},
    ],
)
def test_bad_options_fail_at_start_up(monitor: nmh.Monitor, options: dict[str, Any]) -> None:
    with pytest.raises(nmh.ConfigError):
        build_health_app(monitor, **options)
