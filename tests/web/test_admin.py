"""The admin view through ``HealthApp.handle``: closed by default, signed in, escaped, CSRF-guarded."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import pytest

import nextmonth_health as nmh
from nextmonth_health.errors import ConfigError
from nextmonth_health.testing import FakeClock
from nextmonth_health.values import Health, Reading
from nextmonth_health.web import HealthApp, Request, Response
from nextmonth_health.web.admin import CONTENT_SECURITY_POLICY, admin_routes
from nextmonth_health.web.auth import SESSION_COOKIE, token_authorizer
from nextmonth_health.web.csrf import CSRF_COOKIE

PREFIX = "/admin/system-health"
TOKEN = "test-token-0123456789abcdef"
OTHER_TOKEN = "another-token-9876543210fedcba"
BEARER = {"authorization": f"Bearer {TOKEN}", "host": "127.0.0.1:8000"}
ALERT_TEXT = "Impact detected for 15 users"

XSS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "'><svg onload=window.__xss=1>",
    "</textarea></style><script>window.__xss=1</script>",
    "javascript:window.__xss=1",
    "{{7*7}}{% raw %}",
]
PLUGIN_SUBJECT = "<img src=x onerror=alert(1)>"


# Helpers -------------------------------------------------------------------------------


def build_monitor(clock: FakeClock, **kwargs: Any) -> nmh.Monitor:
    return nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False, **kwargs)


def evaluate(m: nmh.Monitor) -> None:
    """One evaluation pass in a worker thread: once the session's Playwright browser is up,
    its event loop counts as running in the main thread and ``anyio.run`` there fails."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, m.evaluate).result()


def open_incident(m: nmh.Monitor, clock: FakeClock, users: int = 15, site: str | None = None) -> None:
    """15 users hit 503s on /media-upload: one critical incident and its alert."""
    for i in range(users):
        m.record_request("/media-upload", 503, 0.2, user=f"u-{i}", site=site)
    clock.advance(15)
    evaluate(m)


def recover(m: nmh.Monitor, clock: FakeClock) -> None:
    """Healthy traffic until the incident resolves (window passes, then the cool-down)."""
    for _ in range(14):
        for i in range(40):
            m.record_request("/media-upload", 200, 0.1, user=f"u-{i}")
        clock.advance(60)
        evaluate(m)


def get(app: HealthApp, path: str, headers: dict[str, str] | None = None, query: str = "") -> Response:
    return app.handle(Request("GET", PREFIX + path, query, headers if headers is not None else dict(BEARER)))


def post(
    app: HealthApp, path: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None, form: bool = False
) -> Response:
    if isinstance(body, dict):
        if form:
            from urllib.parse import urlencode

            body = urlencode(body).encode()
        else:
            body = json.dumps(body).encode()
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    all_headers = {**(headers if headers is not None else BEARER), "content-type": content_type}
    return app.handle(Request("POST", PREFIX + path, "", all_headers, body))


def data(response: Response) -> Any:
    return json.loads(response.body)


def text(response: Response) -> str:
    return response.body.decode()


def cookie_value(response: Response, name: str) -> str | None:
    for key, value in response.headers:
        if key == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0].split("=", 1)[1]
    return None


class Tags(HTMLParser):
    """Every start tag and attribute of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


SAFE_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "link",
    "body",
    "header",
    "div",
    "h1",
    "h2",
    "h3",
    "p",
    "span",
    "form",
    "input",
    "button",
    "nav",
    "a",
    "main",
    "section",
    "article",
    "ul",
    "ol",
    "li",
    "figure",
    "figcaption",
    "svg",
    "desc",
    "line",
    "text",
    "path",
    "rect",
    "dl",
    "dt",
    "dd",
    "label",
    "time",
    "select",
    "option",
    "strong",
}


def assert_inert(html: str) -> Tags:
    """No inline script, no event handler, no inline style, only the tags the templates write;
    the one script is the admin view's own static file."""
    page = parse(html)
    assert not re.search(r"<script[^>]*>[^<]", html), "inline script"
    for tag, attrs in page.tags:
        if tag == "script":
            assert attrs == [("src", f"{PREFIX}/static/admin.js"), ("defer", None)], attrs
            continue
        assert tag in SAFE_TAGS, f"unexpected <{tag}> in the page"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name}={value!r} on <{tag}>"
            assert name != "style", f"inline style on <{tag}>"
            assert "javascript:" not in (value or "").lower() or name == "value", f"{name}={value!r}"
    return page


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monitor(clock: FakeClock, internal_errors: Callable[[Any], Any]) -> Iterator[nmh.Monitor]:
    m = build_monitor(clock)
    internal_errors(m)  # a 500 from a handler is a swallowed error, and fails the test
    yield m


