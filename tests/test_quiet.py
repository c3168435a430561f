"""Planned quiet: maintenance windows, silences and reminders, on real passes over a real fault.

Every upload answers 503 for a dozen people, pass after pass on a fake clock; a sink
records what it is told. Maintenance and silences must change what is told, never what is
recorded: the incident is there, marked, and the admin view keeps its alert.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.values import timestamp

from .test_sinks import RecordingSink, SinkPlugin

pytestmark = pytest.mark.anyio

TICK = 15.0


def build(clock: FakeClock, sink: RecordingSink, **settings: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme",
        store="memory://",
        clock=clock,
        plugins=[SinkPlugin(lambda m: sink)],
        load_entrypoints=False,
        **settings,
    )


async def passes(m: nmh.Monitor, clock: FakeClock, seconds: float, *, failing: bool = True) -> list[nmh.Transition]:
    """``seconds`` of uploads (all failing, or all fine) from twelve people, a pass a tick."""
    transitions: list[nmh.Transition] = []
    for _ in range(int(seconds / TICK)):
        for person in range(12):
            m.record_request("/media-upload", status=503 if failing else 200, duration=0.2, user=f"u-{person}")
        clock.advance(TICK)
        transitions += (await m.evaluate()).transitions
    return transitions


def told(sink: RecordingSink) -> list[str]:
    return [t.kind.value for t in sink.received]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


async def test_a_maintenance_window_records_the_fault_tells_nobody_and_shows_planned_care(
    clock: FakeClock, sink: RecordingSink
) -> None:
    m = build(clock, sink)
    window = m.schedule_maintenance(duration=600, area="uploads", reason="Deploying v2.3")
    during = await passes(m, clock, 120)
    [incident] = m.incidents()
    assert incident.is_open and incident.severity == "critical" and incident.maintenance_id == window.id
    assert sink.received == [], "nothing pushed during planned work"
    assert during and {t.muted for t in during} == {"maintenance"}, "recorded and marked, not told"
    [alert] = m.alerts()
    assert alert.notified_at is None, "the admin view keeps the alert, marked as not sent"
    [notice] = m.notices("uploads")
    assert notice.kind == "maintenance" and notice.title == "Uploads are getting planned care"
    assert "Deploying" not in notice.message and "v2.3" not in notice.title + notice.message
    assert m.notices("portal") == []

    await passes(m, clock, 600 - 120 + TICK)  # the window ends by itself; the fault goes on
    assert told(sink) == ["reminded"], "told once the window is over, as the first alert"
    first = sink.received[0]
    assert first.alert is not None and first.alert.notified_at is not None and first.alert.reminders == 0
    [notice] = m.notices("uploads")
    assert notice.kind == "care" and "everything's under active care" in notice.message

    await passes(m, clock, 600, failing=False)
    assert told(sink) == ["reminded", "resolved"], "a told alert is told resolved"
    assert not m.incidents()[0].is_open


async def test_a_fault_over_before_the_window_ends_is_never_told(clock: FakeClock, sink: RecordingSink) -> None:
    m = build(clock, sink)
    m.schedule_maintenance(duration=3600, reason="Database upgrade")  # the whole site
    await passes(m, clock, 180)
    await passes(m, clock, 600, failing=False)
    [incident] = m.incidents()
    assert incident.status == "resolved" and incident.maintenance_id is not None
    await passes(m, clock, 3600, failing=False)
    assert sink.received == [], "no alert, no reminder, no resolution for what was never told"


async def test_a_window_still_to_come_changes_nothing_and_ending_one_early_lets_alerts_through(
    clock: FakeClock, sink: RecordingSink
) -> None:
    m = build(clock, sink)
    later = m.schedule_maintenance(start=timestamp(clock.now()) + timedelta(hours=1), duration=600)
    now = m.schedule_maintenance(duration=3600, area="uploads")
    assert [w.id for w in m.maintenance()] == [now.id, later.id]
    await passes(m, clock, 60)
    assert sink.received == []
    ended = m.end_maintenance(now.id)
    assert ended is not None and ended.ends_at == timestamp(clock.now())
    await passes(m, clock, 30)
    assert told(sink) == ["reminded"]
    assert [w.id for w in m.maintenance()] == [later.id], "the ended one is no longer listed"
    cancelled = m.end_maintenance(later.id)
    assert cancelled is not None and cancelled.ends_at == cancelled.starts_at and m.maintenance() == []


async def test_an_unacknowledged_alert_is_told_again_until_acknowledged(clock: FakeClock, sink: RecordingSink) -> None:
    m = build(clock, sink, alert_repeat_seconds=1800)
    await passes(m, clock, 60)
    assert told(sink) == ["opened"]
    await passes(m, clock, 1800 - 60 + TICK)
    assert told(sink) == ["opened", "reminded"]
    reminder = sink.received[-1]
    assert reminder.alert is not None and reminder.alert.reminders == 1
    assert "Impact detected for 12 users" in reminder.alert.message
    await passes(m, clock, 1800)
    assert told(sink) == ["opened", "reminded", "reminded"]
    alert = m.acknowledge(reminder.incident.id)
    assert alert is not None and alert.acknowledged_at is not None
    await passes(m, clock, 3 * 1800)
    assert told(sink) == ["opened", "reminded", "reminded"], "acknowledged: no more reminders"


async def test_reminders_default_to_four_hours_and_zero_turns_them_off(clock: FakeClock, sink: RecordingSink) -> None:
    assert nmh.Settings().alert_repeat_seconds == 4 * 3600
    m = build(clock, sink, alert_repeat_seconds=0)
    await passes(m, clock, 3600)
    assert told(sink) == ["opened"]
    with pytest.raises(nmh.ConfigError, match="alert_repeat_seconds must be a number of seconds, 0 or more"):
        build(clock, sink, alert_repeat_seconds=-1)


async def test_a_silence_holds_alerts_and_reminders_for_its_check_and_key_until_it_ends(
    clock: FakeClock, sink: RecordingSink
) -> None:
    m = build(clock, sink, alert_repeat_seconds=600)
    elsewhere = m.silence("api_errors", "/bookings", duration=3600)
    silence = m.silence("api_errors", "/media-upload", duration=1200, reason="Rob is on it")
    assert {s.id for s in m.silences()} == {elsewhere.id, silence.id}
    transitions = await passes(m, clock, 900)
    assert [t.muted for t in transitions if t.incident.check == "api_errors"][:1] == ["silence"]
    assert [t.kind.value for t in sink.received if t.incident.check == "api_errors"] == []
    assert any(i.check == "api_errors" and i.is_open for i in m.incidents()), "still in view"
    await passes(m, clock, 1200 - 900 + TICK)
    assert [t.kind.value for t in sink.received if t.incident.check == "api_errors"] == ["reminded"]
    lifted = m.end_silence(elsewhere.id)
    assert lifted is not None and m.silences() == []


async def test_a_silence_of_every_key_covers_them_all(clock: FakeClock, sink: RecordingSink) -> None:
    m = build(clock, sink)
    m.silence("api_errors", duration=3600)
    m.silence("upload_failures", duration=3600)
    await passes(m, clock, 300)
    assert m.incidents() and sink.received == []


def test_bad_windows_and_silences_are_refused_with_what_to_fix(clock: FakeClock, sink: RecordingSink) -> None:
    m = build(clock, sink)
    now = timestamp(clock.now())
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "an end or a duration"),
        ({"duration": 60, "end": now + timedelta(hours=1)}, "an end or a duration"),
        ({"duration": 8 * 86_400}, "at most a week"),
        ({"duration": -5}, "more than 0 seconds"),
        ({"end": now - timedelta(minutes=1)}, "ends before now"),
        ({"start": now.replace(tzinfo=None), "duration": 60}, "with a time zone"),
        ({"duration": 60, "area": ""}, "area must be"),
        ({"duration": 60, "reason": "x" * 501}, "at most 500 characters"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            m.schedule_maintenance(**kwargs)
    with pytest.raises(ValueError, match="check must be"):
        m.silence("", duration=60)
    with pytest.raises(ValueError, match="at most a week"):
        m.silence("api_errors", duration=30 * 86_400)
    assert m.maintenance() == [] and m.silences() == []
    assert m.end_maintenance("nope") is None and m.end_silence("nope") is None


async def test_a_renderer_can_word_planned_work_its_own_way(clock: FakeClock, sink: RecordingSink) -> None:
    class Studio:
        name = "studio"
        areas = ("uploads",)

        def render(self, incident: nmh.Incident) -> None:
            return None

        def render_maintenance(self, window: nmh.MaintenanceWindow, incident: nmh.Incident) -> nmh.Notice:
            return nmh.Notice(
                area=incident.area,
                site=incident.site,
                title="Studio upgrade",
                message="Back soon.",
                kind="maintenance",
            )

    class Renders:
        @nmh.hookimpl
        def register_message_renderers(self, register: Any) -> None:
            register(Studio())

    m = nmh.Monitor("acme", store="memory://", clock=clock, plugins=[Renders()], load_entrypoints=False)
    m.schedule_maintenance(duration=600, area="uploads")
    await passes(m, clock, 120)
    [notice] = m.notices("uploads")
    assert (notice.title, notice.kind) == ("Studio upgrade", "maintenance")


ADMIN_PROCESS = """
import sys
import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock

