"""The incident lifecycle, fed readings directly: hysteresis, escalation, one per key."""

from __future__ import annotations

import pytest

from nextmonth_health.judge.incidents import IncidentTracker
from nextmonth_health.settings import Settings
from nextmonth_health.store import MemoryStore
from nextmonth_health.testing import START
from nextmonth_health.values import Health, Reading, Transition

SETTINGS = Settings()


def reading(status: str, users: int = 3, key: str = "/bookings", check: str = "api_errors") -> Reading:
    return Reading(
        check=check,
        site="s",
        key=key,
        area="bookings",
        status=Health(status),
        subject=f"API Errors on {key} route",
        value=0.5,
        threshold=0.01,
        affected_users=users,
    )


class Driver:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.tracker = IncidentTracker(self.store)
        self.now = START

    def step(self, *readings: Reading, seconds: float = 15, ran: tuple[str, ...] = ("api_errors",)) -> list[Transition]:
        self.now += seconds
        return self.tracker.apply("s", readings, self.now, SETTINGS, checks_run=ran)

    def kinds(self, transitions: list[Transition]) -> list[str]:
        return [t.kind.value for t in transitions]


@pytest.fixture
def d() -> Driver:
    return Driver()


def test_healthy_and_elevated_readings_open_nothing(d: Driver) -> None:
    for status in ("ok", "elevated", "unknown") * 10:
        assert d.step(reading(status)) == []
    assert d.store.incidents() == []


def test_degraded_opens_one_incident_per_key(d: Driver) -> None:
    [opened] = d.step(reading("degraded"), reading("degraded", key="/portal"))[:1]
    assert opened.kind == "opened" and opened.alert is None
    assert d.step(reading("degraded"), reading("degraded", key="/portal")) == []
    assert sorted(i.key for i in d.store.incidents()) == ["/bookings", "/portal"]
    assert opened.incident.severity == "degraded" and opened.incident.status == "open"


def test_critical_opens_with_an_alert(d: Driver) -> None:
    [t] = d.step(reading("critical", users=12))
    assert t.kind == "opened" and t.incident.severity == "critical"
    assert t.alert is not None and "Impact detected for 12 users." in t.alert.message
    assert t.alert.incident_id == t.incident.id


def test_degraded_held_for_escalate_after_becomes_critical_once(d: Driver) -> None:
    d.step(reading("degraded"))
    kinds = []
    for _ in range(int(SETTINGS.escalate_after / 15) + 10):
        kinds += d.kinds(d.step(reading("degraded")))
    assert kinds == ["escalated"]
    [incident] = d.store.incidents()
    assert (incident.escalated_at - incident.opened_at).total_seconds() == SETTINGS.escalate_after


def test_severity_never_drops(d: Driver) -> None:
    d.step(reading("critical"))
    for _ in range(20):
        assert d.step(reading("degraded")) == []
    [incident] = d.store.incidents()
    assert incident.severity == "critical"


def test_resolves_only_after_a_whole_cooldown_of_ok(d: Driver) -> None:
    d.step(reading("degraded"))
    steps = int(SETTINGS.cooldown_seconds / 15)
    for _ in range(steps - 1):
        assert d.step(reading("ok")) == []
    assert d.step(reading("elevated")) == [], "not healthy: the cool-down starts again"
    for _ in range(steps):
        assert d.step(reading("ok")) == []
    [resolved] = d.step(reading("ok"))
    assert resolved.kind == "resolved" and resolved.incident.status == "resolved"
    assert resolved.previous is not None and resolved.previous.status == "open"
    assert d.step(reading("ok")) == []


def test_unknown_readings_neither_resolve_nor_escalate(d: Driver) -> None:
    d.step(reading("degraded"))
    for _ in range(200):
        assert d.step(reading("unknown")) == []
    [incident] = d.store.incidents()
    assert incident.is_open and incident.severity == "degraded"


