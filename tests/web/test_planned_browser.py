"""Rob's journey before a deploy, in a real Chromium against a real uvicorn: he schedules a
maintenance window through the dashboard's form and sees it listed, ends it, and silences an
incident from its page — at desktop and at phone size. Screenshots go to ``artifacts/``.

The host is the pages tests' small Starlette app wrapped in the real ``HealthMiddleware``;
the monitor runs on a fake clock and is evaluated by the tests; pages poll every 0.3 s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock

from .test_admin import open_incident as outage
from .test_admin_browser import a_week_of_traffic, watch
from .test_admin_pages_browser import UTC_TIME, Site, serve, sign_in_here

DESKTOP = {"width": 1200, "height": 800}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
REASON = "Deploying the new upload service <v2>"


@pytest.fixture
def site(internal_errors: Callable[[Any], Any], serve_asgi: Callable[[Any], str]) -> Site:
    clock = FakeClock(START - 7 * 86_400)
    m = nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False)
    internal_errors(m)
    a_week_of_traffic(m, clock)
    return Site(m, clock, serve(m, serve_asgi))


@pytest.fixture
def phone(browser: Any) -> Iterator[Page]:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def schedule(page: Page, *, area: str, lasts: str | None = None, until: str | None = None) -> None:
    """Fill the dashboard's form as a person would, and send it."""
    form = page.get_by_role("form", name="Schedule a window")
    form.get_by_label("Area").select_option(label=area)
    if lasts is not None:
        form.get_by_label("Lasts").select_option(label=lasts)
    if until is not None:
        form.get_by_label("Or until (UTC)").fill(until)
    form.get_by_label("Reason").fill(REASON)
    form.get_by_role("button", name="Schedule").click()
    page.wait_for_url(re.compile(r"#maintenance$"))


