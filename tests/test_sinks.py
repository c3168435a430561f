"""Sinks hear about incidents one by one: isolated, retried with backoff, never lost silently.

Incidents are real: 5xx traffic is recorded on a critical route and ``evaluate`` runs after
the FakeClock moves. Sinks that raise on purpose run on a Monitor built here, and the test
asserts on ``monitor.errors.counts`` instead of using the failing ``monitor`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

import nextmonth_health as nmh
import nextmonth_health.store.memory
from nextmonth_health import Severity, Transition, TransitionKind, hookimpl
from nextmonth_health.testing import FakeClock, capture_logs

pytestmark = pytest.mark.anyio


class SinkPlugin:
    """Registers the sinks a factory makes for the monitor being built."""

    def __init__(self, *factories: Callable[[nmh.Monitor], Any]) -> None:
        self.factories = factories

    @hookimpl
    def register_alert_sinks(self, register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
        for factory in self.factories:
            register(factory(monitor))


class RecordingSink:
    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.received: list[Transition] = []

    def send(self, transition: Transition) -> None:
        self.received.append(transition)


class RaisingSink:
    name = "raising"

    def send(self, transition: Transition) -> None:
        raise ConnectionError("webhook endpoint refused the connection")


class FlakySink:
    """Fails its first ``failures`` delivery attempts; logs the time of every attempt."""

    def __init__(self, clock: FakeClock, failures: int = 10**9, name: str = "flaky") -> None:
        self.name = name
        self.clock = clock
        self.failures = failures
        self.attempts: list[tuple[str, str, float]] = []
        self.delivered: list[Transition] = []

    def send(self, transition: Transition) -> None:
        key = (transition.kind.value, transition.incident.id)
        self.attempts.append((*key, self.clock.now()))
        if len(self.attempts) <= self.failures:
            raise TimeoutError("third-party API timed out")
        self.delivered.append(transition)

    def times(self, kind: str) -> list[float]:
        return [t for k, _, t in self.attempts if k == kind]


def build(clock: FakeClock, *plugins: Any, **kwargs: Any) -> nmh.Monitor:
    return nmh.Monitor("acme", store="memory://", clock=clock, plugins=plugins, load_entrypoints=False, **kwargs)


def api_outage(monitor: nmh.Monitor, route: str = "/media-upload", users: int = 10, site: str | None = None) -> None:
    """Every request on ``route`` fails: a critical API error incident at the next pass."""
    for i in range(users):
        monitor.record_request(route, status=503, duration=0.2, user=f"u-{i}", site=site)


async def open_outage(monitor: nmh.Monitor, **kwargs: Any) -> nmh.Evaluation:
    api_outage(monitor, **kwargs)
    evaluation = await monitor.evaluate()
    assert [(t.kind, t.incident.check, t.incident.severity) for t in evaluation.transitions] == [
        (TransitionKind.OPENED, "api_errors", Severity.CRITICAL)
    ]
    return evaluation


# Isolation.


async def test_the_alert_is_kept_for_the_admin_view_whatever_the_sinks_do(fake_clock):
    """The monitor keeps the alert itself: a raising sink, or a third-party sink that took
    the name the bundled admin-panel sink once had, cannot keep it from the admin view."""
    after = RecordingSink("after")
    impostor = RecordingSink("admin_panel")
    monitor = build(fake_clock, SinkPlugin(lambda m: RaisingSink(), lambda m: impostor, lambda m: after))
    assert [s.name for s in monitor.sinks] == ["log", "raising", "admin_panel", "after"]
    evaluation = await open_outage(monitor)
    [alert] = monitor.alerts()
    assert alert == attrs.evolve(evaluation.transitions[0].alert, notified_at=alert.notified_at)
    assert alert.notified_at is not None, "told to the push sinks, and noted"
    assert "API Errors on /media-upload route have exceeded safe thresholds" in alert.message
    assert "Impact detected for 10 users" in alert.message
    assert [t.kind for t in after.received] == [TransitionKind.OPENED] == [t.kind for t in impostor.received]
    assert monitor.errors.counts["sink.raising"] == 1
    status = monitor.status()
    assert (status.sink_pending, status.sink_dropped) == (1, 0)  # the raising one will be retried


async def test_an_alert_the_store_would_not_keep_is_still_told_and_kept_at_the_next_pass(fake_clock):
    class Refusing(nmh.store.memory.MemoryStore):  # type: ignore[name-defined]
        refuse = True

        def save_alert(self, alert: nmh.Alert) -> None:
            if self.refuse:
                raise ConnectionError("the store went away for a moment")
            super().save_alert(alert)

    store = Refusing("memory://")
    told = RecordingSink()
    monitor = nmh.Monitor(
        "acme", store=store, clock=fake_clock, plugins=[SinkPlugin(lambda m: told)], load_entrypoints=False
    )
    await open_outage(monitor)
    assert [t.kind for t in told.received] == [TransitionKind.OPENED] and monitor.alerts() == []
    assert monitor.errors.counts["store.save_alert"] >= 1
    store.refuse = False
    api_outage(monitor)
    fake_clock.advance(15)
    await monitor.evaluate()
    [alert] = monitor.alerts()
    assert alert.incident_id == told.received[0].incident.id and "Impact detected" in alert.message


async def test_a_raising_sink_does_not_stop_the_bundled_log_sink(fake_clock):
    monitor = build(fake_clock, SinkPlugin(lambda m: RaisingSink()))
    with capture_logs() as logs:
        await open_outage(monitor)
    assert [e["event"] for e in logs if e["event"].startswith("nextmonth_health.incident_")] == [
        "nextmonth_health.incident_opened"
    ]
    assert len(monitor.alerts()) == 1


# Retries with exponential backoff on the monitor's clock.


async def drive(monitor: nmh.Monitor, clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    for _ in range(int(seconds / step)):
        clock.advance(step)
        await monitor.evaluate()


async def test_failed_deliveries_retry_with_exponential_backoff_then_give_up(fake_clock):
    flaky = FlakySink(fake_clock)
    monitor = build(fake_clock, SinkPlugin(lambda m: flaky))
    t0 = fake_clock.now()
    await open_outage(monitor)
    assert monitor.status().sink_pending == 1
    await drive(monitor, fake_clock, 120)
    offsets = [t - t0 for t in flaky.times("opened")]
    assert offsets == [0, 5, 15, 35, 75]  # 5 s, then doubling: 10, 20, 40; five attempts in all
    status = monitor.status()
    assert (status.sink_pending, status.sink_dropped) == (0, 1)
    assert monitor.errors.counts["sink.flaky"] == 5
    assert len(monitor.alerts()) == 1  # the admin panel got it the first time
    await drive(monitor, fake_clock, 120, step=10)
    assert len(flaky.times("opened")) == 5  # given up for good


async def test_a_delivery_that_succeeds_on_retry_is_delivered_once(fake_clock):
    flaky = FlakySink(fake_clock, failures=2)
    monitor = build(fake_clock, SinkPlugin(lambda m: flaky))
    t0 = fake_clock.now()
    await open_outage(monitor)
    await drive(monitor, fake_clock, 60)
    assert [t - t0 for t in flaky.times("opened")] == [0, 5, 15]
    assert [t.kind for t in flaky.delivered] == [TransitionKind.OPENED]
    status = monitor.status()
    assert (status.sink_pending, status.sink_dropped) == (0, 0)
    assert monitor.errors.counts["sink.flaky"] == 2


async def test_backoff_is_capped(fake_clock):
    flaky = FlakySink(fake_clock)
    monitor = build(fake_clock, SinkPlugin(lambda m: flaky))
    monitor.delivery.max_attempts = 9
    t0 = fake_clock.now()
    await open_outage(monitor)
    await drive(monitor, fake_clock, 1300, step=5)
    delays = [b - a for a, b in zip(flaky.times("opened"), flaky.times("opened")[1:], strict=False)]
    assert flaky.times("opened")[0] == t0
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]  # 320 capped at max_backoff
    assert monitor.status().sink_dropped >= 1


async def test_a_retry_does_not_hold_up_new_transitions(fake_clock):
    flaky = FlakySink(fake_clock, failures=1)
    recorder = RecordingSink()
    monitor = build(fake_clock, SinkPlugin(lambda m: flaky, lambda m: recorder))
    await open_outage(monitor, route="/media-upload")
    fake_clock.advance(1)
    await open_outage(monitor, route="/bookings")
    assert [t.incident.key for t in recorder.received] == ["/media-upload", "/bookings"]
    assert [t.incident.key for t in flaky.delivered] == ["/bookings"]  # its first try at the new one worked
    fake_clock.advance(5)
    await monitor.evaluate()
    assert [t.incident.key for t in flaky.delivered] == ["/bookings", "/media-upload"]


# Kinds of sinks.


async def test_an_async_sink_receives_transitions(fake_clock, internal_errors):
    class AsyncSink:
        name = "async"

        def __init__(self) -> None:
            self.received: list[Transition] = []

        async def send(self, transition: Transition) -> None:
            await anyio.lowlevel.checkpoint()
            self.received.append(transition)

    sink = AsyncSink()
    monitor = build(fake_clock, SinkPlugin(lambda m: sink))
    internal_errors(monitor)
    evaluation = await open_outage(monitor)
    assert sink.received == list(evaluation.transitions)
    assert sink.received[0].alert is not None
    assert monitor.delivery.delivered == 2  # the log sink and ours


async def test_one_problem_gives_one_alert_updated_in_place(fake_clock, internal_errors):
    sink = RecordingSink()
    monitor = build(fake_clock, SinkPlugin(lambda m: sink))
    internal_errors(monitor)
    await open_outage(monitor, users=10)
    await drive(monitor, fake_clock, 30, step=5)
    assert [t.kind for t in sink.received] == [TransitionKind.OPENED]  # quiet while nothing changes
    for i in range(10, 15):
        monitor.record_request("/media-upload", status=503, duration=0.2, user=f"u-{i}")
    fake_clock.advance(5)
    evaluation = await monitor.evaluate()
    assert [t.kind for t in evaluation.transitions] == [TransitionKind.UPDATED]
    [alert] = monitor.alerts()
    assert alert.affected_users == 15
    assert "Impact detected for 15 users" in alert.message
    assert alert.incident_id == sink.received[0].incident.id


async def test_sinks_hear_about_each_site_separately(fake_clock, internal_errors):
    sink = RecordingSink()
    monitor = build(fake_clock, SinkPlugin(lambda m: sink))
    internal_errors(monitor)
    api_outage(monitor, site="beta")
    api_outage(monitor, route="/portal", site="gamma", users=8)
    evaluation = await monitor.evaluate()
    assert sorted((t.incident.site, t.incident.key) for t in evaluation.transitions) == [
        ("beta", "/media-upload"),
        ("gamma", "/portal"),
    ]
    assert [a.site for a in monitor.alerts("beta")] == ["beta"]
    assert monitor.alerts("gamma")[0].affected_users == 8
    assert monitor.alerts("acme") == []


# The bundled log sink.


async def test_the_log_sink_emits_structlog_events_for_each_transition(fake_clock, internal_errors):
    monitor = build(fake_clock)
    internal_errors(monitor)
    with capture_logs() as logs:
        evaluation = await open_outage(monitor)
    incident = evaluation.transitions[0].incident
    [opened] = [e for e in logs if e["event"] == "nextmonth_health.incident_opened"]
    assert opened["log_level"] == "warning"
    assert opened["message"] == evaluation.transitions[0].alert.message
    assert {k: opened[k] for k in ("incident_id", "site", "check", "key", "area", "severity", "affected_users")} == {
        "incident_id": incident.id,
        "site": "acme",
        "check": "api_errors",
        "key": "/media-upload",
        "area": "uploads",
        "severity": "critical",
        "affected_users": 10,
    }

    fake_clock.advance(310)  # the errors leave the window: recovering
    with capture_logs() as logs:
        assert (await monitor.evaluate()).transitions == ()
        fake_clock.advance(300)  # a whole cool-down of healthy readings
        evaluation = await monitor.evaluate()
    assert [t.kind for t in evaluation.transitions] == [TransitionKind.RESOLVED]
    [resolved] = [e for e in logs if e["event"].startswith("nextmonth_health.incident_")]
    assert (resolved["event"], resolved["log_level"]) == ("nextmonth_health.incident_resolved", "info")
    assert resolved["incident_id"] == incident.id
    assert resolved["message"].startswith(
        "✓ Resolved: API Errors on /media-upload route are back within safe thresholds"
    )


async def test_the_log_sink_logs_degraded_incidents_at_info(fake_clock, internal_errors):
    monitor = build(fake_clock)
    internal_errors(monitor)
    for i in range(200):
        monitor.record_upload(ok=i >= 40, user=f"u-{i}")  # 40 of 200 fail: 20 %, surely over 10 %, under 25 %
    with capture_logs() as logs:
        evaluation = await monitor.evaluate()
    assert [(t.incident.check, t.incident.severity, t.alert) for t in evaluation.transitions] == [
        ("upload_failures", Severity.DEGRADED, None)
    ]
    [event] = [e for e in logs if e["event"].startswith("nextmonth_health.incident_")]
    assert (event["event"], event["log_level"], event["severity"]) == (
        "nextmonth_health.incident_opened",
        "info",
        "degraded",
    )
    assert event["summary"] == "Media upload failures"
    assert monitor.alerts() == []  # degraded: users get a notice, the admin is not paged


async def test_plugins_report_their_stats_in_status_and_are_closed_on_the_way_out(fake_clock) -> None:  # type: ignore[no-untyped-def]
    import anyio

    import nextmonth_health as nmh

    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.stats = {"posted": 0, "dropped": {"queue_full": 2}}
            self.closed = False

        def send(self, transition):  # type: ignore[no-untyped-def]
            self.stats["posted"] += 1

        async def close(self) -> None:
            self.closed = True

    sink = Counting()

    class Plugin:
        @nmh.hookimpl
        def register_alert_sinks(self, register):  # type: ignore[no-untyped-def]
            register(sink)

    m = nmh.Monitor("s", clock=fake_clock, plugins=[Plugin()], load_entrypoints=False)
    assert m.status().plugin_stats == {"counting": {"posted": 0, "dropped": {"queue_full": 2}}}
    async with anyio.create_task_group() as tg:
        tg.start_soon(m.run)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert sink.closed
