"""nextmonth-health-webhook, installed: discovery, then posts to a real receiver on loopback.

The receiver (the kit's ``http_receiver`` fixture) answers with scripted statuses,
``Retry-After`` headers and delays. Waits between attempts go through an injected
``sleep`` that records them, so backoff is measured without waiting; one test uses the
real wait to show that a ``Retry-After`` of one second is honoured on the wire.
"""

from __future__ import annotations

import importlib.metadata
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import nextmonth_health as nmh
import pytest
from nextmonth_health.plugin import alert_message
from nextmonth_health.testing import FakeClock

import nextmonth_health_webhook
from nextmonth_health_webhook import WebhookSink, dedup_key, parse_config, retry_after_seconds

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Sleeps(list[float]):
    """An injected ``sleep``: records each wait and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def transition(
    kind: str = "opened",
    *,
    incident_id: str = "inc-1",
    site: str = "acme",
    alert: bool = True,
    alert_resolved: bool = False,
    at: datetime = T0,
) -> nmh.Transition:
    resolved = kind == "resolved"
    incident = nmh.Incident(
        id=incident_id,
        site=site,
        check="cdn_delay",
        area="portal",
        key="assets.example.com/app.js",
        severity="critical" if alert else "degraded",
        status="resolved" if resolved else "open",
        affected_users=12,
        opened_at=T0,
        summary="CDN delays on assets.example.com",
        updated_at=at,
        resolved_at=at if resolved else None,
        escalated_at=T0 if alert else None,
        alert_id=incident_id if alert else None,
    )
    record = None
    if alert:
        record = nmh.Alert(
            incident_id=incident_id,
            site=site,
            message=alert_message([incident]),
            created_at=T0,
            updated_at=at,
            check="cdn_delay",
            key=incident.key,
            area="portal",
            affected_users=12,
            resolved_at=at if alert_resolved else None,
            incident_ids=(incident_id,),
        )
    return nmh.Transition(kind=kind, incident=incident, alert=record)


@pytest.fixture
def make_sink() -> Iterator[Callable[..., WebhookSink]]:
    sinks: list[WebhookSink] = []

    def make(options: Any, *, sleep: Callable[[float], object] | None = None, **sites: Any) -> WebhookSink:
        configs = {None: parse_config(options), **{s: parse_config(o) for s, o in sites.items()}}
        sink = WebhookSink(configs, sleep=sleep, rng=random.Random(7))
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=1.0)


# Discovery and settings.


@pytest.fixture
def only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", "webhook")
    monkeypatch.delenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", raising=False)


def build(clock: FakeClock, *plugins: Any, entrypoints: bool = False, **settings: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme",
        store="memory://",
        clock=clock,
        plugins=plugins if not entrypoints else (),
        load_entrypoints=entrypoints,
        **settings,
    )


def webhook_sink(monitor: nmh.Monitor) -> WebhookSink:
    [sink] = [s for s in monitor.sinks if s.name == "webhook"]
    assert isinstance(sink, WebhookSink)
    return sink


def test_the_distribution_declares_its_entry_point():
    [ep] = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.name == "webhook"]
    assert ep.value == "nextmonth_health_webhook"
    assert ep.dist is not None and ep.dist.name == "nextmonth-health-webhook"


@pytest.mark.usefixtures("only_this_plugin")
def test_an_installed_monitor_discovers_the_sink(fake_clock: FakeClock, http_receiver: Any):
    monitor = build(fake_clock, entrypoints=True, plugin_settings={"webhook": http_receiver.url()})
    assert monitor.plugin_failures == ()
    assert monitor.plugin_manager.get_plugin("webhook") is nextmonth_health_webhook
    assert [s.name for s in monitor.sinks] == ["log", "webhook"]
    assert webhook_sink(monitor).stats.queued == 0


@pytest.mark.usefixtures("only_this_plugin")
def test_with_no_settings_the_plugin_registers_nothing(fake_clock: FakeClock):
    monitor = build(fake_clock, entrypoints=True)
    assert [s.name for s in monitor.sinks] == ["log"]
    assert monitor.plugin_failures == ()


@pytest.mark.usefixtures("only_this_plugin")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://hooks.example.com/T000/s3cret"}, r"url must be an http\(s\) URL with a host, got ftp://…"),
        ({"url": "https://hooks.example.com/x", "format": "teams"}, "format must be 'json' or 'slack'"),
        ({"url": "https://hooks.example.com/x", "kinds": ["opened", "closed"]}, "kinds must list some of"),
        ({"url": "https://hooks.example.com/x", "max_attempts": 0}, "max_attempts must be a whole number"),
        ({"url": "https://hooks.example.com/x", "retries": 3}, "unknown option 'retries'"),
        ({"url": "https://hooks.example.com/x", "backoff": 10, "max_backoff": 5}, r"backoff \(10.0\) cannot exceed"),
    ],
)
def test_bad_settings_are_reported_at_start_up_without_the_secret(
    fake_clock: FakeClock, options: dict[str, Any], message: str
):
    monitor = build(fake_clock, entrypoints=True, plugin_settings={"webhook": options})
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "webhook",
        "register_alert_sinks",
        "nextmonth-health-webhook",
    )
    assert "s3cret" not in failure.error
    with pytest.raises(nmh.ConfigError, match=message):
        build(fake_clock, entrypoints=True, strict_plugins=True, plugin_settings={"webhook": options})


# Through a real monitor.


class Switch:
    """A check whose status the test sets, and the in-code plugin that registers it."""

    name = "probe"
    interval = None
    timeout = None

    def __init__(self) -> None:
        self.status = "ok"

    def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        return [
            nmh.Reading(
                check=self.name,
                site=view.site,
                key="",
                area="portal",
                status=self.status,
                subject="CDN delays on assets.example.com",
                affected_users=12,
            )
        ]

    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(self)


@pytest.mark.anyio
async def test_an_alert_and_its_resolution_are_posted_once_each(fake_clock, http_receiver, internal_errors):
    switch = Switch()
    monitor = build(
        fake_clock,
        nextmonth_health_webhook,
        switch,
        cooldown_seconds=60,
        plugin_settings={"webhook": {"url": http_receiver.url(), "headers": {"Authorization": "Bearer t0k"}}},
    )
    internal_errors(monitor)
    sink = webhook_sink(monitor)
    try:
        switch.status = "degraded"
        assert len((await monitor.evaluate()).opened) == 1  # degraded only: users see a notice, no post
        switch.status = "critical"
        fake_clock.advance(15)
        [escalated] = (await monitor.evaluate()).transitions
        switch.status = "ok"
        resolved = []
        for _ in range(6):
            fake_clock.advance(30)
            resolved += (await monitor.evaluate()).resolved
        assert len(resolved) == 1
        assert sink.wait_idle(5)
    finally:
        sink.close()
    first, second = http_receiver.bodies()
    assert (first["event"], second["event"]) == ("incident.escalated", "incident.resolved")
    assert first["text"].startswith("⚡ Health Alert:\nCDN delays on assets.example.com have exceeded safe thresholds.")
    assert second["text"].startswith("✓ Health Alert resolved:")
    assert first["incident"]["id"] == second["incident"]["id"] == escalated.incident.id
    assert (first["incident"]["severity"], first["alert"]["affected_users"], first["site"]) == ("critical", 12, "acme")
    assert second["alert"]["resolved_at"] is not None
    headers = [r.headers for r in http_receiver.received]
    assert {h["Content-Type"] for h in headers} == {"application/json"}
    assert {h["Authorization"] for h in headers} == {"Bearer t0k"}
    assert [h["Idempotency-Key"] for h in headers] == [first["dedup_key"], second["dedup_key"]]
    stats = sink.stats
    assert (stats.posted, stats.attempts, stats.dropped_total, stats.skipped) == (2, 2, 0, 1)


@pytest.mark.anyio
async def test_an_unacknowledged_alert_is_posted_again_as_a_reminder(fake_clock, http_receiver, internal_errors):
    switch = Switch()
    monitor = build(
        fake_clock,
        nextmonth_health_webhook,
        switch,
        alert_repeat_seconds=600,
        plugin_settings={"webhook": {"url": http_receiver.url()}},
    )
    internal_errors(monitor)
    sink = webhook_sink(monitor)
    try:
        switch.status = "critical"
        for _ in range(2 * 40 + 1):  # twenty minutes and a pass: two reminders
            await monitor.evaluate()
            fake_clock.advance(15)
        assert sink.wait_idle(5)
    finally:
        sink.close()
    first, *reminders = http_receiver.bodies()
    assert first["event"] == "incident.opened" and first["alert"]["reminders"] == 0
    assert [(r["event"], r["alert"]["reminders"]) for r in reminders] == [
        ("incident.reminded", 1),
        ("incident.reminded", 2),
    ]
    assert reminders[0]["text"].startswith(
        "Still needs attention (reminder 1, not acknowledged yet):\n⚡ Health Alert:"
    )
    assert len({b["dedup_key"] for b in (first, *reminders)}) == 3, "each reminder is a delivery of its own"


def test_slack_format_posts_only_the_text(make_sink, http_receiver):
    sink = make_sink({"url": http_receiver.url(), "format": "slack"})
    sent = transition("opened")
    sink.send(sent)
    assert sink.wait_idle(5)
    assert http_receiver.bodies() == [{"text": sent.alert.message}]


def test_every_transition_can_be_posted_not_only_alerts(make_sink, http_receiver):
    sink = make_sink({"url": http_receiver.url(), "only_alerts": False, "kinds": ["opened", "updated", "resolved"]})
    sink.send(transition("opened", alert=False))
    sink.send(transition("escalated"))  # not among the kinds
    sink.send(transition("resolved", alert=False, at=T0 + timedelta(minutes=9)))
    assert sink.wait_idle(5)
    texts = [b["text"] for b in http_receiver.bodies()]
    assert texts[0].startswith("Heads-up: CDN delays on assets.example.com")
    assert (
        texts[1] == "✓ Resolved: CDN delays on assets.example.com are back within safe thresholds.\nMonitoring active."
    )
    assert sink.stats.skipped == 1


def test_a_shared_alert_is_announced_resolved_only_when_it_is(make_sink, http_receiver):
    sink = make_sink({"url": http_receiver.url()})
    sink.send(transition("resolved", alert_resolved=False))  # another incident still holds the alert
    sink.send(transition("resolved", incident_id="inc-2", alert_resolved=True))
    assert sink.wait_idle(5)
    assert [b["incident"]["id"] for b in http_receiver.bodies()] == ["inc-2"]


def test_each_site_posts_to_its_own_url(make_sink, http_receiver):
    sink = make_sink(
        None, beta={"url": http_receiver.url("/beta")}, gamma={"url": http_receiver.url("/gamma"), "format": "slack"}
    )
    for site in ("acme", "beta", "gamma"):
        sink.send(transition(incident_id=f"inc-{site}", site=site))
    assert sink.wait_idle(5)
    assert sorted((r.path, "site" in r.body) for r in http_receiver.received) == [("/beta", True), ("/gamma", False)]
    assert sink.stats.skipped == 1


# Delivery: at least once, deduplicated, retried the right way.


def test_a_redelivered_transition_is_posted_once(make_sink, http_receiver):
    sink = make_sink({"url": http_receiver.url()})
    sent = transition("opened")
    sink.send(sent)
    sink.send(sent)
    assert sink.wait_idle(5)
    sink.send(transition("opened"))  # the same transition, rebuilt (a second leader, a retried pass)
    sink.send(transition("escalated", at=T0 + timedelta(minutes=10)))  # a new one
    assert sink.wait_idle(5)
    assert [b["event"] for b in http_receiver.bodies()] == ["incident.opened", "incident.escalated"]
    assert (sink.stats.duplicates, sink.stats.posted) == (2, 2)
    assert dedup_key(sent) == f"inc-1:opened:{T0.isoformat()}"


def test_5xx_is_retried_with_exponential_backoff_and_jitter(make_sink, http_receiver):
    http_receiver.reply(503, 502, 500)
    sleeps = Sleeps()
    sink = make_sink({"url": http_receiver.url(), "backoff": 2.0}, sleep=sleeps)
    sink.send(transition())
    assert sink.wait_idle(5)
    assert len(http_receiver.received) == 4
    assert len({r.headers["Idempotency-Key"] for r in http_receiver.received}) == 1
    assert [(2.0 * 2**n * 0.5 <= s <= 2.0 * 2**n) for n, s in enumerate(sleeps)] == [True] * 3
    assert len(set(sleeps)) == 3 and sleeps != [1.0, 2.0, 4.0]  # jittered, not the bare steps
    stats = sink.stats
    assert (stats.posted, stats.attempts, stats.retries, stats.dropped_total, stats.last_status) == (1, 4, 3, 0, 200)


def test_backoff_is_capped(make_sink, http_receiver):
    http_receiver.reply(*[503] * 6)
    sleeps = Sleeps()
    sink = make_sink({"url": http_receiver.url(), "backoff": 1.0, "max_backoff": 4.0}, sleep=sleeps)
    sink.send(transition())
    assert sink.wait_idle(5)
    assert max(sleeps) <= 4.0 and min(sleeps[2:]) >= 2.0


def test_429_honours_retry_after_in_seconds_and_as_a_date(make_sink, http_receiver):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    http_receiver.reply(429, headers={"Retry-After": "7"})
    http_receiver.reply(429, headers={"Retry-After": when})
    http_receiver.reply(429, headers={"Retry-After": "86400"})
    http_receiver.reply(429)
    sleeps = Sleeps()
    sink = make_sink({"url": http_receiver.url(), "backoff": 1.0, "max_retry_after": 600}, sleep=sleeps)
    sink.send(transition())
    assert sink.wait_idle(5)
    assert sleeps[0] == 7.0
    assert 27 <= sleeps[1] <= 30
    assert sleeps[2] == 600.0  # capped at max_retry_after
    assert 4.0 <= sleeps[3] <= 8.0  # no header: the fourth backoff step, jittered
    assert sink.stats.posted == 1


def test_retry_after_is_honoured_on_the_wire(make_sink, http_receiver):
    http_receiver.reply(429, headers={"Retry-After": "1"})
    sink = make_sink({"url": http_receiver.url()})  # the real wait
    sink.send(transition())
    assert sink.wait_idle(5)
    first, second = http_receiver.received
    assert 1.0 <= second.at - first.at < 2.0
    assert sink.stats.posted == 1


def test_other_4xx_are_not_retried(make_sink, http_receiver):
    http_receiver.reply(400, 404)
    sleeps = Sleeps()
    sink = make_sink({"url": http_receiver.url()}, sleep=sleeps)
    sink.send(transition(incident_id="a"))
    sink.send(transition(incident_id="b"))
    sink.send(transition(incident_id="c"))
    assert sink.wait_idle(5)
    assert len(http_receiver.received) == 3 and sleeps == []
    assert (sink.stats.posted, dict(sink.stats.dropped)) == (1, {"rejected": 2})


def test_a_timeout_is_retried(make_sink, http_receiver):
    http_receiver.reply(200, delay=1.0)
    sleeps = Sleeps()
    sink = make_sink({"url": http_receiver.url(), "timeout": 0.2}, sleep=sleeps)
    sink.send(transition())
    assert sink.wait_idle(5)
    assert (
        len(http_receiver.received) == 2 and len(sleeps) == 1
    )  # the http_receiver may see both: hence Idempotency-Key
    assert (sink.stats.posted, sink.stats.retries, sink.stats.last_error) == (1, 1, "timeout")


def test_an_endpoint_that_stays_down_is_given_up_and_counted(make_sink, http_receiver):
    http_receiver.reply(503, 503, 503)
    sleeps = Sleeps()
    sink = make_sink({"url": http_receiver.url(), "max_attempts": 3}, sleep=sleeps)
    sink.send(transition())
    sink.send(transition(incident_id="next"))
    assert sink.wait_idle(5)
    assert len(http_receiver.received) == 4 and len(sleeps) == 2
    assert (sink.stats.posted, dict(sink.stats.dropped)) == (1, {"gave_up": 1})


def test_connection_errors_are_retried(make_sink):
    sleeps = Sleeps()
    sink = make_sink({"url": "http://127.0.0.1:9/hook", "max_attempts": 2}, sleep=sleeps)  # discard port: refused
    sink.send(transition())
    assert sink.wait_idle(5)
    assert (len(sleeps), dict(sink.stats.dropped), sink.stats.last_error) == (1, {"gave_up": 1}, "ConnectError")


def test_order_is_kept_while_retrying(make_sink, http_receiver):
    http_receiver.reply(503, 503)
    sink = make_sink({"url": http_receiver.url()}, sleep=Sleeps())
    sink.send(transition("opened"))
    sink.send(transition("resolved", alert_resolved=True, at=T0 + timedelta(minutes=20)))
    assert sink.wait_idle(5)
    assert [b["event"] for b in http_receiver.bodies()] == ["incident.opened"] * 3 + ["incident.resolved"]


# Off the request path: send never waits for the network, and the queue is bounded.


def test_send_returns_at_once_and_a_full_queue_drops_and_counts(make_sink, http_receiver):
    gate = threading.Event()
    http_receiver.reply(503)
    sink = make_sink({"url": http_receiver.url(), "queue_size": 2}, sleep=lambda seconds: gate.wait(5))
    sink.send(transition(incident_id="first"))
    deadline = time.monotonic() + 5
    while sink.stats.retries == 0 and time.monotonic() < deadline:  # the worker now waits to retry
        time.sleep(0.01)
    took = []
    for n in range(5):
        started = time.perf_counter()
        sink.send(transition(incident_id=f"more-{n}"))
        took.append(time.perf_counter() - started)
    assert max(took) < 0.05, took  # no network wait: the worker is stuck, not send
    assert (sink.stats.queued, dict(sink.stats.dropped)) == (3, {"queue_full": 3})
    gate.set()
    assert sink.wait_idle(5)
    assert [b["incident"]["id"] for b in http_receiver.bodies()] == ["first", "first", "more-0", "more-1"]


def test_send_does_not_wait_for_a_hanging_endpoint(make_sink, http_receiver):
    http_receiver.reply(200, delay=3.0)
    sink = make_sink({"url": http_receiver.url(), "timeout": 5.0})
    started = time.perf_counter()
    sink.send(transition())
    sink.send(transition(incident_id="second"))
    assert time.perf_counter() - started < 0.05
    assert not sink.wait_idle(0.2)
    assert sink.stats.queued == 2


def test_close_stops_the_worker_and_counts_what_was_left(make_sink, http_receiver):
    http_receiver.reply(503)
    sink = make_sink({"url": http_receiver.url(), "backoff": 30.0})  # the real wait: close interrupts it
    sink.send(transition())
    sink.send(transition(incident_id="queued"))
    deadline = time.monotonic() + 5
    while sink.stats.retries == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    sink.close(timeout=0.1)
    assert time.perf_counter() - started < 1.0
    sink.send(transition(incident_id="late"))
    assert dict(sink.stats.dropped) == {"shutdown": 3}
    assert not any(
        t.name == "nextmonth-health-webhook" and t.is_alive() for t in threading.enumerate() if t is sink._thread
    )


def test_retry_after_parsing():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Mon, 05 Jan 2026 09:01:00 GMT", now=T0.timestamp()) == 60.0
    assert retry_after_seconds("Mon, 05 Jan 2026 08:00:00 GMT", now=T0.timestamp()) == 0.0
