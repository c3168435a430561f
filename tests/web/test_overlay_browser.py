"""The overlay in a real headless Chromium, against a real uvicorn, on a fake clock.

A small Starlette site stands in for a client site: an uploads page (area from the script
tag's ``data-area``), a bookings page, and a dashboard (area from ``<body
data-health-area>``) whose load waits on a slow image. Every page is served with a strict
Content-Security-Policy, so the overlay must work without inline styles or scripts.
Incidents are made by recording traffic and evaluating on the fake clock; the browser
polls every quarter second (``data-poll``), so real waiting stays short. Each test's last
screenshot is kept in ``artifacts/`` under pytest's temporary directory.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import nextmonth_health as nmh
from nextmonth_health.asgi import HealthMiddleware
from nextmonth_health.testing import FakeClock

CSP = "default-src 'self'; img-src 'self' data:"
XSS_TITLE = '<img src=x onerror="window.__xss=1">'
XSS_MESSAGE = "</p><script>window.__xss=2</script><b>bold</b>"
UPLOADS_TITLES = ("Uploads are catching their breath", "Uploads are in careful hands")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/site.css">
<script src="/health/static/overlay.js" {area_attr} data-poll="0.25" defer></script>
</head><body{body_attr}>
<h1>{title}</h1>
<p id="content">Some content that must not move when a notice arrives.</p>
<button id="own" type="button">Do the page's own thing</button> <output id="own-count">0</output>
<button id="corner" type="button">Corner</button> <output id="corner-count">0</output>
{extra}
<script src="/site.js"></script>
</body></html>"""

SITE_CSS = b"""
body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem; min-height: 90vh; }
#corner { position: fixed; left: 1rem; bottom: 1rem; }
"""
SITE_JS = b"""
for (const id of ["own", "corner"]) {
  document.getElementById(id).addEventListener("click", () => {
    const out = document.getElementById(id + "-count");
    out.textContent = String(Number(out.textContent) + 1);
  });
}
window.__shifts = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__shifts += entry.value;
}).observe({ type: "layout-shift", buffered: true });
"""
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def render(title: str, area: str | None = None, body_area: str | None = None, extra: str = "") -> Response:
    html = PAGE.format(
        title=title,
        area_attr=f'data-area="{area}"' if area else "",
        body_attr=f' data-health-area="{body_area}"' if body_area else "",
        extra=extra,
    )
    return HTMLResponse(html, headers={"content-security-policy": CSP})


async def uploads(request: Request) -> Response:
    return render("Media upload", area="uploads")


async def bookings(request: Request) -> Response:
    return render("Bookings", area="bookings")


async def dashboard(request: Request) -> Response:
    return render("Dashboard", body_area="dashboard", extra='<img src="/slow.png" alt="" width="1" height="1">')


async def slow_image(request: Request) -> Response:
    await anyio.sleep(0.45)
    return Response(PIXEL, media_type="image/png")


async def site_css(request: Request) -> Response:
    return Response(SITE_CSS, media_type="text/css")


async def site_js(request: Request) -> Response:
    return Response(SITE_JS, media_type="text/javascript")


def site() -> Starlette:
    return Starlette(
        routes=[
            Route("/media-upload", uploads),
            Route("/media-upload/{rest:path}", uploads),
            Route("/bookings", bookings),
            Route("/dashboard", dashboard),
            Route("/slow.png", slow_image),
            Route("/site.css", site_css),
            Route("/site.js", site_js),
        ]
    )


class Counting:
    """Counts the notices responses by status, around the middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.statuses: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/health/notices":
            await self.app(scope, receive, send)
            return

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)


def evaluate(monitor: nmh.Monitor) -> None:
    """One evaluation pass, in its own thread (Playwright's sync API owns this one's loop)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(monitor.evaluate)
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


def break_uploads(monitor: nmh.Monitor, clock: FakeClock) -> None:
    for i in range(20):
        monitor.record_upload(ok=i % 2 == 0, user=f"u-{i}")
    clock.advance(15)
    evaluate(monitor)
    assert monitor.notices("uploads"), "the uploads incident did not open"


