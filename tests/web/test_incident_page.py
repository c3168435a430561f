"""One incident's page and its JSON twin: what happened when, the readings, the people, the lines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.values import Health, Incident, Reading
from nextmonth_health.web import HealthApp, Request, Response
from nextmonth_health.web.admin import admin_routes
from nextmonth_health.web.auth import token_authorizer

from .test_admin import assert_inert, evaluate

PREFIX = "/admin/system-health"
TOKEN = "detail-token-0123456789abcdef"
BEARER = {"authorization": f"Bearer {TOKEN}", "host": "127.0.0.1:8000"}


def get(app: HealthApp, path: str, headers: dict[str, str] | None = None, query: str = "") -> Response:
    return app.handle(Request("GET", PREFIX + path, query, {**BEARER, **(headers or {})}))


def minutes(m: nmh.Monitor, clock: FakeClock, count: int, bad: int, *, every: int = 15) -> None:
    """``count`` minutes of 20 requests a minute on /media-upload (``bad`` of them 503),
    each from its own person, with a pass every ``every`` seconds as the runner would."""
    for _ in range(count):
        for step in range(60 // every):
            for i in range(20 * every // 60):
                m.record_request("/media-upload", 503 if i < bad * every // 60 else 200, 0.1, user=f"u-{step}-{i}")
            clock.advance(every)
            evaluate(m)


def an_outage(
    internal_errors: Callable[[Any], Any], outage_minutes: int, **settings: Any
) -> tuple[nmh.Monitor, FakeClock]:
    """Seventy quiet minutes, then ``outage_minutes`` of 12 in 20 requests answering 503
    (``settings``: the site's own, in ``sites=``)."""
    clock = FakeClock(START - 3600)
    sites = {"acme-studio": settings} if settings else None
    m = nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False, sites=sites)
    internal_errors(m)
    minutes(m, clock, 70, bad=0)
    minutes(m, clock, outage_minutes, bad=12)
    return m, clock


@pytest.fixture
def story(internal_errors: Callable[[Any], Any]) -> tuple[nmh.Monitor, FakeClock, Incident]:
    """Quiet traffic, an outage of 5xx on /media-upload that alerts, an acknowledgement, recovery."""
    m, clock = an_outage(internal_errors, 6)
    [incident] = m.incidents()
    assert incident.severity == "critical" and incident.is_open
    m.store.acknowledge_alert(incident.id, nmh.values.timestamp(clock.now()))
    minutes(m, clock, 12, bad=0)
    [incident] = m.incidents()
    assert incident.status == "resolved"
    return m, clock, incident


@pytest.fixture
def app(story: tuple[nmh.Monitor, FakeClock, Incident]) -> HealthApp:
    return HealthApp(story[0], authorize=token_authorizer(TOKEN), admin_routes=admin_routes())


