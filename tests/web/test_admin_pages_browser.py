"""Rob's journey in a real Chromium against a real uvicorn: sent to sign in and back to the
incident he was sent, the incident page, a page that updates itself, a store that stops
answering, the phone layout and the widget's link. Screenshots go to ``artifacts/`` in
pytest's temporary directory.

The host is a small Starlette app wrapped in the real ``HealthMiddleware``; the monitor
runs on a fake clock and is evaluated by the tests; pages poll every 0.3 s.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

import nextmonth_health as nmh
from nextmonth_health.asgi import HealthMiddleware
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.web.auth import token_authorizer

from ..redis_server import RedisServer
from .test_admin import evaluate
from .test_admin import open_incident as outage
from .test_admin_browser import a_week_of_traffic, watch

PREFIX = "/admin/system-health"
TOKEN = "pages-token-0123456789abcdef"
ALERT_TEXT = "Impact detected for 15 users"
UTC_TIME = r"\d{1,2} [A-Z][a-z]{2}, \d{2}:\d{2}(:\d{2})? UTC"
PANEL = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Panel</title></head>
<body><header><h1>Acme admin</h1><nmh-health-alerts></nmh-health-alerts></header>
<script src="{PREFIX}/widget.js" defer></script></body></html>"""


class Site:
    def __init__(self, monitor: nmh.Monitor, clock: FakeClock, base: str) -> None:
        self.monitor, self.clock, self.base = monitor, clock, base

    def url(self, path: str = "/") -> str:
        return f"{self.base}{PREFIX}{path}"


def serve(monitor: nmh.Monitor, serve_asgi: Callable[[Any], str]) -> str:
    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("host ok")

    async def panel(request: Any) -> HTMLResponse:
        return HTMLResponse(PANEL)

    host = Starlette(routes=[Route("/", home), Route("/panel", panel)])
    app = HealthMiddleware(host, monitor, authorize=token_authorizer(TOKEN), start_monitor=False)
    app.health.live_seconds = 0.3
    return serve_asgi(app)


@pytest.fixture
def site(internal_errors: Callable[[Any], Any], serve_asgi: Callable[[Any], str]) -> Site:
    clock = FakeClock(START - 7 * 86_400)
    m = nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False)
    internal_errors(m)
    a_week_of_traffic(m, clock)
    return Site(m, clock, serve(m, serve_asgi))


def sign_in_here(page: Page) -> None:
    """On the sign-in page: type the token, go where it sends us."""
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_sent_to_sign_in_and_back_to_the_incident(page: Page, site: Site, artifacts: Path) -> None:
    seen = watch(page)
    outage(site.monitor, site.clock)
    [incident] = site.monitor.incidents()
    page.goto(site.url(f"/incidents/{incident.id}"))
    assert page.url == site.url(f"/signin?next={PREFIX}/incidents/{incident.id}")
    expect(page.get_by_role("heading", name="System health")).to_be_visible()
    page.screenshot(path=str(artifacts / "admin-signin-redirect.png"))
    sign_in_here(page)
    assert page.url == site.url(f"/incidents/{incident.id}")
    expect(page.get_by_role("heading", name="API Errors on /media-upload route", level=1)).to_be_visible()
    assert seen == {"dialogs": [], "errors": []}