def heal_uploads(monitor: nmh.Monitor, clock: FakeClock) -> None:
    for _ in range(60):
        for i in range(20):
            monitor.record_upload(ok=True, user=f"u-{i}")
        clock.advance(15)
        evaluate(monitor)
        if not monitor.notices("uploads"):
            clock.advance(2)  # past the notices cache
            return
    raise AssertionError("the uploads incident never resolved")


@pytest.fixture
def browser_monitor(fake_clock: FakeClock, internal_errors: Callable[[Any], Any]) -> Iterator[nmh.Monitor]:
    """A monitor whose dashboard counts loads over 0.2 s as slow (the test page takes ~0.5 s)."""
    m = nmh.Monitor(
        "test-site",
        store="memory://",
        clock=fake_clock,
        load_entrypoints=False,
        cooldown_seconds=30,
        page_load_slow_seconds=0.2,
        page_load_recovery_seconds=0.1,
        page_load_critical_seconds=30.0,
        notice_overrides={"portal": {"title": "unused", "message": "unused"}},
    )
    internal_errors(m)
    yield m
    m.stop()


@pytest.fixture
def page_loads(browser_monitor: nmh.Monitor) -> list[tuple[str, float, str | None]]:
    loads: list[tuple[str, float, str | None]] = []
    real = browser_monitor.record_page_load

    def record_page_load(page: str, seconds: float, user: str | None = None, site: str | None = None) -> None:
        loads.append((page, seconds, user))
        real(page, seconds, user=user, site=site)

    browser_monitor.record_page_load = record_page_load  # type: ignore[method-assign]
    return loads


@pytest.fixture
def served(browser_monitor: nmh.Monitor, page_loads: Any, serve_asgi: Callable[[Any], str]) -> tuple[str, Counting]:
    # These tests drive each evaluation pass themselves, on the fake clock.
    counting = Counting(HealthMiddleware(site(), browser_monitor, start_monitor=False))
    return serve_asgi(counting), counting