@pytest.fixture
def app(monitor: nmh.Monitor, clock: FakeClock) -> HealthApp:
    open_incident(monitor, clock)
    return HealthApp(monitor, authorize=token_authorizer([TOKEN, OTHER_TOKEN]), admin_routes=admin_routes())


ROUTES = [
    ("GET", "/"),
    ("GET", "/api/alerts"),
    ("GET", "/api/incidents"),
    ("GET", "/api/trends"),
    ("POST", "/api/ack"),
    ("GET", "/api/maintenance"),
    ("POST", "/api/maintenance"),
    ("POST", "/api/maintenance/some-id/end"),
    ("GET", "/api/silences"),
    ("POST", "/api/silences"),
    ("POST", "/api/silences/some-id/end"),
    ("POST", "/ack"),
    ("POST", "/maintenance"),
    ("POST", "/maintenance/some-id/end"),
    ("POST", "/silences"),
    ("POST", "/silences/some-id/end"),
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("POST", "/signout"),
    ("GET", "/widget.js"),
    ("GET", "/static/admin.css"),
    ("GET", "/static/widget.css"),
]


# Closed by default -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_nothing_answers_without_an_authoriser(monitor: nmh.Monitor, method: str, path: str) -> None:
    closed = HealthApp(monitor, admin_routes=admin_routes())
    response = closed.handle(Request(method, PREFIX + path, "", dict(BEARER), b"{}"))
    assert response.status == 403
    assert ALERT_TEXT not in text(response)


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1] not in ("/signin", "/static/admin.css")])
def test_not_signed_in_is_401(app: HealthApp, method: str, path: str) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": f"Basic {TOKEN}"}):
        response = app.handle(Request(method, PREFIX + path, "", headers, b"{}"))
        assert response.status == 401, headers
        assert response.header("www-authenticate") == "Bearer"
        assert ALERT_TEXT not in text(response)


def test_an_authoriser_saying_no_is_403(monitor: nmh.Monitor) -> None:
    no = HealthApp(monitor, authorize=lambda request: False, admin_routes=admin_routes())
    assert get(no, "/").status == 403
    assert get(no, "/api/alerts").status == 403


def test_only_the_sign_in_form_and_its_stylesheet_are_open_to_the_token_authoriser(app: HealthApp) -> None:
    anonymous = {"host": "127.0.0.1"}
    assert get(app, "/signin", headers=anonymous).status == 200
    assert get(app, "/static/admin.css", headers=anonymous).status == 200
    assert get(app, "/static/admin.css/x", headers=anonymous).status == 404
    assert get(app, "/static/widget.css", headers=anonymous).status == 401
    for lookalike in ("/incidents/signin", "/api/incidents/signin"):  # a route, not the open path
        assert get(app, lookalike, headers=anonymous).status == 401, lookalike


def test_the_sign_in_form_is_only_for_the_token_authoriser(monitor: nmh.Monitor) -> None:
    host = HealthApp(monitor, authorize=lambda request: True, admin_routes=admin_routes())
    assert get(host, "/signin").status == 404


def test_tokens_must_be_long(monitor: nmh.Monitor) -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        token_authorizer("short")
    with pytest.raises(ConfigError, match="at least one token"):
        token_authorizer([])
    with pytest.raises(ConfigError):
        token_authorizer(" padded-token-0123456789 ")


def test_without_the_web_extra_the_admin_routes_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(ConfigError, match=re.escape("pip install nextmonth-health[web]")):
        admin_routes()