clock = FakeClock(START + float(sys.argv[2]))
monitor = nmh.Monitor("acme", store=sys.argv[1], clock=clock, load_entrypoints=False)
if sys.argv[3] == "plan":
    window = monitor.schedule_maintenance(duration=600, area="uploads", reason="Deploying")
    silences = [monitor.silence(check, duration=3600) for check in ("api_errors", "upload_failures")]
    print(window.id, *(s.id for s in silences))
else:
    for made in sys.argv[3:]:
        print(monitor.end_maintenance(made) or monitor.end_silence(made))
"""


def admin_process(store: str, at: float, *what: str) -> list[str]:
    """Rob, in another process on the same store: plans quiet, or ends what ``what`` names."""
    done = subprocess.run(
        [sys.executable, "-c", ADMIN_PROCESS, store, str(at), *what],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'health.db'}"
    return request.getfixturevalue("redis_db").url()  # type: ignore[no-any-return]


async def failing(m: nmh.Monitor, clock: FakeClock, seconds: float) -> None:
    """Failing uploads, as 503s and as failed uploads alike: two checks, one area."""
    for _ in range(int(seconds / TICK)):
        for person in range(12):
            m.record_request("/media-upload", status=503, duration=0.2, user=f"u-{person}")
            m.record_upload(ok=False, user=f"u-{person}")
        clock.advance(TICK)
        await m.evaluate()


async def test_windows_and_silences_made_in_one_process_hold_in_another(
    clock: FakeClock, sink: RecordingSink, shared_store: str
) -> None:
    window_id, *silence_ids = admin_process(shared_store, 0, "plan")
    m = nmh.Monitor(
        "acme",
        store=shared_store,
        clock=clock,
        plugins=[SinkPlugin(lambda m: sink)],
        load_entrypoints=False,
    )
    try:
        await failing(m, clock, 300)
        assert {i.check for i in m.incidents()} == {"api_errors", "upload_failures"}
        assert {w.id for w in m.maintenance()} == {window_id} and {s.id for s in m.silences()} == set(silence_ids)
        assert sink.received == [], "the other process's window holds here"
        assert m.notices("uploads")[0].kind == "maintenance"

        admin_process(shared_store, clock.now() - START, window_id)
        await failing(m, clock, 60)
        assert sink.received == [], "the window ended there; the silences made there still hold here"
        assert m.notices("uploads")[0].kind == "care"

        admin_process(shared_store, clock.now() - START, *silence_ids)
        await failing(m, clock, 30)
        assert [t.kind.value for t in sink.received] == ["reminded"], "quiet over everywhere: told once"
        assert m.alerts()[0].notified_at is not None
    finally:
        m.store.close()