def test_an_incident_without_a_reading_recovers_only_if_its_check_ran(d: Driver) -> None:
    d.step(reading("degraded"))
    for _ in range(100):
        assert d.step(ran=()) == []
    kinds = []
    for _ in range(int(SETTINGS.cooldown_seconds / 15) + 1):
        kinds += d.kinds(d.step(ran=("api_errors",)))
    assert kinds == ["resolved"]


def test_growing_impact_updates_the_alert_in_place(d: Driver) -> None:
    [opened] = d.step(reading("critical", users=3))
    [updated] = d.step(reading("critical", users=9))
    assert updated.kind == "updated" and updated.alert is not None
    assert updated.alert.created_at == opened.alert.created_at  # type: ignore[union-attr]
    assert updated.incident.affected_users == 9
    assert d.step(reading("critical", users=4)) == [], "impact is the peak, not the latest"
    assert d.store.incidents()[0].affected_users == 9


def test_a_new_problem_after_resolution_is_a_new_incident(d: Driver) -> None:
    [first] = d.step(reading("degraded"))
    for _ in range(int(SETTINGS.cooldown_seconds / 15) + 1):
        d.step(reading("ok"))
    [second] = d.step(reading("degraded"))
    assert second.kind == "opened" and second.incident.id != first.incident.id
    assert [i.status for i in d.store.incidents()] == ["open", "resolved"]


def test_one_problem_in_one_area_raises_one_alert(d: Driver) -> None:
    [first] = d.step(reading("critical", users=5))
    uploads = reading("critical", users=9, key="", check="upload_failures")
    [second] = d.step(reading("critical", users=5), uploads, ran=("api_errors", "upload_failures"))
    assert second.kind == "opened" and second.incident.alert_id == first.incident.id
    assert second.alert is not None and second.alert.incident_id == first.incident.id
    assert second.alert.incident_ids == (first.incident.id, second.incident.id)
    assert second.alert.affected_users == 9
    assert second.alert.message.splitlines()[1] == (
        "API Errors on /bookings route and API Errors on  route have exceeded safe thresholds."
    )


def test_problems_in_different_areas_raise_separate_alerts(d: Driver) -> None:
    [a] = d.step(reading("critical"))
    other = Reading(
        check="session_failures",
        site="s",
        key="",
        area="login",
        status=Health.CRITICAL,
        subject="Session failures",
        affected_users=4,
    )
    [b] = d.step(reading("critical"), other, ran=("api_errors", "session_failures"))
    assert a.alert is not None and b.alert is not None
    assert {a.alert.incident_id, b.alert.incident_id} == {a.incident.id, b.incident.id}


def test_a_shared_alert_resolves_with_its_last_incident(d: Driver) -> None:
    both = ("api_errors", "upload_failures")
    uploads = reading("critical", key="", check="upload_failures")
    d.step(reading("critical"), uploads, ran=both)
    cooldown = int(SETTINGS.cooldown_seconds / 15) + 1
    seen: list[Transition] = []
    for _ in range(cooldown):
        seen += d.step(reading("ok"), uploads, ran=both)
    [resolved] = seen
    assert resolved.kind == "resolved" and resolved.alert is not None
    assert resolved.alert.resolved_at is None, "the uploads half of the problem is still open"
    assert resolved.alert.message.startswith("⚡ Health Alert:")
    for _ in range(cooldown):
        seen += d.step(reading("ok"), reading("ok", key="", check="upload_failures"), ran=both)
    last = seen[-1]
    assert last.kind == "resolved" and last.alert is not None and last.alert.resolved_at is not None
    assert last.alert.incident_id == resolved.alert.incident_id
    assert last.alert.message.splitlines()[0] == "✓ Health Alert resolved:"
    assert "Impact was detected for 3 users." in last.alert.message


def test_a_double_evaluation_announces_one_opening(d: Driver) -> None:
    other = IncidentTracker(d.store)
    first = d.tracker.apply("s", [reading("critical")], START + 15, SETTINGS, checks_run=("api_errors",), open_now=[])
    second = other.apply("s", [reading("critical")], START + 15, SETTINGS, checks_run=("api_errors",), open_now=[])
    assert [t.kind for t in first] == ["opened"] and second == []
    assert len(d.store.incidents()) == 1
