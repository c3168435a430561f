"""Whole stories under the fake clock: quiet traffic, each of the four problems, recovery."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

pytestmark = pytest.mark.anyio

USERS = [f"u-{i}" for i in range(40)]


def normal_minute(m: nmh.Monitor, users: list[str] = USERS, site: str | None = None) -> None:
    """A minute of healthy traffic: every user hits each area once."""
    for user in users:
        for route in ("/media-upload", "/bookings/42", "/portal/home"):
            m.record_request(route, 200, 0.08, user=user, site=site)
        m.record_login(True, user=user, site=site)
        m.record_upload(True, user=user, site=site, size=120_000)
        m.record_page_load("/dashboard", 1.1, user=user, site=site)
    m.record_request("/media-upload", 500, 0.3, user=users[0], site=site)
    m.record_login(False, user=users[1], site=site)


def upload_errors(m: nmh.Monitor, hurt: int, per_user: int = 3, site: str | None = None) -> Callable[[], None]:
    """A minute of normal traffic plus ``per_user`` 503s on /media-upload for ``hurt`` users."""

    def minute() -> None:
        normal_minute(m, site=site)
        for user in USERS[:hurt]:
            for _ in range(per_user):
                m.record_request("/media-upload", 503, 0.2, user=user, site=site)

    return minute


async def play(
    m: nmh.Monitor, clock: FakeClock, minutes: int, minute: Callable[[], None], every: float = 15.0
) -> list[nmh.Evaluation]:
    """Record ``minute()`` once a minute and evaluate every ``every`` seconds."""
    passes = []
    for _ in range(minutes):
        minute()
        for _ in range(int(60 / every)):
            clock.advance(every)
            passes.append(await m.evaluate())
    return passes


def transitions(passes: list[nmh.Evaluation]) -> list[tuple[str, str, str]]:
    return [(t.kind.value, t.incident.check, t.incident.severity.value) for p in passes for t in p.transitions]


@pytest.fixture
def warm(monitor: nmh.Monitor, fake_clock: FakeClock) -> Callable[[], object]:
    async def warm_up() -> None:
        passes = await play(monitor, fake_clock, 60, lambda: normal_minute(monitor))
        assert transitions(passes) == []

    return warm_up


async def test_an_hour_of_normal_traffic_opens_nothing(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    passes = await play(monitor, fake_clock, 60, lambda: normal_minute(monitor))
    assert transitions(passes) == []
    assert {r.check for r in passes[-1].readings} == {
        "api_errors",
        "dashboard_load",
        "session_failures",
        "upload_failures",
    }
    assert not any(r.status.is_problem for r in passes[-1].readings)
    assert monitor.incidents() == [] and monitor.alerts() == []
    for area in ("uploads", "bookings", "portal", "login", "dashboard"):
        assert monitor.notices(area) == []


async def test_5xx_spike_on_media_upload_notices_users_then_alerts_rob(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()

    passes = await play(monitor, fake_clock, 3, upload_errors(monitor, 12))
    kinds = transitions(passes)
    assert kinds[0] == ("opened", "api_errors", "degraded") or kinds[0] == ("opened", "api_errors", "critical")
    [incident] = monitor.incidents()
    assert (incident.site, incident.area, incident.key, incident.status) == (
        "test-site",
        "uploads",
        "/media-upload",
        "open",
    )
    [notice] = monitor.notices("uploads")
    assert notice.area == "uploads" and "retry" in notice.message.lower() or "try again" in notice.message.lower()
    assert monitor.notices("bookings") == []
    assert incident.severity == "critical"
    [alert] = monitor.alerts()
    assert alert.incident_id == incident.id
    assert alert.message == (
        "⚡ Health Alert:\n"
        "API Errors on /media-upload route have exceeded safe thresholds.\n"
        "Impact detected for 12 users.\n"
        "Monitoring active."
    )


async def test_alert_is_updated_in_place_as_impact_grows(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()
    await play(monitor, fake_clock, 2, upload_errors(monitor, 10, per_user=4))
    [first] = monitor.alerts()
    await play(monitor, fake_clock, 2, upload_errors(monitor, 30, per_user=4))
    [alert] = monitor.alerts()
    assert alert.incident_id == first.incident_id and alert.created_at == first.created_at
    assert alert.affected_users == 30 and "Impact detected for 30 users." in alert.message
    assert alert.updated_at > first.updated_at
    assert len(monitor.incidents()) == 1


async def test_degraded_held_for_ten_minutes_escalates(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()

    def slow() -> None:
        normal_minute(monitor)
        for user in USERS[:20]:
            monitor.record_page_load("/dashboard", 4.2, user=user)
            monitor.record_page_load("/dashboard", 4.6, user=user)

    passes = await play(monitor, fake_clock, 9, slow)
    assert transitions(passes) == [("opened", "dashboard_load", "degraded")]
    assert monitor.alerts() == []
    [notice] = monitor.notices("dashboard")
    assert notice.severity == "degraded"
    passes = await play(monitor, fake_clock, 3, slow)
    assert transitions(passes) == [("escalated", "dashboard_load", "critical")]
    [alert] = monitor.alerts()
    assert alert.message.startswith("⚡ Health Alert:\nDashboard load times on /dashboard have exceeded")
    assert "Impact detected for 20 users." in alert.message


async def test_session_failure_spike(monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]) -> None:
    await warm()

    def storm() -> None:
        normal_minute(monitor)
        for user in USERS[:8]:
            monitor.record_login(False, user=user)
            monitor.record_session_expired(user=USERS[-1 - USERS.index(user)])

    passes = await play(monitor, fake_clock, 2, storm)
    assert ("opened", "session_failures", "degraded") in transitions(passes) or (
        "opened",
        "session_failures",
        "critical",
    ) in transitions(passes)
    [incident] = monitor.incidents()
    assert incident.area == "login" and incident.affected_users == 16
    assert monitor.notices("login")


async def test_upload_failures_over_ten_percent(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()

    def failing_uploads() -> None:  # 20 % of uploads fail: surely over the 10 % line
        normal_minute(monitor)
        for user in USERS[:10]:
            monitor.record_upload(False, user=user)

    passes = await play(monitor, fake_clock, 5, failing_uploads)
    assert transitions(passes) == [("opened", "upload_failures", "degraded")]
    [incident] = monitor.incidents()
    assert incident.area == "uploads" and incident.affected_users == 10
    assert monitor.alerts() == []


async def test_upload_failures_over_a_quarter_alert_at_once(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()

    def failing_uploads() -> None:
        normal_minute(monitor)
        for user in USERS:
            monitor.record_upload(False, user=user)

    passes = await play(monitor, fake_clock, 2, failing_uploads)
    assert ("opened", "upload_failures", "critical") in transitions(passes) or transitions(passes)[:2] == [
        ("opened", "upload_failures", "degraded"),
        ("escalated", "upload_failures", "critical"),
    ]
    [alert] = monitor.alerts()
    assert alert.message.splitlines()[1] == "Media upload failures have exceeded safe thresholds."


async def test_two_stray_errors_on_a_tiny_site_page_nobody(fake_clock: FakeClock, internal_errors: object) -> None:
    m = nmh.Monitor("tiny", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    users = ["a", "b", "c"]

    def quiet_minute() -> None:
        for user in users:
            m.record_request("/portal", 200, 0.1, user=user)

    passes = await play(m, fake_clock, 30, quiet_minute)
    m.record_request("/portal", 500, 0.1, user="a")
    m.record_request("/media-upload", 502, 0.1, user="b")
    m.record_upload(False, user="b")
    m.record_upload(False, user="c")
    passes += await play(m, fake_clock, 30, quiet_minute)
    assert transitions(passes) == []
    assert m.alerts() == [] and m.incidents() == []


async def test_a_real_spike_is_not_hidden_inside_a_big_site(fake_clock: FakeClock, internal_errors: object) -> None:
    m = nmh.Monitor("big", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    crowd = [f"user-{i}" for i in range(2000)]

    def busy_minute(extra_errors: int) -> None:
        for i, user in enumerate(crowd):
            m.record_request("/bookings", 500 if i % 1000 == 0 else 200, 0.05, user=user)
        for user in crowd[:extra_errors]:
            m.record_request("/bookings", 503, 0.05, user=user)

    passes = await play(m, fake_clock, 60, lambda: busy_minute(0))
    assert transitions(passes) == []
    passes = await play(m, fake_clock, 3, lambda: busy_minute(120))
    assert ("opened", "api_errors", "degraded") in transitions(passes)
    [incident] = m.incidents()
    assert incident.key == "/bookings" and incident.affected_users >= 120


async def test_a_spike_on_one_site_never_leaks_to_another(fake_clock: FakeClock, internal_errors: object) -> None:
    m = nmh.Monitor("acme", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]

    def minute(failing: bool) -> None:
        normal_minute(m, site="acme")
        normal_minute(m, site="zenith")
        if failing:
            for user in USERS[:15]:
                for _ in range(4):
                    m.record_request("/portal/home", 502, 0.1, user=user, site="zenith")

    await play(m, fake_clock, 60, lambda: minute(False))
    await play(m, fake_clock, 3, lambda: minute(True))
    assert [i.site for i in m.incidents()] == ["zenith"]
    assert m.incidents(site="acme") == [] and m.alerts(site="acme") == []
    assert m.notices("portal", site="acme") == []
    assert m.notices("portal", site="zenith")
    assert [a.site for a in m.alerts()] == ["zenith"]


async def test_recovery_resolves_once_and_clears_after_a_day(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()

    await play(monitor, fake_clock, 3, upload_errors(monitor, 12))
    [incident] = monitor.incidents()
    passes = await play(monitor, fake_clock, 4, lambda: normal_minute(monitor))
    assert transitions(passes) == [], "still inside the window: no premature resolution"
    passes = await play(monitor, fake_clock, 10, lambda: normal_minute(monitor))
    assert transitions(passes) == [("resolved", "api_errors", "critical")]
    [resolved] = monitor.incidents()
    assert resolved.id == incident.id and resolved.status == "resolved" and resolved.resolved_at is not None
    assert monitor.notices("uploads") == []
    [alert] = monitor.alerts()
    assert alert.resolved_at == resolved.resolved_at
    assert monitor.incidents(include_resolved=False) == []
    fake_clock.advance(23 * 3600)
    await monitor.evaluate()
    assert [i.id for i in monitor.incidents()] == [incident.id]
    fake_clock.advance(3600 + 60)
    await monitor.evaluate()
    assert monitor.incidents() == [] and monitor.alerts() == []


async def test_a_noisy_signal_does_not_flap(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()
    state = {"bad": True}

    def wobbling() -> None:
        normal_minute(monitor)
        if state["bad"]:
            for user in USERS[:20]:
                monitor.record_upload(False, user=user)
        state["bad"] = not state["bad"]

    passes = await play(monitor, fake_clock, 40, wobbling)
    kinds = [k for k, _, _ in transitions(passes)]
    assert kinds.count("opened") == 1
    assert "resolved" not in kinds
    assert len(monitor.incidents()) == 1


async def test_people_are_counted_over_the_incidents_life_not_one_window(
    monitor: nmh.Monitor, fake_clock: FakeClock, warm: Callable[[], object]
) -> None:
    await warm()
    # Twelve minutes of failing uploads, each minute hurting three new people: no five-minute
    # window holds more than fifteen of them, but thirty-six were hurt.
    for minute in range(12):
        hurt = USERS[(3 * minute) % 40 : (3 * minute) % 40 + 3]

        def failing(hurt: list[str] = hurt) -> None:
            normal_minute(monitor)
            for user in hurt:
                for _ in range(4):
                    monitor.record_request("/media-upload", 503, 0.2, user=user)

        await play(monitor, fake_clock, 1, failing)
    [incident] = monitor.incidents()
    assert incident.affected_users == 36, "the union since it opened"
    assert 3 <= incident.affected_now <= 18, "and the people of the latest window beside it"
    [alert] = monitor.alerts()
    assert "Impact detected for 36 users." in alert.message


async def test_a_backend_down_on_every_route_is_one_site_wide_incident_seen_in_every_area(
    fake_clock: FakeClock, internal_errors: object
) -> None:
    m = nmh.Monitor("night", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    people = [f"n{i}" for i in range(30)]
    paths = ("/", "/assets/site.css", "/media-upload", "/bookings/3", "/portal/home", "/login")

    def quiet_minute(status: int = 200) -> None:
        # A night: a few people, one request each somewhere on the site.
        for n, person in enumerate(people[:6]):
            m.record_request(paths[n % len(paths)], status, 0.1, user=person)

    await play(m, fake_clock, 70, quiet_minute)
    assert m.incidents() == []
    passes = await play(m, fake_clock, 5, lambda: quiet_minute(502))
    opened = [t.incident for p in passes for t in p.opened]
    assert [(i.check, i.key, i.area) for i in opened] == [("api_errors", "*", "site")], (
        "one incident, not one per route"
    )
    [incident] = m.incidents()
    assert incident.summary == "API Errors across the site"
    for area in ("uploads", "bookings", "portal", "login", "dashboard"):
        [notice] = m.notices(area)
        assert notice.area == "site"


async def test_a_site_wide_alert_absorbs_the_alert_of_a_route(fake_clock: FakeClock, internal_errors: object) -> None:
    m = nmh.Monitor("acme", clock=fake_clock, load_entrypoints=False)
    internal_errors(m)  # type: ignore[operator]
    await play(m, fake_clock, 65, lambda: normal_minute(m))

    def uploads_fail() -> None:
        normal_minute(m)
        for user in USERS[:20]:
            m.record_request("/media-upload", 503, 0.2, user=user)

    await play(m, fake_clock, 2, uploads_fail)
    [route_alert] = m.alerts()

    def everything_fails() -> None:
        uploads_fail()
        for user in USERS:
            for path in ("/", "/assets/app.js", "/help"):
                m.record_request(path, 502, 0.1, user=user)

    await play(m, fake_clock, 2, everything_fails)
    assert {(i.key, i.area) for i in m.incidents()} == {("/media-upload", "uploads"), ("*", "site")}
    [alert] = m.alerts()
    assert alert.incident_id == route_alert.incident_id and len(alert.incident_ids) == 2, "one problem, one alert"
