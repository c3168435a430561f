"""The admin view in a real Chromium, served by a real uvicorn.

The HealthApp is mounted under a ten-line ASGI adapter written here, so these tests hold
the admin view to its promises on their own, whatever the middleware does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest
from playwright.sync_api import expect

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.values import Health, Reading
from nextmonth_health.web import HealthApp, Request
from nextmonth_health.web.admin import admin_routes
from nextmonth_health.web.auth import token_authorizer

from .conftest import CHROMIUM_ARGS

PREFIX = "/admin/system-health"
TOKEN = "browser-token-0123456789abcdef"
ALERT_TEXT = "Impact detected for 15 users"
XSS_SITE = "<script>window.__xss=1</script>"
XSS_SUBJECT = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_ROUTE = "/<svg onload=window.__xss=1>"

PANEL = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme admin panel</title>
<link rel="stylesheet" href="/panel.css"></head>
<body><header><h1>Acme admin</h1><nmh-health-alerts></nmh-health-alerts></header>
<main><p>Bookings, clients and invoices live here.</p></main>
<script src="{PREFIX}/widget.js" defer></script></body></html>""".encode()
PANEL_CSS = b"""body { margin: 0; font-family: system-ui, sans-serif; background: #f7f7f8; }
header { display: flex; justify-content: space-between; align-items: center; padding: 12px 24px; background: #fff; border-bottom: 1px solid #e5e7eb; }
h1 { font-size: 18px; margin: 0; }
main { padding: 24px; color: #555; }"""
PANEL_CSP = "default-src 'self'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """This module's own Chromium, overriding the session-wide one.

    While Playwright's sync API is open it leaves an event loop marked as running in the
    main thread, so ``anyio.run`` / ``asyncio.run`` in every later test module would fail;
    closing it when this module ends keeps the rest of the suite unaffected.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def asgi(app: HealthApp) -> Callable[..., Any]:
    """The smallest ASGI app around a HealthApp, plus a host admin panel page at ``/panel``."""

    async def application(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            joiner = "; " if name == "cookie" else ", "
            headers[name] = (
                headers[name] + joiner + value.decode("latin-1") if name in headers else value.decode("latin-1")
            )
        if scope["path"] == "/panel":
            status, out, body_out = (
                200,
                [("content-type", "text/html; charset=utf-8"), ("content-security-policy", PANEL_CSP)],
                PANEL,
            )
        elif scope["path"] == "/panel.css":
            status, out, body_out = 200, [("content-type", "text/css")], PANEL_CSS
        elif scope["path"] == "/favicon.ico":
            status, out, body_out = 204, [], b""
        else:
            request = Request(
                scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers, body, None, scope
            )
            response = app.handle(request)
            status, out, body_out = response.status, list(response.headers), response.body
        await send(
            {"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in out]}
        )
        await send({"type": "http.response.body", "body": body_out})

    return application


def a_week_of_traffic(m: nmh.Monitor, clock: FakeClock) -> None:
    """Seven ordinary days, an hour at a time, so the trend graphs have something to say."""
    rng = random.Random(5)
    for hour in range(7 * 24):
        busy = 0.4 + 0.6 * max(0.0, 1 - abs((hour % 24) - 14) / 9)
        for i in range(int(30 * busy) + 3):
            user = f"u-{i}"
            m.record_request("/media-upload", 500 if rng.random() < 0.01 else 200, 0.1, user=user)
            m.record_request("/bookings/7", 200, 0.08, user=user)
            m.record_request("/portal/home", 503 if rng.random() < 0.004 else 200, 0.09, user=user)
            m.record_page_load("/dashboard", rng.uniform(0.9, 2.2) + (0.9 if hour % 24 in (9, 10) else 0), user=user)
            m.record_upload(rng.random() > 0.03, user=user)
            m.record_login(rng.random() > 0.05, user=user)
        m.flush()
        clock.advance(3600)


def evaluate(m: nmh.Monitor) -> None:
    """One evaluation pass, in a thread of its own: Playwright's sync API owns this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, m.evaluate).result()


def open_incident(m: nmh.Monitor, clock: FakeClock, site: str | None = None) -> None:
    for i in range(15):
        m.record_request("/media-upload", 503, 0.2, user=f"u-{i}", site=site)
    clock.advance(15)
    evaluate(m)


@pytest.fixture
def monitor(internal_errors: Callable[[Any], Any]) -> nmh.Monitor:
    clock = FakeClock(START - 7 * 86_400)
    m = nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False)
    internal_errors(m)
    a_week_of_traffic(m, clock)
    open_incident(m, clock)
    return m


@pytest.fixture
def base(monitor: nmh.Monitor, serve_asgi: Callable[[Any], str]) -> str:
    return serve_asgi(asgi(HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())))


def watch(page: Any) -> dict[str, list[str]]:
    """Collect dialogs (answered at once) and console errors (a CSP violation is one)."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: seen["errors"].append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    return seen


def sign_in(page: Any, base: str, screenshot: Path | None = None) -> None:
    page.goto(f"{base}{PREFIX}/signin")
    page.get_by_label("Admin token").fill(TOKEN)
    if screenshot:
        page.screenshot(path=str(screenshot))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{PREFIX}/")


def test_the_dashboard_shows_the_alert_and_soft_trends(page: Any, base: str, artifacts: Path) -> None:
    seen = watch(page)
    page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
    response = page.goto(f"{base}{PREFIX}")
    assert response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    page.get_by_role("heading", name="System health").wait_for()
    assert page.get_by_text(ALERT_TEXT).is_visible()
    assert page.locator(".pill-unread").inner_text() == "1 unread alert"
    assert page.locator("svg.trend").count() >= 10  # every check with traffic, over 24 h and 7 days
    assert page.locator("svg.trend path.trend-area").count() >= 10
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 248)"  # CSS loaded
    page.screenshot(path=str(artifacts / "admin-dashboard.png"), full_page=True)
    assert seen == {"dialogs": [], "errors": []}


def test_without_credentials_the_admin_view_is_closed(
    page: Any, base: str, monitor: nmh.Monitor, serve_asgi: Callable[[Any], str]
) -> None:
    for path in ("", "/api/alerts", "/api/trends", "/widget.js", "/static/widget.css"):
        response = page.goto(f"{base}{PREFIX}{path}")  # a person opening it: sent to sign in
        assert page.url == f"{base}{PREFIX}/signin?next={PREFIX}{path}", path
        assert response.status == 200 and ALERT_TEXT not in page.content()
        script = page.request.get(f"{base}{PREFIX}{path}", headers={"accept": "application/json"})
        assert script.status == 401 and script.json() == {"error": "sign in required"}, path
    closed = serve_asgi(asgi(HealthApp(monitor, admin_routes=admin_routes())))
    page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
    for path in ("", "/signin", "/api/alerts", "/widget.js"):
        response = page.goto(f"{closed}{PREFIX}{path}")
        assert response.status == 403, path
        assert ALERT_TEXT not in page.content()


def test_sign_in_then_acknowledge_with_the_form(page: Any, base: str, monitor: nmh.Monitor, artifacts: Path) -> None:
    seen = watch(page)
    sign_in(page, base, screenshot=artifacts / "admin-signin.png")
    assert page.get_by_text(ALERT_TEXT).is_visible()
    assert page.locator(".alert.is-unread").count() == 1
    page.get_by_role("button", name="Mark as read").click()
    page.wait_for_load_state()
    assert page.url == f"{base}{PREFIX}/"
    assert page.locator(".pill-calm").inner_text() == "All alerts read"
    assert page.locator(".alert.is-unread").count() == 0
    assert page.get_by_text("Read just now").is_visible()
    assert monitor.store.alerts()[0].acknowledged_at is not None
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}{PREFIX}/signin")
    assert seen == {"dialogs": [], "errors": []}
    page.goto(f"{base}{PREFIX}/")
    assert page.url == f"{base}{PREFIX}/signin?next={PREFIX}/", "signed out: the page asks to sign in again"