def test_scheduling_a_window_at_desktop_size(page: Page, site: Site, artifacts: Path) -> None:
    seen = watch(page)
    page.set_viewport_size(DESKTOP)
    page.goto(site.url("/"))
    sign_in_here(page)
    page.get_by_role("link", name="Planned maintenance").click()
    page.wait_for_url(re.compile(r"#maintenance$"))
    section = page.locator("section#maintenance")
    expect(section.get_by_text("Nothing planned.")).to_be_visible()
    expect(section).to_be_in_viewport()
    section.screenshot(path=str(artifacts / "planned-desktop-empty.png"))

    schedule(page, area="uploads", lasts="30 min")
    item = section.locator("li.planned-item")
    expect(item).to_have_count(1)
    expect(item.locator(".planned-what")).to_have_text("uploads")
    expect(item.locator(".chip")).to_have_text("running")
    expect(item.locator(".planned-reason")).to_have_text(REASON)  # typed, shown as text
    assert re.fullmatch(UTC_TIME + " to " + UTC_TIME + " · 30 min", item.locator(".meta").inner_text())
    expect(page.locator("section.site").first.locator(".chip-planned")).to_have_text(
        re.compile("^maintenance on uploads until " + UTC_TIME)
    )
    [window] = site.monitor.maintenance()
    assert (window.area, window.reason, (window.ends_at - window.starts_at).total_seconds()) == (
        "uploads",
        REASON,
        1800,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    section.screenshot(path=str(artifacts / "planned-desktop-section.png"))
    page.screenshot(path=str(artifacts / "planned-desktop.png"), full_page=True)

    outage(site.monitor, site.clock)  # his own deploy breaks uploads: marked, not pushed
    marks = page.locator("li.incident .marks")
    expect(marks).to_have_text(re.compile(r"during maintenance\s+alert not sent \(held by maintenance\)"), timeout=5000)
    expect(page.locator("article.alert .alert-foot .meta")).to_contain_text("alert not sent (held by maintenance)")
    page.locator("section.site").first.locator(".columns").screenshot(
        path=str(artifacts / "planned-desktop-during.png")
    )

    item.get_by_role("button", name="End now").click()
    page.wait_for_url(re.compile(r"#maintenance$"))
    expect(section.get_by_text("Nothing planned.")).to_be_visible()
    assert site.monitor.maintenance() == []
    assert seen == {"dialogs": [], "errors": []}


def test_what_someone_is_typing_survives_a_live_update(page: Page, site: Site) -> None:
    seen = watch(page)
    page.goto(site.url("/"))
    sign_in_here(page)
    page.evaluate("window.__same_page = true")
    form = page.get_by_role("form", name="Schedule a window")
    form.get_by_label("Area").select_option(label="bookings")
    form.get_by_label("Reason").fill("half typed")
    outage(site.monitor, site.clock)  # something new: the page swaps its content in
    expect(page.get_by_text("Impact detected for 15 users")).to_be_visible(timeout=5000)
    assert page.evaluate("window.__same_page") is True
    expect(form.get_by_label("Reason")).to_have_value("half typed")
    expect(form.get_by_label("Area")).to_have_value("bookings")
    assert seen == {"dialogs": [], "errors": []}


def test_silencing_an_incident_from_its_page(page: Page, site: Site, artifacts: Path) -> None:
    seen = watch(page)
    page.set_viewport_size(DESKTOP)
    outage(site.monitor, site.clock)
    [incident] = site.monitor.incidents()
    page.goto(site.url(f"/incidents/{incident.id}"))
    sign_in_here(page)
    head = page.locator("section.incident-head")
    head.screenshot(path=str(artifacts / "planned-incident-before.png"))
    head.get_by_role("button", name="Silence for 2 h").click()
    page.wait_for_url(site.url(f"/incidents/{incident.id}"))
    expect(head.locator(".site-head .chip-planned")).to_have_text(re.compile("^silenced until " + UTC_TIME))
    expect(head.get_by_role("button", name="Lift")).to_be_visible()
    head.screenshot(path=str(artifacts / "planned-incident-silenced.png"))
    page.goto(site.url("/"))
    silences = page.locator("section#silences")
    expect(silences.locator("li.planned-item .planned-what")).to_have_text("api_errors · /media-upload")
    expect(page.locator("li.incident .marks")).to_contain_text("silenced until")
    page.locator("section.site").first.screenshot(path=str(artifacts / "planned-desktop-card-silenced.png"))
    silences.screenshot(path=str(artifacts / "planned-desktop-silences.png"))
    silences.get_by_role("button", name="Lift").click()
    page.wait_for_url(re.compile(r"#silences$"))
    expect(silences.get_by_text("No silences.")).to_be_visible()
    assert seen == {"dialogs": [], "errors": []}


def test_scheduling_a_window_on_a_phone(phone: Page, site: Site, artifacts: Path) -> None:
    seen = watch(phone)
    outage(site.monitor, site.clock)
    phone.goto(site.url("/"))
    sign_in_here(phone)
    phone.screenshot(path=str(artifacts / "planned-phone-top.png"))
    until = site.clock.now() + 2 * 3600
    schedule(phone, area="Whole site", until=_local(until))
    item = phone.locator("section#maintenance li.planned-item")
    expect(item.locator(".planned-what")).to_have_text("whole site")
    expect(item.get_by_role("button", name="End now")).to_be_visible()
    [window] = site.monitor.maintenance()
    assert window.area is None and window.ends_at.timestamp() == until - until % 60
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width} px)"
    phone.locator("section#maintenance").screenshot(path=str(artifacts / "planned-phone-section.png"))
    phone.screenshot(path=str(artifacts / "planned-phone.png"), full_page=True)
    [incident] = site.monitor.incidents()
    phone.goto(site.url(f"/incidents/{incident.id}"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.locator("section.incident-head").screenshot(path=str(artifacts / "planned-phone-incident.png"))
    assert seen == {"dialogs": [], "errors": []}


def _local(moment: float) -> str:
    """A moment as a ``datetime-local`` input takes it, in UTC as the form asks."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M")