def csp_violations(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    return seen


def card(page: Page) -> Any:
    return page.locator(".nmh-card")


def test_overlay_appears_at_the_affected_area_only(
    page: Page, served: tuple[str, Counting], browser_monitor: nmh.Monitor, fake_clock: FakeClock, artifacts: Path
) -> None:
    base, _ = served
    violations = csp_violations(page)
    break_uploads(browser_monitor, fake_clock)
    page.goto(f"{base}/media-upload")
    expect(card(page)).to_be_visible(timeout=5000)
    title = page.locator(".nmh-title").text_content()
    assert title in UPLOADS_TITLES
    assert page.locator(".nmh-message").text_content()
    region = page.locator(".nmh-overlay")
    assert region.get_attribute("role") == "status" and region.get_attribute("aria-live") == "polite"
    page.wait_for_timeout(700)  # the fade has finished: a clean picture for the record
    page.screenshot(path=str(artifacts / "overlay-uploads-notice.png"))

    page.goto(f"{base}/bookings")
    with page.expect_response(lambda r: "/health/notices?area=bookings" in r.url):
        pass
    page.wait_for_timeout(600)  # a couple more polls
    expect(card(page)).to_be_hidden()
    assert violations == []


@pytest.mark.parametrize("width, height", [(1200, 800), (390, 844)], ids=["desktop", "phone"])
def test_planned_work_shows_its_own_calm_notice(
    browser: Any,
    served: tuple[str, Counting],
    browser_monitor: nmh.Monitor,
    fake_clock: FakeClock,
    artifacts: Path,
    width: int,
    height: int,
) -> None:
    """During a maintenance window, people at the area see planned care, not the incident's
    notice, styled apart; the admin's reason never reaches them."""
    base, _ = served
    browser_monitor.schedule_maintenance(duration=1800, area="uploads", reason="Deploying uploader <v2> on db-3")
    break_uploads(browser_monitor, fake_clock)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(f"{base}/media-upload")
        expect(card(page)).to_be_visible(timeout=5000)
        assert page.locator(".nmh-title").text_content() == "Uploads are getting planned care"
        assert "planned improvements" in (page.locator(".nmh-message").text_content() or "")
        assert "nmh-maintenance" in (card(page).get_attribute("class") or "")
        text = page.locator(".nmh-overlay").inner_text()
        assert "Deploying" not in text and "db-3" not in text
        page.wait_for_timeout(700)
        page.screenshot(path=str(artifacts / f"overlay-maintenance-{width}.png"))
    finally:
        context.close()


def test_overlay_goes_away_after_recovery(
    page: Page, served: tuple[str, Counting], browser_monitor: nmh.Monitor, fake_clock: FakeClock
) -> None:
    base, _ = served
    break_uploads(browser_monitor, fake_clock)
    page.goto(f"{base}/media-upload")
    expect(card(page)).to_be_visible(timeout=5000)
    heal_uploads(browser_monitor, fake_clock)
    expect(card(page)).to_be_hidden(timeout=5000)
    assert page.locator(".nmh-title").text_content() == ""


def test_overlay_never_blocks_or_shifts_the_page(
    page: Page, served: tuple[str, Counting], browser_monitor: nmh.Monitor, fake_clock: FakeClock
) -> None:
    base, _ = served
    page.goto(f"{base}/media-upload")
    page.wait_for_load_state("load")
    before = {sel: page.locator(sel).bounding_box() for sel in ("#own", "h1", "#content")}
    break_uploads(browser_monitor, fake_clock)
    expect(card(page)).to_be_visible(timeout=5000)
    page.wait_for_timeout(800)  # fully faded in

    # The page's own buttons still take clicks: the one in the flow, and the one under the veil.
    page.locator("#own").click(timeout=2000)
    page.locator("#corner").click(timeout=2000)
    assert page.locator("#own-count").text_content() == "1"
    assert page.locator("#corner-count").text_content() == "1"
    assert {sel: page.locator(sel).bounding_box() for sel in before} == before
    assert page.evaluate("window.__shifts") == 0
    assert page.evaluate("getComputedStyle(document.querySelector('.nmh-overlay')).position") == "fixed"

    # Dismissed, it stays away for this notice, even after a reload.
    page.locator(".nmh-dismiss").click()
    expect(card(page)).to_be_hidden(timeout=3000)
    page.reload()
    page.wait_for_timeout(800)
    expect(card(page)).to_be_hidden()


def test_overlay_honours_reduced_motion(
    browser: Any, served: tuple[str, Counting], browser_monitor: nmh.Monitor, fake_clock: FakeClock
) -> None:
    base, _ = served
    break_uploads(browser_monitor, fake_clock)
    durations = {}
    for motion in ("reduce", "no-preference"):
        context = browser.new_context(reduced_motion=motion)
        try:
            page = context.new_page()
            page.goto(f"{base}/media-upload")
            expect(page.locator(".nmh-card")).to_be_visible(timeout=5000)
            durations[motion] = page.evaluate(
                "[getComputedStyle(document.querySelector('.nmh-card')).transitionDuration,"
                " getComputedStyle(document.querySelector('.nmh-glow')).animationName]"
            )
        finally:
            context.close()
    assert durations["reduce"] == ["0s", "none"]
    assert durations["no-preference"][0] != "0s" and durations["no-preference"][1] == "nmh-breathe"


def test_xss_in_notice_texts_and_paths_renders_inert(
    page: Page,
    fake_clock: FakeClock,
    internal_errors: Callable[[Any], Any],
    serve_asgi: Callable[[Any], str],
    artifacts: Path,
) -> None:
    monitor = nmh.Monitor(
        "test-site",
        store="memory://",
        clock=fake_clock,
        load_entrypoints=False,
        notice_overrides={"uploads": {"title": XSS_TITLE, "message": XSS_MESSAGE}},
    )
    internal_errors(monitor)
    users = iter(['<img src=x onerror="window.__xss=4">'] * 100)
    base = serve_asgi(HealthMiddleware(site(), monitor, user=lambda scope: next(users), start_monitor=False))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    break_uploads(monitor, fake_clock)
    page.goto(f"{base}/media-upload/%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D3%22%3E")
    expect(card(page)).to_be_visible(timeout=5000)
    assert page.locator(".nmh-title").text_content() == XSS_TITLE
    assert page.locator(".nmh-message").text_content() == XSS_MESSAGE
    assert page.locator(".nmh-overlay img, .nmh-overlay script, .nmh-overlay b").count() == 0
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "overlay-xss-inert.png"))
    monitor.stop()