def test_the_widget_in_a_host_admin_panel(page: Any, base: str, monitor: nmh.Monitor, artifacts: Path) -> None:
    seen = watch(page)
    sign_in(page, base)
    page.goto(f"{base}/panel")
    widget = page.locator("nmh-health-alerts")
    expect(widget).to_have_attribute("data-state", "ready")  # the panel's CSP forbids wait_for_function's eval
    assert widget.get_attribute("data-unread") == "1"
    badge = widget.get_by_role("button", name="System health: 1 unread alert")
    assert badge.inner_text().split() == ["System", "health", "1"]
    badge.click()
    assert widget.get_by_text(ALERT_TEXT).is_visible()
    page.screenshot(path=str(artifacts / "admin-widget.png"))
    widget.get_by_role("button", name="Mark as read").click()
    expect(widget).to_have_attribute("data-unread", "0")
    assert widget.locator(".count").is_hidden()
    assert widget.get_by_role("button", name="System health: all calm").is_visible()
    assert monitor.store.alerts()[0].acknowledged_at is not None
    assert seen == {"dialogs": [], "errors": []}


class XssCheck:
    name = "xss_probe"
    interval = None
    timeout = None

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        return [
            Reading(check=self.name, site=view.site, key="", area="portal", status=Health.CRITICAL, subject=XSS_SUBJECT)
        ]


class RegistersXssCheck:
    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(XssCheck())


def test_xss_payloads_stay_text(
    page: Any, serve_asgi: Callable[[Any], str], internal_errors: Callable[[Any], Any]
) -> None:
    clock = FakeClock()
    m = nmh.Monitor(
        "acme-studio",
        store="memory://",
        clock=clock,
        load_entrypoints=False,
        plugins=[RegistersXssCheck()],
        critical_routes=["/media-upload", XSS_ROUTE],
    )
    internal_errors(m)
    for i in range(15):
        m.record_request(XSS_ROUTE, 503, 0.2, user=f'<img src=x onerror="window.__xss=1">{i}')
    open_incident(m, clock, site=XSS_SITE)
    base = serve_asgi(asgi(HealthApp(m, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())))
    seen = watch(page)
    page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
    for url in (f"{PREFIX}/", f"{PREFIX}/?site=%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E", "/panel"):
        page.goto(base + url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__xss") == "undefined", url
        assert page.locator("script:not([src])").count() == 0
    page.locator("nmh-health-alerts").get_by_role("button", name="System health: 4 unread alerts").click()
    assert page.locator("nmh-health-alerts").get_by_text(XSS_SUBJECT, exact=False).first.is_visible()
    page.goto(f"{base}{PREFIX}/")
    text = page.locator("main").inner_text()
    for payload in (XSS_SITE, XSS_SUBJECT, f"API Errors on {XSS_ROUTE} route"):
        assert payload in text, payload
    assert page.locator("main img, main svg[onload]").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert seen == {"dialogs": [], "errors": []}