def test_the_incident_page(page: Page, site: Site, artifacts: Path) -> None:
    seen = watch(page)
    outage(site.monitor, site.clock)
    [incident] = site.monitor.incidents()
    page.goto(site.url("/"))
    sign_in_here(page)
    page.get_by_role("link", name="What happened").click()
    page.wait_for_url(site.url(f"/incidents/{incident.id}"))
    expect(page.get_by_role("heading", name="What happened when")).to_be_visible()
    events = page.locator("ol.timeline li")
    assert events.count() == 2
    assert re.fullmatch(
        UTC_TIME + r" Opened as critical: the admin is alerted\.", events.nth(0).inner_text().replace("\n", " ")
    )
    facts = {
        dt: dd
        for dt, dd in zip(
            page.locator(".facts dt").all_inner_texts(), page.locator(".facts dd").all_inner_texts(), strict=True
        )
    }
    assert facts["PEOPLE HURT SINCE IT OPENED"] == "15" and facts["PEOPLE HURT NOW"].startswith("15")
    assert facts["ROUTE OR KEY"] == "/media-upload" and facts["AREA"] == "uploads"
    assert "against the critical line of 25%" in facts["LATEST VALUE"]
    chart = page.locator("svg.trend")
    expect(chart).to_be_visible()
    assert chart.get_attribute("role") == "img"
    assert "Incident (critical) shaded from" in (chart.locator("desc").text_content() or "")
    assert page.locator("svg.trend rect.trend-incident").count() == 1
    assert "There is no breakdown by code." in page.locator("main").inner_text().replace(
        "so there is no", "There is no"
    )
    page.screenshot(path=str(artifacts / "admin-incident-desktop.png"), full_page=True)
    page.get_by_role("link", name="← acme-studio").click()
    page.wait_for_url(site.url("/?site=acme-studio"))
    assert seen == {"dialogs": [], "errors": []}


def test_the_dashboard_and_the_incident_page_update_themselves(page: Page, site: Site, artifacts: Path) -> None:
    seen = watch(page)
    polls: list[int] = []
    page.on("response", lambda r: polls.append(r.status) if "/api/" in r.url else None)
    page.goto(site.url("/"))
    sign_in_here(page)
    expect(page.locator(".pill-calm")).to_have_text("All alerts read")
    page.evaluate("window.__same_page = true")
    expect(page.locator("[data-live-freshness]")).to_have_text(
        re.compile(r"Live · as of " + UTC_TIME + " · checks every 0.3 s")
    )
    page.wait_for_function("document.documentElement.dataset.live === 'fresh'")
    page.wait_for_timeout(700)
    assert 304 in polls, "an unchanged page costs a bodiless 304"

    outage(site.monitor, site.clock)
    expect(page.get_by_text(ALERT_TEXT)).to_be_visible(timeout=5000)
    expect(page.locator(".pill-unread")).to_have_text("1 unread alert")
    expect(page.locator("[data-live-status]")).to_have_text(re.compile("Updated with new information at " + UTC_TIME))
    assert page.evaluate("window.__same_page") is True, "updated in place, not reloaded"
    page.screenshot(path=str(artifacts / "admin-dashboard-live.png"), full_page=True)

    [incident] = site.monitor.incidents()
    page.goto(site.url(f"/incidents/{incident.id}"))
    page.evaluate("window.__same_page = true")
    people = page.locator('[data-fact="affected-users"]')
    expect(people).to_have_text("15")
    for i in range(15, 25):
        site.monitor.record_request("/media-upload", 503, 0.2, user=f"u-{i}")
    site.clock.advance(15)
    evaluate(site.monitor)
    expect(people).to_have_text("25", timeout=5000)
    assert page.evaluate("window.__same_page") is True
    assert seen == {"dialogs": [], "errors": []}