def test_every_admin_route_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "admin.md").read_text(encoding="utf-8")
    table = docs[docs.index("## Routes") :]
    for route in admin_routes():
        assert f"`{route.path}`" in table, f"docs/admin.md does not list {route.path}"
    assert CONTENT_SECURITY_POLICY in docs


# Signed in -----------------------------------------------------------------------------


def test_the_page_shows_the_alert_with_a_bearer_token(app: HealthApp) -> None:
    response = get(app, "/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    html = text(response)
    assert "System health" in html
    assert ALERT_TEXT in html
    assert "API Errors on /media-upload route have exceeded safe thresholds." in html
    assert "acme-studio" in html
    assert "1 open incident" in html
    assert 'class="chip chip-rose">critical<' in html
    assert "1 unread alert" in html


@pytest.mark.parametrize(
    "path", ["/", "/api/alerts", "/api/incidents", "/api/trends", "/widget.js", "/static/admin.css"]
)
def test_admin_responses_carry_the_security_headers(app: HealthApp, path: str) -> None:
    response = get(app, path)
    assert response.status == 200
    assert response.header("content-security-policy") == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.header("x-frame-options") == "DENY"
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("cache-control") == "no-store"


def test_the_page_has_no_inline_script_or_style(app: HealthApp) -> None:
    html = text(get(app, "/"))
    page = assert_inert(html)
    assert html.count("<script") == 1 and "style=" not in html and "<style" not in html
    stylesheets = [dict(attrs).get("href") for tag, attrs in page.tags if tag == "link"]
    assert stylesheets == ["data:,", f"{PREFIX}/static/admin.css"]
    script = get(app, "/static/admin.js")
    assert script.status == 200 and script.header("content-type") == "text/javascript; charset=utf-8"


def test_static_files_are_served_with_their_types(app: HealthApp) -> None:
    js = get(app, "/widget.js")
    assert js.header("content-type") == "text/javascript; charset=utf-8"
    assert b'customElements.define("nmh-health-alerts"' in js.body
    assert b"innerHTML" not in js.body  # alert texts go in through textContent only
    css = get(app, "/static/admin.css")
    assert css.header("content-type") == "text/css; charset=utf-8" and b".alert" in css.body


def test_the_api_lists_alerts_with_the_unread_count_and_a_csrf_token(app: HealthApp) -> None:
    body = data(get(app, "/api/alerts"))
    assert body["unread"] == 1
    assert body["csrf"]
    [alert] = body["alerts"]
    assert ALERT_TEXT in alert["message"]
    assert (alert["site"], alert["check"], alert["key"], alert["area"]) == (
        "acme-studio",
        "api_errors",
        "/media-upload",
        "uploads",
    )
    assert alert["active"] and alert["unread"] and alert["acknowledged_at"] is None
    assert alert["affected_users"] == 15
    assert data(get(app, "/api/alerts", query="site=elsewhere")) | {"csrf": ""} == {
        "site": "elsewhere",
        "unread": 0,
        "csrf": "",
        "dashboard": f"{PREFIX}/",
        "alerts": [],
    }


def test_the_page_says_which_sites_are_still_learning_their_normal(app: HealthApp, clock: FakeClock) -> None:
    monitor = app.monitor
    assert monitor.learning(), "the app fixture's site has only the outage it opened"
    page = text(get(app, "/"))
    assert "Learning what normal looks like here" in page
    assert "15 users affected since it opened, 15 in the last 5 min" in page
    for _ in range(65):
        for i in range(20):
            monitor.record_request("/portal", 200, 0.1, user=f"p{i}")
        clock.advance(60)
    evaluate(monitor)
    assert not monitor.learning()
    assert "Learning what normal looks like" not in text(get(app, "/"))


def test_the_api_lists_incidents(app: HealthApp) -> None:
    [incident] = data(get(app, "/api/incidents"))["incidents"]
    assert incident["summary"] == "API Errors on /media-upload route"
    assert (incident["severity"], incident["status"], incident["affected_users"]) == ("critical", "open", 15)
    assert incident["affected_now"] == 15
    assert data(get(app, "/api/incidents", query="site=acme-studio&resolved=0"))["incidents"][0]["id"] == incident["id"]


# Acknowledging ---------------------------------------------------------------------------


def test_acknowledging_without_the_csrf_token_is_refused(app: HealthApp, monitor: nmh.Monitor) -> None:
    [alert] = monitor.alerts()
    for headers in (BEARER, {**BEARER, "x-csrf-token": ""}, {**BEARER, "x-csrf-token": "forged.token.value"}):
        response = post(app, "/api/ack", {"id": alert.incident_id}, headers=headers)
        assert response.status == 403
    assert post(app, "/ack", {"id": alert.incident_id}, form=True).status == 403
    assert monitor.store.alerts()[0].acknowledged_at is None
    assert data(get(app, "/api/alerts"))["unread"] == 1


def test_a_csrf_token_is_bound_to_the_caller(app: HealthApp, monitor: nmh.Monitor) -> None:
    [alert] = monitor.alerts()
    theirs = data(get(app, "/api/alerts", headers={"authorization": f"Bearer {OTHER_TOKEN}"}))["csrf"]
    response = post(app, "/api/ack", {"id": alert.incident_id}, headers={**BEARER, "x-csrf-token": theirs})
    assert response.status == 403
    assert monitor.store.alerts()[0].acknowledged_at is None


def test_cross_site_posts_are_refused_even_with_a_token(app: HealthApp, monitor: nmh.Monitor) -> None:
    token = data(get(app, "/api/alerts"))["csrf"]
    headers = {**BEARER, "x-csrf-token": token, "sec-fetch-site": "cross-site"}
    assert post(app, "/api/ack", {"id": monitor.alerts()[0].incident_id}, headers=headers).status == 403


def test_acknowledging_through_the_api(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    [alert] = monitor.alerts()
    token = data(get(app, "/api/alerts"))["csrf"]
    response = post(app, "/api/ack", {"id": alert.incident_id}, headers={**BEARER, "x-csrf-token": token})
    assert response.status == 200
    body = data(response)
    assert body["unread"] == 0
    assert body["acknowledged"]["acknowledged_at"] == nmh.values.timestamp(clock.now()).isoformat()
    assert monitor.store.alerts()[0].acknowledged_at == nmh.values.timestamp(clock.now())
    assert data(get(app, "/api/alerts"))["unread"] == 0
    html = text(get(app, "/"))
    assert "All alerts read" in html and "Read just now" in html and "Mark as read" not in html
    unknown = post(app, "/api/ack", {"id": "no-such-alert"}, headers={**BEARER, "x-csrf-token": token})
    assert unknown.status == 404


def test_acknowledging_through_the_form_redirects_back(app: HealthApp, monitor: nmh.Monitor) -> None:
    html = text(get(app, "/"))
    fields = {dict(a).get("name"): dict(a).get("value") for t, a in parse(html).tags if t == "input"}
    assert fields["id"] == monitor.alerts()[0].incident_id and fields["csrf"]
    response = post(app, "/ack", {"csrf": fields["csrf"], "id": fields["id"], "site": "acme-studio"}, form=True)
    assert response.status == 303
    assert response.header("location") == f"{PREFIX}/?site=acme-studio"
    assert monitor.store.alerts()[0].acknowledged_at is not None
    assert data(get(app, "/api/alerts"))["unread"] == 0


def test_bad_bodies_are_refused(app: HealthApp, monitor: nmh.Monitor) -> None:
    token = data(get(app, "/api/alerts"))["csrf"]
    headers = {**BEARER, "x-csrf-token": token}
    assert post(app, "/api/ack", b"\xff\xfe", headers=headers).status == 400
    assert post(app, "/api/ack", b"[1, 2]", headers=headers).status == 400
    assert post(app, "/api/ack", b"x" * 10_000, headers=headers).status == 400
    assert post(app, "/api/ack", {"id": ""}, headers=headers).status == 400
    assert get(app, "/api/ack").status == 405
    assert monitor.store.alerts()[0].acknowledged_at is None


# Recent events ----------------------------------------------------------------------------


def test_resolved_incidents_stay_24_hours_then_leave(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    recover(monitor, clock)
    [incident] = monitor.incidents()
    assert incident.status == "resolved"
    html = text(get(app, "/"))
    assert "Resolved in the last 24 hours" in html
    assert "API Errors on /media-upload route" in html
    assert "No open incidents." in html and "All calm" in html
    assert data(get(app, "/api/alerts"))["unread"] == 0  # a resolved alert is no longer unread
    clock.advance(24 * 3600 + 60)
    html = text(get(app, "/"))
    assert "API Errors on /media-upload route" not in html
    assert "Nothing resolved recently." in html and "No alerts." in html
    assert data(get(app, "/api/incidents"))["incidents"] == []
    assert data(get(app, "/api/alerts"))["alerts"] == []


def test_the_monitor_itself_is_shown(
    app: HealthApp, monitor: nmh.Monitor, clock: FakeClock, internal_errors: Callable[[Any], Any]
) -> None:
    monitor.record_request("/media-upload", 999, 0.1)  # invalid: dropped and counted, never raised
    clock.advance(15)
    evaluate(monitor)
    html = text(get(app, "/"))
    assert "The monitor itself" in html
    assert "Dropped (" in html and "memory://" in html
    assert "last check just now" in html
    assert "a write the store refused" not in html
    assert "Store: memory:// keeps" not in html, "caveats are read when the monitor starts running"
    monitor.store_caveats = ("keeps <b>nothing</b> on disk",)
    assert "Store: keeps &lt;b&gt;nothing&lt;/b&gt; on disk" in text(get(app, "/"))

    def down(buckets: object, **options: object) -> None:
        raise ConnectionError("the store is down")

    monitor.store.write = down  # type: ignore[method-assign]
    swallowed = internal_errors(monitor)
    monitor.record_request("/media-upload", 503, 0.1)
    monitor.flush()
    assert "1 buckets of a write the store refused" in text(get(app, "/"))
    assert {where for where, _ in swallowed} == {"recorder.flush"}
    swallowed.clear()  # expected: the store is down


# Trends -----------------------------------------------------------------------------------


def test_trends_json_has_five_minute_points_with_their_worst_window(app: HealthApp) -> None:
    body = data(get(app, "/api/trends", query="site=acme-studio&check=api_errors&range=24h"))
    assert [s["key"] for s in body["series"]] == ["/media-upload", "/bookings", "/portal"]
    media = body["series"][0]
    assert (media["threshold"], media["threshold_label"], media["unit"]) == (0.25, "critical line", "ratio")
    points = media["points"]
    # Five-minute points as far back as the store keeps five-minute roll-ups (a day), hourly before.
    fine = [p for p in points if p["span"] == 300]
    assert len(fine) == 277 and fine[0]["t"] == "2026-01-04T10:00:00+00:00"  # now is 09:00:15
    assert [p["span"] for p in points] == [3600] + [300] * 277
    assert points[-1] == {"t": "2026-01-05T09:00:00+00:00", "span": 300, "value": 1.0, "worst": 1.0, "total": 15}
    assert all(p["value"] is None and p["worst"] is None for p in points[:-1])
    assert media["incidents"][0]["severity"] == "critical" and media["incidents"][0]["to"] is None
    week = data(get(app, "/api/trends", query="range=7d"))
    assert {s["check"] for s in week["series"]} == {
        "api_errors",
        "dashboard_load",
        "session_failures",
        "upload_failures",
    }
    assert all(len(s["points"]) == 168 and {p["span"] for p in s["points"]} == {3600} for s in week["series"])
    assert week["series"][0]["points"][-1] | {"t": ""} == {
        "t": "",
        "span": 3600,
        "value": 1.0,
        "worst": 1.0,
        "total": 15,
    }


def test_trends_reject_unknown_ranges_and_checks(app: HealthApp) -> None:
    assert get(app, "/api/trends", query="range=1y").status == 400
    assert get(app, "/api/trends", query="check=<script>").status == 400


def test_the_page_draws_svg_trends(app: HealthApp) -> None:
    html = text(get(app, "/"))
    assert html.count('<svg class="trend"') == 2  # /media-upload, 24 h and 7 d; the quiet checks fold away
    assert "<title>API error ratio on /media-upload — 24h</title>" in html
    assert 'class="trend-area"' in html or 'class="trend-dot"' in html
    assert "no traffic in the last 7 days" in html


# Escaping -------------------------------------------------------------------------------


class RegistersXssCheck:
    """A plugin whose check reports a problem named with markup."""

    class Check:
        name = "xss_probe"
        interval = None
        timeout = None

        def evaluate(self, view: nmh.SiteView) -> list[Reading]:
            return [
                Reading(
                    check=self.name,
                    site=view.site,
                    key=XSS[1],
                    area="portal",
                    status=Health.CRITICAL,
                    subject=PLUGIN_SUBJECT,
                    affected_users=3,
                )
            ]

    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(self.Check())


@pytest.fixture
def xss_app(clock: FakeClock, internal_errors: Callable[[Any], Any]) -> tuple[HealthApp, nmh.Monitor]:
    m = build_monitor(clock, plugins=[RegistersXssCheck()], critical_routes=["/media-upload", "/" + XSS[0]])
    internal_errors(m)
    for payload in XSS:
        m.record_request("/media-upload", 503, 0.2, user=payload, site=payload[:100])
        m.record_request("/" + XSS[0], 503, 0.2, user=payload)
    for i in range(15):
        m.record_request("/" + XSS[0], 503, 0.2, user=f"<b>u-{i}</b>")
    clock.advance(15)
    evaluate(m)
    return HealthApp(m, authorize=token_authorizer(TOKEN), admin_routes=admin_routes()), m


def test_request_derived_strings_render_inert_in_the_page(xss_app: tuple[HealthApp, nmh.Monitor]) -> None:
    app, m = xss_app
    assert {i.summary for i in m.incidents()} >= {PLUGIN_SUBJECT, f"API Errors on /{XSS[0]} route"}
    for query in ("", "site=" + XSS[0]):
        html = text(get(app, "/", query=query))
        page = assert_inert(html)
        shown = "".join(page.text)
        for payload in (*XSS, PLUGIN_SUBJECT):
            assert payload not in html or payload in ("javascript:window.__xss=1", "{{7*7}}{% raw %}")
        assert PLUGIN_SUBJECT in shown  # shown as text, exactly as the plugin wrote it
        assert XSS[0] in shown
    html = text(get(app, "/"))
    shown = "".join(parse(html).text)
    for payload in XSS:
        assert payload in shown, payload  # every site name is listed, as text
    assert "{{7*7}}{% raw %}" in shown  # data is never evaluated as a template


def test_the_site_filter_is_escaped(app: HealthApp) -> None:
    html = text(get(app, "/", query="site=%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E"))
    assert_inert(html)
    assert "<script>window.__xss=1</script>" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "Nothing has been recorded for this site yet." in html


def test_request_derived_strings_are_plain_strings_in_json(xss_app: tuple[HealthApp, nmh.Monitor]) -> None:
    app, _ = xss_app
    alerts = data(get(app, "/api/alerts"))["alerts"]
    assert {a["site"] for a in alerts} >= {p[:100] for p in XSS}
    assert any(PLUGIN_SUBJECT in a["message"] for a in alerts)
    incidents = data(get(app, "/api/incidents"))["incidents"]
    assert {"key": XSS[1], "summary": PLUGIN_SUBJECT}.items() <= next(
        i for i in incidents if i["check"] == "xss_probe"
    ).items()
    trends = data(get(app, "/api/trends", query="check=api_errors"))
    assert [s["key"] for s in trends["series"]] == ["/media-upload", "/" + XSS[0]]
    for response in (get(app, "/api/alerts"), get(app, "/api/incidents")):
        assert response.header("content-type") == "application/json; charset=utf-8"
        assert response.header("x-content-type-options") == "nosniff"


def test_the_ack_redirect_cannot_be_steered(app: HealthApp, monitor: nmh.Monitor) -> None:
    token = data(get(app, "/api/alerts"))["csrf"]
    site = "x\r\nset-cookie: a=b//evil.example"
    response = post(app, "/ack", {"csrf": token, "id": monitor.alerts()[0].incident_id, "site": site}, form=True)
    location = response.header("location") or ""
    assert response.status == 303 and location.startswith(f"{PREFIX}/?site=")
    assert "\r" not in location and "\n" not in location and "//" not in location


# Signing in with the form --------------------------------------------------------------------


def sign_in(app: HealthApp, token: str = TOKEN) -> tuple[Response, dict[str, str]]:
    host = {"host": "127.0.0.1:8000"}
    form = get(app, "/signin", headers=host)
    assert form.status == 200
    nonce = cookie_value(form, CSRF_COOKIE)
    assert nonce
    csrf = next(dict(a)["value"] for t, a in parse(text(form)).tags if t == "input" and dict(a).get("name") == "csrf")
    headers = {**host, "cookie": f"{CSRF_COOKIE}={nonce}"}
    return post(app, "/signin", {"csrf": csrf, "token": token}, headers=headers, form=True), headers


def test_signing_in_with_the_form(app: HealthApp) -> None:
    assert get(app, "/", headers={"host": "127.0.0.1:8000"}).status == 401
    response, headers = sign_in(app)
    assert response.status == 303 and response.header("location") == f"{PREFIX}/"
    set_cookie = response.header("set-cookie") or ""
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    assert all(part in set_cookie for part in ("HttpOnly", "SameSite=Strict", f"Path={PREFIX}"))
    assert "Secure" not in set_cookie  # plain HTTP on loopback; anywhere else the cookie is Secure
    session = cookie_value(response, SESSION_COOKIE)
    signed_in = {**headers, "cookie": f"{headers['cookie']}; {SESSION_COOKIE}={session}"}
    page = get(app, "/", headers=signed_in)
    assert page.status == 200 and ALERT_TEXT in text(page) and "Sign out" in text(page)
    assert get(app, "/signin", headers=signed_in).status == 303
    tampered = {**headers, "cookie": f"{SESSION_COOKIE}={session[:-2]}xx"}
    assert get(app, "/", headers=tampered).status == 401

    token = next(dict(a)["value"] for t, a in parse(text(page)).tags if t == "input" and dict(a).get("name") == "csrf")
    assert post(app, "/signout", {}, headers=signed_in, form=True).status == 403
    out = post(app, "/signout", {"csrf": token}, headers=signed_in, form=True)
    assert out.status == 303 and "Max-Age=0" in (out.header("set-cookie") or "")


def test_signing_in_needs_the_right_token_and_the_csrf_token(app: HealthApp) -> None:
    wrong, _ = sign_in(app, token="not-the-token-0123456789")
    assert wrong.status == 401 and "That token did not match." in text(wrong)
    assert wrong.header("set-cookie") is None or SESSION_COOKIE not in (wrong.header("set-cookie") or "")
    no_csrf = post(app, "/signin", {"token": TOKEN}, headers={"host": "127.0.0.1:8000"}, form=True)
    assert no_csrf.status == 403 and cookie_value(no_csrf, SESSION_COOKIE) is None


def test_cookies_are_secure_when_the_request_came_over_https(app: HealthApp) -> None:
    form = app.handle(Request("GET", PREFIX + "/signin", "", {"host": "127.0.0.1:8000"}, scheme="https"))
    assert "Secure" in (form.header("set-cookie") or ""), "behind a TLS proxy on localhost too"
    plain = get(app, "/signin", headers={"host": "admin.example.com"})
    assert "Secure" not in (plain.header("set-cookie") or ""), "a browser drops a Secure cookie sent over http"


def test_workers_with_the_same_tokens_accept_each_others_sessions_and_csrf_tokens(
    app: HealthApp, monitor: nmh.Monitor
) -> None:
    other_worker = HealthApp(monitor, authorize=token_authorizer([TOKEN, OTHER_TOKEN]), admin_routes=admin_routes())
    token = data(get(app, "/api/alerts"))["csrf"]
    response = post(
        other_worker, "/api/ack", {"id": monitor.alerts()[0].incident_id}, headers={**BEARER, "x-csrf-token": token}
    )
    assert response.status == 200


# A host's own authoriser -------------------------------------------------------------------


def test_a_host_authoriser_gets_csrf_through_a_nonce_cookie(monitor: nmh.Monitor, clock: FakeClock) -> None:
    open_incident(monitor, clock)
    seen: list[Any] = []

    def host_session(request: Request) -> bool | None:
        seen.append(request.native)
        return True if request.headers.get("x-host-session") == "admin" else None

    app = HealthApp(monitor, authorize=host_session, secret="shared-secret", admin_routes=admin_routes())
    headers = {"x-host-session": "admin", "host": "127.0.0.1"}
    assert get(app, "/", headers={}).status == 401
    first = get(app, "/api/alerts", headers=headers)
    nonce = cookie_value(first, CSRF_COOKIE)
    assert nonce and data(first)["csrf"]
    alert_id = monitor.alerts()[0].incident_id
    no_cookie = post(app, "/api/ack", {"id": alert_id}, headers={**headers, "x-csrf-token": data(first)["csrf"]})
    assert no_cookie.status == 403
    with_cookie = {**headers, "cookie": f"{CSRF_COOKIE}={nonce}", "x-csrf-token": data(first)["csrf"]}
    assert post(app, "/api/ack", {"id": alert_id}, headers=with_cookie).status == 200
    again = get(app, "/api/alerts", headers={**headers, "cookie": f"{CSRF_COOKIE}={nonce}"})
    assert cookie_value(again, CSRF_COOKIE) is None  # the browser keeps its nonce


def test_sites_needing_attention_come_first_and_calm_sites_are_one_line_each(
    monitor: nmh.Monitor, clock: FakeClock
) -> None:
    for n in range(8):
        monitor.record_request("/bookings", 200, 0.1, user="u-1", site=f"quiet-{n}")
    open_incident(monitor, clock, site="zz-troubled")
    app = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    html = text(get(app, "/"))
    headings = re.findall(r'<h2 id="site-\d+-title"><a href="[^"]*">([^<]*)</a></h2>', html)
    assert headings == ["zz-troubled"], "only the site needing attention gets a full card"
    calm = re.findall(r'<li><a href="([^"]*)">([^<]*)</a>', html)
    assert [name for _, name in calm] == ["acme-studio", *(f"quiet-{n}" for n in range(8))]
    assert (f"{PREFIX}/?site=quiet-7", "quiet-7") in calm
    assert "1 site needs attention</strong>" in html and "· 9 calm" in html
    one = text(get(app, "/", query="site=quiet-7"))
    assert "Show the trend graphs" not in one and "API error ratio on /bookings" in one
    assert "← All sites" in one

    # The filter: by name, and by state; the JSON twin lists the same sites in the same order.
    found = text(get(app, "/", query="q=QUIET-1"))
    assert re.findall(r'<h2 id="site-\d+-title"><a href="[^"]*">([^<]*)</a></h2>', found) == ["quiet-1"]
    assert "zz-troubled" not in found
    assert "1 of 10 shown" in found
    hurting = data(get(app, "/api/overview", query="show=attention"))
    assert [s["site"] for s in hurting["sites"]] == ["zz-troubled"] and hurting["unread"] == 1
    every = data(get(app, "/api/overview"))
    assert [s["site"] for s in every["sites"]][:2] == ["zz-troubled", "acme-studio"] and len(every["sites"]) == 10
    assert every["sites"][0] | {"alerts": [], "incidents": []} == {
        "site": "zz-troubled",
        "attention": True,
        "worst": "critical",
        "open": 1,
        "unread": 1,
        "alerts": [],
        "incidents": [],
    }
    assert "No site matches “nothing-like-it”." in text(get(app, "/", query="q=nothing-like-it"))


def test_a_few_sites_are_all_shown_in_full(monitor: nmh.Monitor, clock: FakeClock) -> None:
    monitor.record_request("/bookings", 200, 0.1, user="u-1", site="quiet")
    open_incident(monitor, clock, site="troubled")
    app = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    html = text(get(app, "/"))
    headings = re.findall(r'<h2 id="site-\d+-title"><a href="[^"]*">([^<]*)</a></h2>', html)
    assert headings == ["troubled", "acme-studio", "quiet"]
    assert html.count("Show the trend graphs for") == 0 and 'class="calm-list"' not in html