def test_beacon_reports_the_page_load(page: Page, served: tuple[str, Counting], page_loads: list[Any]) -> None:
    base, _ = served
    page.goto(f"{base}/media-upload")
    deadline = time.monotonic() + 5
    while not page_loads and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    [(path, seconds, user)] = page_loads
    assert path == "/media-upload" and 0 < seconds < 10
    session = page.evaluate("localStorage.getItem('nmh-session')")
    assert user == f"session:{session}" and len(session) == 32
    page.reload()
    page.wait_for_timeout(300)
    assert [u for _, _, u in page_loads] == [user, user]  # one per load, same browser, same session


def load_dashboard(browser: Any, base: str, client: str) -> None:
    context = browser.new_context(extra_http_headers={"x-forwarded-for": client})
    try:
        page = context.new_page()
        page.goto(f"{base}/dashboard")
        page.wait_for_load_state("load")
        page.wait_for_timeout(150)  # the beacon goes out just after the load event
    finally:
        context.close()


def wait_loads(page_loads: list[Any], n: int) -> None:
    deadline = time.monotonic() + 5
    while len(page_loads) < n:
        assert time.monotonic() < deadline, f"only {len(page_loads)} of {n} beacons arrived"
        time.sleep(0.02)


def test_beacons_feed_the_dashboard_check_but_one_client_cannot_fake_it(
    browser: Any,
    page: Page,
    served: tuple[str, Counting],
    browser_monitor: nmh.Monitor,
    fake_clock: FakeClock,
    page_loads: list[Any],
) -> None:
    base, _ = served
    # Six fresh browsers (six session ids) behind one address: many samples, one user.
    for _ in range(6):
        load_dashboard(browser, base, "198.51.100.7")
    wait_loads(page_loads, 6)
    assert all(seconds > 0.4 for _, seconds, _ in page_loads)
    fake_clock.advance(15)
    evaluate(browser_monitor)
    assert browser_monitor.notices("dashboard") == []

    # Two more people elsewhere: now the slowness is real.
    for client in ("203.0.113.20", "203.0.113.21"):
        load_dashboard(browser, base, client)
    wait_loads(page_loads, 8)
    fake_clock.advance(15)
    evaluate(browser_monitor)
    [incident] = [i for i in browser_monitor.incidents() if i.area == "dashboard"]
    assert incident.check == "dashboard_load" and incident.affected_users == 3
    fake_clock.advance(2)

    # ... and the dashboard page itself (area from <body data-health-area>) says so.
    page.goto(f"{base}/dashboard")
    expect(card(page)).to_be_visible(timeout=5000)


def test_polling_revalidates_pauses_when_hidden_and_backs_off(page: Page, served: tuple[str, Counting]) -> None:
    base, counting = served
    page.goto(f"{base}/media-upload")
    page.wait_for_timeout(1500)
    assert len(counting.statuses) >= 3
    assert counting.statuses[0] == 200 and set(counting.statuses[1:]) == {304}

    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(400)
    paused_at = len(counting.statuses)
    page.wait_for_timeout(1200)
    assert len(counting.statuses) == paused_at

    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(800)
    assert len(counting.statuses) >= paused_at + 2

    # When the endpoint fails, the next polls come ever later (0.5 s, 1 s, 2 s, ...).
    failed: list[float] = []

    def fail(route: Any) -> None:
        failed.append(time.monotonic())
        route.fulfill(status=503, body="")

    page.route("**/health/notices*", fail)
    page.wait_for_timeout(3200)
    assert 2 <= len(failed) <= 5
    gaps = [b - a for a, b in itertools.pairwise(failed)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))
