"""Planned quiet in the admin view: maintenance windows and silences made, listed, ended and
lifted through the pages' forms and the JSON API; incidents marked with what it did to them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock
from nextmonth_health.web import HealthApp, Response
from nextmonth_health.web.admin import admin_routes
from nextmonth_health.web.auth import token_authorizer

from .test_admin import (
    BEARER,
    OTHER_TOKEN,
    PREFIX,
    TOKEN,
    assert_inert,
    build_monitor,
    data,
    evaluate,
    get,
    open_incident,
    parse,
    post,
    text,
)

SCRIPT = "<script>window.__xss=1</script>"


class Forms(HTMLParser):
    """Each form of a page by its action: its fields as a browser would send them untouched
    (hidden and text inputs, a select's chosen option) and its buttons' values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str], list[str]]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}, []))
        elif not self.forms:
            return
        elif tag == "input" and "name" in a:
            self.forms[-1][1][a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select is not None:
            fields = self.forms[-1][1]
            if self._select not in fields or "selected" in a:
                fields[self._select] = a.get("value", "")
        elif tag == "button" and "value" in a:
            self.forms[-1][2].append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def forms(html: str, action: str) -> list[tuple[dict[str, str], list[str]]]:
    parser = Forms()
    parser.feed(html)
    return [
        (fields, buttons)
        for act, fields, buttons in parser.forms
        if act == PREFIX + action or re.fullmatch(re.escape(PREFIX) + action, act)
    ]


def form(html: str, action: str) -> dict[str, str]:
    [(fields, _)] = forms(html, action)
    return fields


def with_token(app: HealthApp, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Bearer headers and the caller's CSRF token in ``X-CSRF-Token``, as a script sends them."""
    base = headers or dict(BEARER)
    return {**base, "x-csrf-token": data(get(app, "/api/maintenance", headers=base))["csrf"]}


def shown(html: str) -> str:
    """The page's text as a person reads it, spaces folded."""
    return " ".join("".join(parse(html).text).split())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monitor(clock: FakeClock, internal_errors: Callable[[Any], Any]) -> Iterator[nmh.Monitor]:
    m = build_monitor(clock, alert_repeat_seconds=1800)
    internal_errors(m)  # a 500 from a handler is a swallowed error, and fails the test
    yield m


@pytest.fixture
def app(monitor: nmh.Monitor) -> HealthApp:
    return HealthApp(monitor, authorize=token_authorizer([TOKEN, OTHER_TOKEN]), admin_routes=admin_routes())


def keep_failing(monitor: nmh.Monitor, clock: FakeClock, minutes: int) -> None:
    """The outage goes on: the same 15 people's uploads fail, with a pass every 15 s."""
    for _ in range(minutes * 4):
        for i in range(15):
            monitor.record_request("/media-upload", 503, 0.2, user=f"u-{i}")
        clock.advance(15)
        evaluate(monitor)


def now(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


def local(moment: datetime) -> str:
    """How a ``datetime-local`` input sends a moment (the form says its times are UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


# The dashboard's form ------------------------------------------------------------------------


def test_scheduling_through_the_form_lists_the_window(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    html = text(get(app, "/"))
    assert "Nothing planned." in html and "No silences." in html
    fields = form(html, "/maintenance")
    assert fields["csrf"] and fields["back"] == f"{PREFIX}/"
    assert fields["area"] == "" and fields["duration"] == "3600" and fields["start"] == ""
    assert "site" not in fields, "one site: the form does not ask"
    areas = re.findall(
        r'<option value="([^"]*)">', html[html.index('id="window-area"') : html.index('id="window-start"')]
    )
    assert areas == ["", "bookings", "dashboard", "login", "portal", "uploads"]

    fields |= {"area": "uploads", "duration": "1800", "reason": "Deploying the new upload service"}
    response = post(app, "/maintenance", fields, form=True)
    assert response.status == 303 and response.header("location") == f"{PREFIX}/#maintenance"
    [window] = monitor.maintenance()
    assert (window.site, window.area, window.reason) == ("acme-studio", "uploads", "Deploying the new upload service")
    assert (window.starts_at, window.ends_at) == (now(clock), now(clock) + timedelta(minutes=30))

    page = shown(text(get(app, "/")))
    assert (
        "uploads running 5 Jan, 09:00 UTC to 5 Jan, 09:30 UTC · 30 min Deploying the new upload service End now" in page
    )
    assert "Nothing planned." not in page
    assert "maintenance on uploads until 5 Jan, 09:30 UTC" in page  # on the site's card


def test_a_window_to_come_an_end_time_and_the_whole_site(
    app: HealthApp, monitor: nmh.Monitor, clock: FakeClock
) -> None:
    fields = form(text(get(app, "/")), "/maintenance")
    start = now(clock) + timedelta(hours=2)
    fields |= {"start": local(start), "end": local(start + timedelta(minutes=45)), "reason": "Database upgrade"}
    assert post(app, "/maintenance", fields, form=True).status == 303
    [window] = monitor.maintenance()
    assert window.area is None and (window.starts_at, window.ends_at) == (start, start + timedelta(minutes=45))
    page = shown(text(get(app, "/")))
    assert "whole site to come 5 Jan, 11:00 UTC to 5 Jan, 11:45 UTC · 45 min Database upgrade Cancel" in page

    cancel = form(text(get(app, "/")), f"/maintenance/{window.id}/end")
    assert post(app, f"/maintenance/{window.id}/end", cancel, form=True).header("location") == f"{PREFIX}/#maintenance"
    assert monitor.maintenance() == []
    assert "Nothing planned." in text(get(app, "/"))


def test_ending_a_running_window_now(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    window = monitor.schedule_maintenance(duration=3600, reason="deploy")
    clock.advance(600)
    fields = form(text(get(app, "/")), f"/maintenance/{window.id}/end")
    assert post(app, f"/maintenance/{window.id}/end", fields, form=True).status == 303
    assert monitor.maintenance() == []
    [stored] = monitor.store.maintenance_windows()
    assert stored.ends_at == now(clock)
    again = post(app, "/maintenance/no-such-window/end", fields, form=True, headers={**BEARER, "accept": "text/html"})
    assert again.status == 404 and "No such maintenance window" in text(again)


def test_the_forms_need_the_csrf_token(app: HealthApp, monitor: nmh.Monitor) -> None:
    window = monitor.schedule_maintenance(duration=3600)
    made = monitor.silence("api_errors", "/media-upload")
    html_headers = {**BEARER, "accept": "text/html"}
    for action, fields in (
        ("/maintenance", {"duration": "3600", "reason": "x"}),
        (f"/maintenance/{window.id}/end", {}),
        ("/silences", {"check": "api_errors", "duration": "3600"}),
        (f"/silences/{made.id}/end", {}),
    ):
        for token in (None, "", "forged.token.value"):
            body = fields if token is None else {**fields, "csrf": token}
            response = post(app, action, body, form=True, headers=html_headers)
            assert response.status == 403, (action, token)
            assert (
                "CSRF token" in text(response)
                and response.header(
                    "content-type",
                )
                == "text/html; charset=utf-8"
            )
        theirs = data(get(app, "/api/maintenance", headers={"authorization": f"Bearer {OTHER_TOKEN}"}))["csrf"]
        assert post(app, action, {**fields, "csrf": theirs}, form=True).status == 403
    assert [w.id for w in monitor.maintenance()] == [window.id]
    assert [s.id for s in monitor.silences()] == [made.id]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"duration": "0"}, "Duration must be more than 0 seconds and at most a week"),
        ({"duration": "soon"}, "Duration must be a number of seconds, got &#x27;soon&#x27;"),
        ({"start": "next tuesday"}, "Start must be a date and time in ISO 8601"),
        ({"end": "2025-01-01T10:00"}, "The window ends before now"),
        ({"duration": str(8 * 86_400)}, "at most a week"),
        ({"reason": "x" * 501}, "Reason must be text of at most 500 characters"),
        ({"start": "<b>soon</b>"}, "got &#x27;&lt;b&gt;soon&lt;/b&gt;&#x27;"),
    ],
)
def test_bad_input_in_the_form_is_a_calm_400(
    app: HealthApp, monitor: nmh.Monitor, change: dict[str, str], says: str
) -> None:
    fields = form(text(get(app, "/")), "/maintenance") | change
    response = post(app, "/maintenance", fields, form=True, headers={**BEARER, "accept": "text/html"})
    assert response.status == 400
    html = text(response)
    assert "That did not go through" in html and says in html
    assert "<b>" not in html
    assert monitor.maintenance() == []


def test_a_reason_is_shown_as_text(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    fields = form(text(get(app, "/")), "/maintenance") | {"reason": SCRIPT, "area": "uploads"}
    assert post(app, "/maintenance", fields, form=True).status == 303
    monitor.silence("api_errors", SCRIPT, reason=SCRIPT)
    open_incident(monitor, clock)
    for path in ("/", f"/incidents/{monitor.incidents()[0].id}"):
        html = text(get(app, path))
        assert_inert(html)
        assert SCRIPT not in html and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
        assert SCRIPT in "".join(parse(html).text)
    assert [w["reason"] for w in data(get(app, "/api/maintenance"))["maintenance"]] == [SCRIPT]


def test_the_form_comes_back_to_the_page_it_was_sent_from(app: HealthApp, monitor: nmh.Monitor) -> None:
    monitor.record_request("/bookings", 200, 0.1, user="u", site="client-b")
    monitor.flush()
    html = text(get(app, "/", query="site=client-b"))
    fields = form(html, "/maintenance")
    assert fields["site"] == "client-b" and fields["back"] == f"{PREFIX}/?site=client-b"
    assert "Schedule a window for client-b" in html
    response = post(app, "/maintenance", fields, form=True)
    assert response.header("location") == f"{PREFIX}/?site=client-b#maintenance"
    assert [w.site for w in monitor.maintenance()] == ["client-b"]
    for back in (
        "https://evil.example/",
        "//evil.example/x",
        f"{PREFIX}/../../x",
        "/elsewhere",
        "x\r\nset-cookie: a=b",
    ):
        response = post(app, "/maintenance", fields | {"back": back}, form=True)
        assert response.status == 303 and response.header("location") == f"{PREFIX}/#maintenance", back
    steered = post(app, "/maintenance", fields | {"back": f"{PREFIX}/?site=a%0d%0aset-cookie:x//evil"}, form=True)
    location = steered.header("location") or ""
    assert (
        location.startswith(f"{PREFIX}/?site=")
        and "\r" not in location
        and "\n" not in location
        and "//" not in location
    )


def test_with_several_sites_the_form_asks_which(app: HealthApp, monitor: nmh.Monitor) -> None:
    for name in ("client-a", "client-b"):
        monitor.record_request("/bookings", 200, 0.1, user="u", site=name)
    evaluate(monitor)
    html = text(get(app, "/"))
    select = html[html.index('id="window-site"') : html.index("</select>", html.index('id="window-site"'))]
    assert re.findall(r'<option value="([^"]*)">', select) == ["acme-studio", "client-a", "client-b"]
    fields = form(html, "/maintenance") | {"site": "client-b", "area": "bookings", "reason": "migration"}
    assert post(app, "/maintenance", fields, form=True).status == 303
    monitor.schedule_maintenance(duration=600, site="client-a")
    page = shown(text(get(app, "/")))
    assert "client-b · bookings running" in page and "client-a · whole site running" in page
    only_b = shown(text(get(app, "/", query="site=client-b")))
    assert "bookings running" in only_b and "client-a" not in only_b.split("Planned maintenance", 1)[1]
    assert [w["site"] for w in data(get(app, "/api/maintenance", query="site=client-b"))["maintenance"]] == ["client-b"]


def test_with_many_sites_the_form_asks_for_a_name(app: HealthApp, monitor: nmh.Monitor) -> None:
    for n in range(60):
        monitor.record_request("/bookings", 200, 0.1, user="u", site=f"client-{n:02d}")
    monitor.flush()
    html = text(get(app, "/"))
    assert '<input id="window-site" name="site" type="text"' in html and '<option value="client-42">' not in html
    fields = form(html, "/maintenance") | {"reason": "migration"}
    assert post(app, "/maintenance", fields | {"site": "client-42"}, form=True).status == 303
    assert [w.site for w in monitor.maintenance()] == ["client-42"]
    typo = post(
        app, "/maintenance", fields | {"site": "cleint-42"}, form=True, headers={**BEARER, "accept": "text/html"}
    )
    assert typo.status == 400 and "&#x27;cleint-42&#x27; is not a site this monitor watches" in text(typo)
    assert len(monitor.maintenance()) == 1
    few = text(get(app, "/", query="q=client-4"))  # filtered to ten: a list again
    assert re.findall(r'<option value="(client-4\d)">', few) == [f"client-4{n}" for n in range(10)]


# Incidents and silences -------------------------------------------------------------------------


def test_an_incident_during_maintenance_is_marked_and_its_alert_held(
    app: HealthApp, monitor: nmh.Monitor, clock: FakeClock
) -> None:
    window = monitor.schedule_maintenance(duration=600, area="uploads", reason="deploy v2")
    open_incident(monitor, clock)
    [incident] = monitor.incidents()
    assert incident.maintenance_id == window.id
    listed = shown(text(get(app, "/")))
    assert "during maintenance alert not sent (held by maintenance)" in listed
    page = text(get(app, f"/incidents/{incident.id}"))
    said = shown(page)
    assert "Seen during the window on uploads, 5 Jan, 09:00 UTC to 5 Jan, 09:10 UTC: deploy v2" in said
    assert "alert not sent (held by maintenance)" in said
    body = data(get(app, f"/api/incidents/{incident.id}"))
    assert body["incident"]["maintenance_id"] == window.id and body["maintenance"]["id"] == window.id
    assert (
        body["alert"]["notified_at"] is None and body["alert"]["reminders"] == 0 and body["alert_held"] == "maintenance"
    )
    assert data(get(app, "/api/incidents"))["incidents"][0]["maintenance_id"] == window.id

    # The window ends by itself; the next pass tells the alert, and the page says when.
    keep_failing(monitor, clock, minutes=11)
    [alert] = monitor.alerts()
    assert alert.notified_at is not None
    after = shown(text(get(app, f"/incidents/{incident.id}")))
    assert "alert not sent" not in after and "during maintenance" in after
    assert "Sent to email and webhooks once the maintenance or silence holding it ended." in after
    assert data(get(app, f"/api/incidents/{incident.id}"))["alert_held"] is None

    # Reminders every alert_repeat_seconds (30 min here) while nobody acknowledges it.
    keep_failing(monitor, clock, minutes=30)
    [alert] = monitor.alerts()
    assert alert.reminders == 1
    assert "1 reminder sent" in shown(text(get(app, "/")))
    assert "1 reminder sent" in shown(text(get(app, f"/incidents/{incident.id}")))
    assert data(get(app, "/api/alerts"))["alerts"][0]["reminders"] == 1


def test_silencing_from_the_incident_page(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    open_incident(monitor, clock)
    [incident] = monitor.incidents()
    page = text(get(app, f"/incidents/{incident.id}"))
    [(fields, durations)] = forms(page, "/silences")
    assert durations == ["3600", "7200", "14400", "86400"]
    assert fields | {"csrf": ""} == {
        "csrf": "",
        "back": f"{PREFIX}/incidents/{incident.id}",
        "site": "acme-studio",
        "check": "api_errors",
        "key": "/media-upload",
    }
    assert page.index("Mark as read") < page.index("Silence for")  # beside Acknowledge
    response = post(app, "/silences", fields | {"duration": "7200"}, form=True)
    assert response.status == 303 and response.header("location") == f"{PREFIX}/incidents/{incident.id}"
    [made] = monitor.silences()
    assert (made.check, made.key, made.ends_at) == ("api_errors", "/media-upload", now(clock) + timedelta(hours=2))

    said = shown(text(get(app, f"/incidents/{incident.id}")))
    assert "silenced until 5 Jan, 11:00 UTC" in said and "Silenced until 5 Jan, 11:00 UTC Lift" in said
    assert "Silence for" not in said
    dashboard = shown(text(get(app, "/")))
    assert "silenced until 5 Jan, 11:00 UTC" in dashboard  # on the incident's line
    assert "api_errors · /media-upload No alerts or reminders until 5 Jan, 11:00 UTC Lift" in dashboard
    assert data(get(app, f"/api/incidents/{incident.id}"))["silence"]["id"] == made.id

    lift = form(text(get(app, "/")), f"/silences/{made.id}/end")
    assert post(app, f"/silences/{made.id}/end", lift, form=True).header("location") == f"{PREFIX}/#silences"
    assert monitor.silences() == []
    assert "silenced until" not in text(get(app, f"/incidents/{incident.id}"))


def test_an_alert_held_by_a_silence_says_so(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    monitor.silence("api_errors", "/media-upload", duration=3600)
    open_incident(monitor, clock)
    said = shown(text(get(app, f"/incidents/{monitor.incidents()[0].id}")))
    assert "alert not sent (held by a silence)" in said and "during maintenance" not in said


def test_silence_form_errors_are_400(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    open_incident(monitor, clock)
    [(fields, _)] = forms(text(get(app, f"/incidents/{monitor.incidents()[0].id}")), "/silences")
    html_headers = {**BEARER, "accept": "text/html"}
    for change, says in (
        ({}, "Choose how long to silence it for"),
        ({"duration": "-5"}, "more than 0 seconds"),
        ({"duration": "3600", "check": ""}, "Check must be a check"),
    ):
        response = post(app, "/silences", fields | change, form=True, headers=html_headers)
        assert response.status == 400 and says in text(response), change
    assert monitor.silences() == []
    missing = post(app, "/silences/no-such-silence/end", {"csrf": fields["csrf"]}, form=True, headers=html_headers)
    assert missing.status == 404 and "No such silence" in text(missing)


# The JSON API ---------------------------------------------------------------------------------------


def test_the_api_schedules_lists_and_ends_windows(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    listed = data(get(app, "/api/maintenance"))
    assert listed["maintenance"] == [] and listed["csrf"] and listed["site"] is None
    headers = with_token(app)
    response = post(app, "/api/maintenance", {"duration": 1800, "reason": "deploy", "area": "uploads"}, headers=headers)
    assert response.status == 201
    window = data(response)["maintenance"]
    assert window | {"id": ""} == {
        "id": "",
        "site": "acme-studio",
        "area": "uploads",
        "starts_at": "2026-01-05T09:00:00+00:00",
        "ends_at": "2026-01-05T09:30:00+00:00",
        "reason": "deploy",
        "created_at": "2026-01-05T09:00:00+00:00",
        "running": True,
    }
    later = post(
        app,
        "/api/maintenance",
        {"start": "2026-01-05T12:00:00+02:00", "end": "2026-01-05T10:30:00Z", "site": "client-b"},
        headers=headers,
    )
    assert later.status == 201 and data(later)["maintenance"]["starts_at"] == "2026-01-05T10:00:00+00:00"
    assert data(later)["maintenance"]["running"] is False and data(later)["maintenance"]["area"] is None
    assert [w["id"] for w in data(get(app, "/api/maintenance"))["maintenance"]] == [
        window["id"],
        data(later)["maintenance"]["id"],
    ]

    ended = post(app, f"/api/maintenance/{window['id']}/end", b"", headers=headers)
    assert ended.status == 200 and data(ended)["maintenance"]["ends_at"] == "2026-01-05T09:00:00+00:00"
    assert [w["site"] for w in data(get(app, "/api/maintenance"))["maintenance"]] == ["client-b"]
    assert post(app, "/api/maintenance/no-such-window/end", b"", headers=headers).status == 404
    assert post(app, "/api/maintenance/" + "x" * 100 + "/end", b"", headers=headers).status == 404
    assert data(post(app, "/api/maintenance/nope/end", b"", headers=headers)) == {
        "error": "no such maintenance window (ended ones are forgotten after a day)"
    }


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"reason": "no end"}, "give the window an end or a duration (one of them)"),
        ({"duration": 600, "end": "2026-01-05T10:00:00Z"}, "give the window an end or a duration (one of them)"),
        ({"duration": "600"}, "duration must be a number of seconds, got '600'"),
        ({"duration": True}, "duration must be a number of seconds"),
        ({"duration": 0}, "more than 0 seconds and at most a week"),
        ({"end": "2026-01-05T10:00:00"}, "end must name its time zone (e.g. 2026-01-05T09:00:00Z)"),
        ({"end": "tomorrow"}, "end must be a date and time in ISO 8601 with a time zone"),
        ({"end": 1767610800}, "end must be a date and time in ISO 8601 with a time zone"),
        ({"end": "2026-01-05T08:00:00Z"}, "the window ends before now"),
        ({"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T09:30:00Z"}, "must be more than 0 seconds"),
        ({"duration": 600, "durration": 600}, "unknown field durration; send start, end, duration, reason, area, site"),
        ({"duration": 600, "site": ""}, None),
        ({"duration": 600, "site": "x" * 101}, "site must be a site's name of at most 100 characters"),
        ({"duration": 600, "site": 7}, "site must be a site's name"),
        ({"duration": 600, "area": ["uploads"]}, "area must be an area's name"),
        ({"duration": 600, "reason": 42}, "reason must be text, got 42"),
    ],
)
def test_the_api_says_what_is_wrong_with_a_window(
    app: HealthApp, monitor: nmh.Monitor, body: dict[str, Any], says: str | None
) -> None:
    response = post(app, "/api/maintenance", body, headers=with_token(app))
    if says is None:
        assert response.status == 201
        return
    assert response.status == 400 and says in data(response)["error"], data(response)
    assert monitor.maintenance() == []


def test_the_api_refuses_what_is_not_a_json_object(app: HealthApp, monitor: nmh.Monitor) -> None:
    headers = with_token(app)
    for body in (b"[1]", b"\xff\xfe", b"not json", b"x" * 10_000):
        for path in ("/api/maintenance", "/api/silences"):
            response = post(app, path, body, headers=headers)
            assert response.status == 400 and data(response) == {"error": "send a JSON object"}, (path, body[:10])
    assert monitor.maintenance() == [] and monitor.silences() == []


def test_the_api_needs_the_csrf_token_and_a_signed_in_caller(app: HealthApp, monitor: nmh.Monitor) -> None:
    window = monitor.schedule_maintenance(duration=600)
    made = monitor.silence("api_errors")
    theirs = with_token(app, {"authorization": f"Bearer {OTHER_TOKEN}"})["x-csrf-token"]
    calls = [
        ("/api/maintenance", {"duration": 600}),
        (f"/api/maintenance/{window.id}/end", {}),
        ("/api/silences", {"check": "api_errors"}),
        (f"/api/silences/{made.id}/end", {}),
    ]
    for path, body in calls:
        for headers in (
            BEARER,
            {**BEARER, "x-csrf-token": "forged"},
            {**BEARER, "x-csrf-token": theirs},
            {**with_token(app), "sec-fetch-site": "cross-site"},
        ):
            response = post(app, path, body, headers=headers)
            assert response.status == 403 and "CSRF token" in data(response)["error"], (path, headers)
        assert post(app, path, body, headers={"x-csrf-token": theirs}).status == 401
    for path in ("/api/maintenance", "/api/silences"):
        assert get(app, path, headers={}).status == 401
    assert get(app, f"/api/maintenance/{window.id}/end").status == 405
    assert [w.id for w in monitor.maintenance()] == [window.id] and [s.id for s in monitor.silences()] == [made.id]


def test_the_api_makes_lists_and_lifts_silences(app: HealthApp, monitor: nmh.Monitor, clock: FakeClock) -> None:
    headers = with_token(app)
    response = post(
        app, "/api/silences", {"check": "api_errors", "key": "/media-upload", "reason": "on it"}, headers=headers
    )
    assert response.status == 201
    made = data(response)["silence"]
    assert made | {"id": ""} == {
        "id": "",
        "site": "acme-studio",
        "check": "api_errors",
        "key": "/media-upload",
        "starts_at": "2026-01-05T09:00:00+00:00",
        "ends_at": "2026-01-05T11:00:00+00:00",  # two hours unless told
        "reason": "on it",
        "created_at": "2026-01-05T09:00:00+00:00",
        "active": True,
    }
    every = data(
        post(
            app,
            "/api/silences",
            {"check": "upload_failures", "key": None, "duration": 600, "site": "b"},
            headers=headers,
        )
    )["silence"]
    assert every["key"] is None and every["ends_at"] == "2026-01-05T09:10:00+00:00" and every["site"] == "b"
    listed = data(get(app, "/api/silences"))
    assert [s["id"] for s in listed["silences"]] == [every["id"], made["id"]] and listed["csrf"]
    assert [s["id"] for s in data(get(app, "/api/silences", query="site=b"))["silences"]] == [every["id"]]
    lifted = post(app, f"/api/silences/{made['id']}/end", b"", headers=headers)
    assert lifted.status == 200 and data(lifted)["silence"]["active"] is False
    assert [s["id"] for s in data(get(app, "/api/silences"))["silences"]] == [every["id"]]
    assert post(app, "/api/silences/nope/end", b"", headers=headers).status == 404
    for body, says in (
        ({}, "check must be a check's name"),
        ({"check": "api_errors", "duration": 10**9}, "at most a week"),
        ({"check": "api_errors", "key": 5}, "key must be a route or page"),
        ({"check": "api_errors", "until": "later"}, "unknown field until"),
    ):
        bad = post(app, "/api/silences", body, headers=headers)
        assert bad.status == 400 and says in data(bad)["error"], body


def test_a_hung_store_does_not_hold_a_state_change(monitor: nmh.Monitor, internal_errors: Callable[[Any], Any]) -> None:
    """A POST goes through the same worker threads and deadline as every admin request."""
    import threading

    gate = threading.Event()
    slow = HealthApp(monitor, authorize=token_authorizer(TOKEN), admin_routes=admin_routes(), deadline=0.2)
    headers = with_token(slow)
    original = monitor.store.save_maintenance
    monitor.store.save_maintenance = lambda window: (gate.wait(5), original(window))  # type: ignore[method-assign]
    try:
        import json

        from nextmonth_health.web import Request

        request = Request(
            "POST",
            PREFIX + "/api/maintenance",
            "",
            {**headers, "content-type": "application/json"},
            json.dumps({"duration": 600}).encode(),
        )
        response: Response = slow.handle_in_thread(request)
        assert response.status == 503 and data(response) == {"error": "the store is not answering"}
    finally:
        gate.set()