def test_a_store_that_stops_answering_is_said_plainly(
    page: Page, serve_asgi: Callable[[Any], str], internal_errors: Callable[[Any], Any], artifacts: Path
) -> None:
    with RedisServer() as redis_server:
        clock = FakeClock()
        monitor = nmh.Monitor("acme-studio", store=redis_server.url(timeout=1), clock=clock, load_entrypoints=False)
        swallowed = internal_errors(monitor)
        outage(monitor, clock)
        base = serve(monitor, serve_asgi)
        page.goto(f"{base}{PREFIX}/")
        sign_in_here(page)
        expect(page.get_by_text(ALERT_TEXT)).to_be_visible()
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            status = page.locator("[data-live-status]")
            expect(status).to_have_text(
                "The store is not answering: this is what was known before. Retrying.", timeout=5000
            )
            assert page.evaluate("document.documentElement.dataset.live") == "stale"
            expect(page.get_by_text(ALERT_TEXT)).to_be_visible()  # what was known stays on the page
            page.screenshot(path=str(artifacts / "admin-store-not-answering.png"))
            response = page.request.get(f"{base}{PREFIX}/", headers={"accept": "text/html"})
            assert response.status == 503 and "The store is not answering" in response.text()
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        expect(page.locator("[data-live-freshness]")).to_have_text(re.compile("^Live · as of"), timeout=10_000)
        page.wait_for_function("document.documentElement.dataset.live === 'fresh'", timeout=10_000)
        assert {where for where, _ in swallowed} <= {"web.store"}
        swallowed.clear()
        monitor.store.close()


@pytest.fixture
def phone(browser: Any, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


#: Every element with text of its own, and its size in CSS pixels as drawn (SVG text
#: scaled by its viewBox counts at its drawn size).
SMALLEST_TEXT = """() => {
  const sizes = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest('[hidden], .sr, title, desc')) continue;
    const box = el.getBoundingClientRect();
    if (!box.width) continue;
    let px = parseFloat(getComputedStyle(el).fontSize);
    if (el instanceof SVGElement) px *= el.getScreenCTM().a;
    sizes.push([px, el.tagName, el.textContent.trim().slice(0, 30)]);
  }
  sizes.sort((a, b) => a[0] - b[0]);
  return sizes.slice(0, 3);
}"""


def test_the_phone_layout_is_readable(phone: Page, site: Site, artifacts: Path) -> None:
    for n in range(30):
        site.monitor.record_request("/bookings", 200, 0.1, user="u", site=f"client-{n:02d}")
    outage(site.monitor, site.clock)
    [incident] = site.monitor.incidents()
    phone.goto(site.url("/"))
    sign_in_here(phone)
    for name, url in (
        ("overview", site.url("/")),
        ("site", site.url("/?site=acme-studio")),
        ("incident", site.url(f"/incidents/{incident.id}")),
    ):
        phone.goto(url)
        phone.wait_for_load_state("load")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{name}: the page scrolls sideways ({width} px)"
        smallest = phone.evaluate(SMALLEST_TEXT)
        assert smallest[0][0] >= 11, f"{name}: text smaller than 11 px: {smallest}"
        phone.screenshot(path=str(artifacts / f"admin-phone-{name}.png"), full_page=True)
    phone.goto(site.url("/"))
    expect(phone.get_by_role("search", name="Filter sites")).to_be_visible()
    phone.get_by_role("searchbox", name="Sites").fill("client-1")
    phone.get_by_role("button", name="Filter").click()
    phone.wait_for_url(re.compile(r"q=client-1"))
    assert phone.locator(".calm-list li").count() == 10  # client-1, client-10 … client-19
    assert phone.locator("section.site").count() == 0


def test_the_widget_shows_utc_times_and_links_to_the_incident(page: Page, site: Site) -> None:
    outage(site.monitor, site.clock)
    [incident] = site.monitor.incidents()
    page.goto(site.url("/signin"))
    sign_in_here(page)
    page_time = page.locator(".alert .meta").first.inner_text()
    page.goto(f"{site.base}/panel")
    widget = page.locator("nmh-health-alerts")
    expect(widget).to_have_attribute("data-state", "ready")
    widget.get_by_role("button", name="System health: 1 unread alert").click()
    meta = widget.locator(".meta").first.inner_text()
    assert re.fullmatch(r"acme-studio · " + UTC_TIME, meta), meta
    assert re.search(UTC_TIME, page_time), "the page writes times the same way"
    widget.get_by_role("link", name="What happened").click()
    page.wait_for_url(site.url(f"/incidents/{incident.id}"))