def test_the_page_tells_what_happened_when(app: HealthApp, story: tuple[nmh.Monitor, FakeClock, Incident]) -> None:
    _, _, incident = story
    response = get(app, f"/incidents/{incident.id}")
    assert response.status == 200
    html = response.body.decode()
    page = assert_inert(html)
    shown = " ".join(" ".join(page.text).split())
    assert "API Errors on /media-upload route" in shown and "resolved" in shown
    events = re.findall(r'<li class="event event-(\w+)"><time datetime="([^"]+)">', html)
    assert [kind for kind, _ in events] == ["opened", "alerted", "acknowledged", "resolved"]
    assert [at for _, at in events] == sorted(at for _, at in events)
    assert events[0][1] == incident.opened_at.isoformat() and events[-1][1] == incident.resolved_at.isoformat()
    assert "Opened as critical: the admin is alerted." in shown
    assert "Acknowledged (marked as read) by an admin." in shown
    minutes_open = int((incident.resolved_at - incident.opened_at).total_seconds() // 60)
    assert f"Resolved after {minutes_open} min." in shown
    assert "not by whom" in shown  # what the store does not keep is said, not guessed
    assert f"People hurt since it opened {incident.affected_users}" in shown and "none (resolved)" in shown
    assert "the api_errors check, bundled plugin api_errors" in shown
    assert "Route or key /media-upload" in shown and "Area uploads" in shown
    assert "against the critical line of 25%" in shown and "Usual before it opened 0%" in shown
    # The readings behind it: the check's five-minute window every 10 s, the incident shaded.
    assert '<svg class="trend"' in html and 'class="trend-incident"' in html
    assert "the 5 min window the check judges, every 10 s" in shown
    assert re.search(
        r"Requests from the 5 min before it opened until it resolved \d+ requests, 72 answered with a 5xx "
        r"\(\d+%\), counted by bucket\.",
        shown,
    )
    assert "not each status code, so there is no breakdown by code" in shown


def test_the_json_twin_has_it_all_with_an_etag(app: HealthApp, story: tuple[nmh.Monitor, FakeClock, Incident]) -> None:
    _m, _, incident = story
    response = get(app, f"/api/incidents/{incident.id}")
    assert response.status == 200 and response.header("etag")
    body = json.loads(response.body)
    detail = body["incident"]
    assert (detail["id"], detail["status"], detail["severity"]) == (incident.id, "resolved", "critical")
    assert (detail["threshold"], detail["threshold_label"], detail["baseline"]) == (0.25, "critical line", 0.0)
    assert detail["url"] == f"{PREFIX}/incidents/{incident.id}"
    assert [e["kind"] for e in body["timeline"]] == ["opened", "alerted", "acknowledged", "resolved"]
    assert body["duration_seconds"] == round((incident.resolved_at - incident.opened_at).total_seconds())
    assert body["check"] == {"name": "api_errors", "plugin": "api_errors", "bundled": True, "installed": True}
    assert body["alert"]["acknowledged_at"] is not None and body["alert"]["url"] == detail["url"]
    readings = body["readings"]
    assert readings["unit"] == "ratio" and readings["threshold"] == 0.25 and readings["baseline"] == 0.0
    values = [p["value"] for p in readings["points"] if p["value"] is not None]
    assert max(values) == pytest.approx(12 / 20, abs=0.01), "the outage's ratio, read at bucket resolution"
    spans = {p["span"] for p in readings["points"]}
    assert spans == {300}, "every point is the check's five-minute window"
    steps = {b["t"] for b in readings["points"]}
    assert len(steps) == len(readings["points"]) > 100
    # 503s recorded from the window that opened it on: three every 15 s of the six-minute outage.
    outage = START - 3600 + 70 * 60
    counted_from = incident.opened_at.timestamp() - 300
    assert body["requests"]["errors_5xx"] == 3 * sum(1 for k in range(24) if outage + 15 * k >= counted_from) == 72
    assert body["requests"]["status_codes"] is None
    unchanged = get(app, f"/api/incidents/{incident.id}", headers={"if-none-match": response.header("etag") or ""})
    assert unchanged.status == 304 and unchanged.body == b"" and unchanged.header("content-security-policy")


def test_the_incident_is_linked_from_the_list_the_alert_and_the_apis(
    app: HealthApp, story: tuple[nmh.Monitor, FakeClock, Incident]
) -> None:
    _, _, incident = story
    url = f"{PREFIX}/incidents/{incident.id}"
    html = get(app, "/").body.decode()
    assert f'<a class="incident-summary" href="{url}">' in html
    assert f'<a href="{url}">What happened</a>' in html
    assert json.loads(get(app, "/api/alerts").body)["alerts"][0]["url"] == url
    assert json.loads(get(app, "/api/incidents").body)["incidents"][0]["url"] == url
    widget = get(app, "/widget.js").body.decode()
    assert '"/incidents/" + encodeURIComponent(String(alert.id))' in widget


def test_an_open_incident_says_who_is_hurt_now(internal_errors: Callable[[Any], Any]) -> None:
    m, _ = an_outage(internal_errors, 3)
    [incident] = m.incidents()
    app = HealthApp(m, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    shown = " ".join(" ".join(assert_inert(get(app, f"/incidents/{incident.id}").body.decode()).text).split())
    assert f"People hurt now {incident.affected_now} in the last 5 min" in shown
    assert incident.affected_now > 0 and "Open for" in shown
    body = json.loads(get(app, f"/api/incidents/{incident.id}").body)
    assert body["incident"]["affected_now"] == incident.affected_now and body["incident"]["resolved_at"] is None
    assert body["readings"]["incidents"][0]["to"] is None


def test_the_window_named_is_the_sites_own(internal_errors: Callable[[Any], Any]) -> None:
    """A site judged over ten minutes says so on its page and in the list, not the default five."""
    m, _ = an_outage(internal_errors, 3, window_seconds=600)
    [incident] = m.incidents()
    app = HealthApp(m, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    page = " ".join(" ".join(assert_inert(get(app, f"/incidents/{incident.id}").body.decode()).text).split())
    listing = " ".join(" ".join(assert_inert(get(app, "/").body.decode()).text).split())
    for shown in (page, listing):
        assert f"{incident.affected_now} in the last 10 min" in shown and "last 5 min" not in shown


class LatencyProbe:
    """A plugin check on a signal of its own: the page can only show its value and threshold."""

    name = "cdn_delay"
    interval = None
    timeout = None

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        return [
            Reading(
                check=self.name,
                site=view.site,
                key="cdn",
                area="portal",
                status=Health.DEGRADED,
                subject="CDN <slow>",
                value=4.2,
                threshold=2.0,
            )
        ]


class RegistersProbe:
    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(LatencyProbe())


def test_a_plugin_check_shows_its_value_threshold_and_plugin(internal_errors: Callable[[Any], Any]) -> None:
    clock = FakeClock()
    m = nmh.Monitor("acme-studio", store="memory://", clock=clock, load_entrypoints=False, plugins=[RegistersProbe()])
    internal_errors(m)
    clock.advance(15)
    evaluate(m)
    [incident] = m.incidents()
    app = HealthApp(m, authorize=token_authorizer(TOKEN), admin_routes=admin_routes())
    html = get(app, f"/incidents/{incident.id}").body.decode()
    shown = " ".join(" ".join(assert_inert(html).text).split())
    assert "CDN <slow>" in shown and "Latest value 4.2 against the threshold of 2.0" in shown
    assert "does not say which signal it reads" in shown and '<svg class="trend"' not in html
    assert "No admin alert: it stayed a notice for visitors (degraded, never critical)." in shown
    body = json.loads(get(app, f"/api/incidents/{incident.id}").body)
    assert body["readings"] is None and body["incident"]["threshold"] == 2.0
    assert body["check"]["name"] == "cdn_delay" and body["check"]["bundled"] is False
    assert body["check"]["plugin"], "the plugin that registered it is named"


@pytest.mark.parametrize("incident_id", ["nope", "x" * 65, "..", "%3Cscript%3E"])
def test_an_unknown_incident_is_a_404_with_the_headers(app: HealthApp, incident_id: str) -> None:
    for path, accept in (
        (f"/incidents/{incident_id}", "text/html"),
        (f"/api/incidents/{incident_id}", "application/json"),
    ):
        response = get(app, path, headers={"accept": accept})
        assert response.status == 404, path
        assert response.header("content-security-policy") and response.header("x-frame-options") == "DENY"
        assert "<script>" not in response.body.decode()
    assert b"No such incident" in get(app, "/incidents/nope", headers={"accept": "text/html"}).body
