"""Through a real Monitor on the fake clock: an outage makes one alert email and one resolution.

The first test records real traffic (503s on /media-upload and failed uploads from 12
people), so the bundled checks open two incidents in the uploads area that share one
alert. The others drive checks whose readings the test sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import nextmonth_health as nmh
import pytest
from nextmonth_health.testing import FakeClock, run_passes

import nextmonth_health_email
from nextmonth_health_email import EmailSink

from .conftest import SilentServer, SmtpServer, options, transition, wait_until

pytestmark = pytest.mark.anyio

ADMIN = "https://admin.acme.example/admin/system-health"


def build(
    clock: FakeClock, email: dict[str, Any], *plugins: Any, site: str = "acme-studio", **settings: Any
) -> nmh.Monitor:
    return nmh.Monitor(
        site,
        store="memory://",
        clock=clock,
        plugins=[nextmonth_health_email, *plugins],
        load_entrypoints=False,
        plugin_settings={"email": email},
        **settings,
    )


def email_sink(monitor: nmh.Monitor, internal_errors: Any = None) -> EmailSink:
    """The monitor's email sink; with ``internal_errors``, anything the monitor swallows fails the test."""
    if internal_errors is not None:
        internal_errors(monitor)
    [sink] = [s for s in monitor.sinks if s.name == "email"]
    assert isinstance(sink, EmailSink)
    return sink


def traffic(monitor: nmh.Monitor, ok: bool, users: int = 12) -> None:
    for n in range(users):
        monitor.record_request("/media-upload", status=200 if ok else 503, duration=0.1, user=f"u-{n}")
        monitor.record_upload(ok=ok, user=f"u-{n}", size=4_200_000)


async def test_an_outage_emails_the_alert_then_its_resolution(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    monitor = build(fake_clock, options(server.url, admin_url=ADMIN + "/"))
    sink = email_sink(monitor, internal_errors)
    transitions: list[nmh.Transition] = []
    for step in range(60):
        traffic(monitor, ok=not 8 <= step < 20)  # two calm minutes, three failing, then fixed
        fake_clock.advance(15)
        transitions += (await monitor.evaluate()).transitions
    assert sink.wait_idle(5)

    opened = [t for t in transitions if t.kind == "opened"]
    assert sorted(t.incident.check for t in opened) == ["api_errors", "upload_failures"]
    [alert_id] = {t.alert.incident_id for t in opened if t.alert is not None}
    assert {len(t.alert.incident_ids) for t in opened if t.alert is not None} == {2}  # one alert for the area
    assert [t.kind for t in transitions].count("resolved") == 2

    alert, resolution = server.received  # two incidents, one alert: one email, then its resolution
    both = "API Errors on /media-upload route and Media upload failures"
    link = f"{ADMIN}/incidents/{alert_id}"
    assert alert.message["Subject"] == f"⚡ Health Alert: {both} (acme-studio)"
    assert alert.message.get_content_type() == "multipart/alternative"
    assert alert.part("plain").startswith(
        f"⚡ Health Alert:\n{both} have exceeded safe thresholds.\nImpact detected for 12 users.\nMonitoring active.\n"
    )
    assert f"Incident: {link}\n" in alert.part("plain")
    assert f'<a href="{link}"' in alert.part("html")
    assert "Impact detected for 12 users." in alert.part("html")
    assert (alert.mail_from, alert.rcpt_tos) == ("health@acme.example", ["rob@acme.example"])
    assert (alert.message["From"], alert.message["To"]) == ("Health <health@acme.example>", "rob@acme.example")
    assert alert.message["Auto-Submitted"] == "auto-generated"

    assert resolution.message["Subject"] == f"✓ Resolved: {both} (acme-studio)"
    assert resolution.part("plain").startswith(
        f"✓ Health Alert resolved:\n{both} are back within safe thresholds.\nImpact was detected for 12 users.\n"
    )
    assert f'<a href="{link}"' in resolution.part("html")
    assert resolution.message["In-Reply-To"] == alert.message["Message-ID"]  # one thread in the mailbox

    stats = monitor.status().plugin_stats["email"]
    assert (stats["sent"], stats["attempts"], stats["dropped"], stats["queued"]) == (2, 2, {}, 0)
    assert stats["skipped"] == len(transitions) - 2
    sink.close()


async def minutes(monitor: nmh.Monitor, clock: FakeClock, count: float, *, ok: bool) -> None:
    for _ in range(int(count * 4)):
        traffic(monitor, ok=ok)
        clock.advance(15)
        await monitor.evaluate()


async def test_an_unacknowledged_outage_emails_the_alert_a_reminder_and_the_resolution(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    monitor = build(fake_clock, options(server.url, admin_url=ADMIN), alert_repeat_seconds=600)
    sink = email_sink(monitor, internal_errors)
    await minutes(monitor, fake_clock, 2, ok=True)
    await minutes(monitor, fake_clock, 12, ok=False)  # nobody acknowledges: one reminder after ten minutes
    await minutes(monitor, fake_clock, 10, ok=True)
    assert sink.wait_idle(5)
    alert, reminder, resolution = server.received
    both = "API Errors on /media-upload route and Media upload failures"
    assert alert.message["Subject"] == f"⚡ Health Alert: {both} (acme-studio)"
    assert reminder.message["Subject"] == f"⚡ Still needs attention: {both} (acme-studio)"
    assert "Reminder: 1, sent because nobody has acknowledged it yet" in reminder.part("plain")
    assert "Acknowledge it on the admin page to stop these reminders." in reminder.part("plain")
    assert "Impact detected for 12 users." in reminder.part("html")
    ids = [m.message["Message-ID"] for m in (alert, reminder, resolution)]
    assert len(set(ids)) == 3 and reminder.message["In-Reply-To"] == alert.message["Message-ID"]
    assert resolution.message["Subject"] == f"✓ Resolved: {both} (acme-studio)"
    assert resolution.message["In-Reply-To"] == alert.message["Message-ID"]
    sink.close()


async def test_an_acknowledged_alert_gets_no_reminder(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    monitor = build(fake_clock, options(server.url), alert_repeat_seconds=600)
    sink = email_sink(monitor, internal_errors)
    await minutes(monitor, fake_clock, 2, ok=False)
    [alert] = monitor.alerts()
    assert monitor.acknowledge(alert.incident_id) is not None
    await minutes(monitor, fake_clock, 30, ok=False)
    assert sink.wait_idle(5)
    assert [m.message["Subject"].split(":")[0] for m in server.received] == ["⚡ Health Alert"]
    sink.close()


async def test_a_maintenance_window_over_the_fault_sends_nothing_then_alerts_once_it_ends(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    monitor = build(fake_clock, options(server.url))
    sink = email_sink(monitor, internal_errors)
    await minutes(monitor, fake_clock, 2, ok=True)
    window = monitor.schedule_maintenance(duration=600, area="uploads", reason="Deploying the new uploader")
    await minutes(monitor, fake_clock, 8, ok=False)
    assert sink.wait_idle(5) and server.received == [], "planned work pages nobody"
    [notice] = monitor.notices("uploads")
    assert notice.kind == "maintenance" and "planned" in notice.title
    assert all(i.maintenance_id == window.id for i in monitor.incidents())
    await minutes(monitor, fake_clock, 3, ok=False)  # the window is over and uploads still fail
    assert sink.wait_idle(5)
    [alert] = server.received
    assert alert.message["Subject"].startswith("⚡ Health Alert: ") and "Impact detected for 12 users." in alert.part(
        "plain"
    )
    assert monitor.notices("uploads")[0].kind == "care"
    await minutes(monitor, fake_clock, 10, ok=True)
    assert sink.wait_idle(5)
    assert [m.message["Subject"][:10] for m in server.received] == ["⚡ Health A", "✓ Resolved"]
    sink.close()


class Probe:
    """A check whose reading the test sets, in the uploads area."""

    interval = None
    timeout = None

    def __init__(self, name: str, subject: str) -> None:
        self.name = name
        self.subject = subject
        self.status = "ok"
        self.users = 12

    def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        return [
            nmh.Reading(
                check=self.name,
                site=view.site,
                key="",
                area="uploads",
                status=self.status,
                subject=self.subject,
                affected_users=self.users if self.status != "ok" else 0,
            )
        ]

    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(self)


async def recover(monitor: nmh.Monitor, clock: FakeClock, *probes: Probe) -> list[nmh.Transition]:
    for probe in probes:
        probe.status = "ok"
    clock.advance(30)
    return (await run_passes(monitor, 8, tick=30)).of("resolved")


async def test_an_incident_joining_the_alert_and_growing_impact_send_nothing_more(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    errors = Probe("media_errors", "API Errors on /media-upload route")
    uploads = Probe("media_uploads", "Media upload failures")
    monitor = build(fake_clock, options(server.url), errors, uploads, cooldown_seconds=60)
    sink = email_sink(monitor, internal_errors)
    errors.status = "critical"
    [first] = (await monitor.evaluate()).transitions
    fake_clock.advance(15)
    uploads.status = "critical"  # a second incident in the same area joins the alert
    [joined] = (await monitor.evaluate()).transitions
    assert joined.alert is not None and joined.alert.incident_id == first.incident.id
    fake_clock.advance(60)
    errors.users = uploads.users = 40  # impact grows: the admin page shows it, no email
    updates = (await monitor.evaluate()).transitions
    assert {t.kind for t in updates} == {"updated"}
    resolved = await recover(monitor, fake_clock, errors, uploads)
    assert len(resolved) == 2
    assert sink.wait_idle(5)
    alert, resolution = server.received
    assert alert.message["Subject"] == "⚡ Health Alert: API Errors on /media-upload route (acme-studio)"
    both = "API Errors on /media-upload route and Media upload failures"
    assert resolution.message["Subject"] == f"✓ Resolved: {both} (acme-studio)"
    assert resolution.part("plain").startswith(f"✓ Health Alert resolved:\n{both} are back within safe thresholds.\n")
    assert "Impact was detected for 40 users." in resolution.part("plain")
    assert "incidents/" not in alert.part("plain") + alert.part("html")  # no admin_url: no link
    # The joined incident, the updates, and the first of the two resolutions (the same pass
    # resolves both, so both carry the resolved alert: the second is the same email again).
    assert (sink.stats.sent, sink.stats.skipped + sink.stats.duplicates) == (2, 1 + len(updates) + 1)
    sink.close()


async def test_html_is_escaped_and_headers_cannot_be_injected(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    hostile = Probe("page_errors", 'Errors on /p?<script>alert("x")</script>&a=1\r\nBcc: eve@evil.example')
    monitor = build(
        fake_clock,
        options(server.url, admin_url=ADMIN, send_resolved=False),
        hostile,
        site="acme <b>studio</b>",
        cooldown_seconds=60,
    )
    sink = email_sink(monitor, internal_errors)
    hostile.status = "critical"
    await monitor.evaluate()
    assert len(await recover(monitor, fake_clock, hostile)) == 1
    assert sink.wait_idle(5)
    [received] = server.received  # send_resolved=False: the alert alone
    page = received.part("html")
    assert "<script>" not in page and "<b>studio" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;a=1" in page
    assert "acme &lt;b&gt;studio&lt;/b&gt;" in page
    assert '<script>alert("x")</script>' in received.part("plain")  # plain text is just text
    assert received.rcpt_tos == ["rob@acme.example"] and received.message["Bcc"] is None
    assert "\n" not in received.message["Subject"] and "Bcc: eve@evil.example" in received.message["Subject"]
    assert received.message["X-NextMonth-Health-Site"] == "acme <b>studio</b>"
    assert "the resolution will be on the admin page" in received.part("plain")  # no promise of a second email
    sink.close()


async def test_each_site_mails_its_own_recipients(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    probe = Probe("media_errors", "API Errors on /media-upload route")
    monitor = build(
        fake_clock,
        options(server.url),
        probe,
        sites={
            "beta": {"plugin_settings": {"email": {"to": "owner@beta.example"}}},
            "gamma": {"plugin_settings": {}},  # no email entry: no email for gamma
        },
    )
    sink = email_sink(monitor, internal_errors)
    for site in ("acme-studio", "beta", "gamma"):
        monitor.record_request("/", status=200, duration=0.1, site=site)
    probe.status = "critical"
    evaluation = await monitor.evaluate()
    assert sorted(t.incident.site for t in evaluation.opened) == ["acme-studio", "beta", "gamma"]
    assert sink.wait_idle(5)
    assert sorted((r.message["X-NextMonth-Health-Site"], tuple(r.rcpt_tos)) for r in server.received) == [
        ("acme-studio", ("rob@acme.example",)),
        ("beta", ("owner@beta.example",)),
    ]
    sink.close()


async def test_a_hanging_server_never_holds_the_pass_or_the_request_path(
    fake_clock: FakeClock, internal_errors: Any, silent_server: SilentServer
):
    timeout = 1.0
    monitor = build(fake_clock, options(silent_server.url, timeout=timeout, max_attempts=2))
    sink = email_sink(monitor, internal_errors)
    passes: list[float] = []
    records: list[float] = []

    async def minute_of_traffic(ok: bool) -> None:
        for _ in range(4):
            for n in range(12):
                started = time.perf_counter()
                monitor.record_request("/media-upload", status=200 if ok else 503, duration=0.1, user=f"u-{n}")
                monitor.record_upload(ok=ok, user=f"u-{n}")
                records.append(time.perf_counter() - started)
            fake_clock.advance(15)
            started = time.perf_counter()
            await monitor.evaluate()
            passes.append(time.perf_counter() - started)

    await minute_of_traffic(ok=True)
    while sink.stats.queued == 0 and len(passes) < 40:
        await minute_of_traffic(ok=False)
    assert sink.stats.queued == 1  # the alert email, on its way to a server that will never answer
    assert wait_until(lambda: len(silent_server.accepted) == 1)
    hung_from = len(passes)
    await minute_of_traffic(ok=False)  # the outage goes on: four more passes and their traffic...
    await minute_of_traffic(ok=True)  # ...and the fix, four passes more
    assert sink.stats.last_error is None and sink.stats.sent == 0  # ...all while the worker still waits
    during = passes[hung_from:]
    assert max(passes) < 0.25 * timeout, passes
    assert max(records) < 0.05, max(records)  # a wait on SMTP would be the 1 s timeout
    print(
        f"\nwhile the SMTP server hung: evaluate() max {max(during) * 1000:.1f} ms over {len(during)} passes "
        f"(max {max(passes) * 1000:.1f} ms over all {len(passes)}); record_* max {max(records) * 1e6:.0f} µs "
        f"over {len(records)} calls; SMTP timeout {timeout} s"
    )

    assert wait_until(lambda: sink.stats.last_error == "timeout", timeout=timeout * 3)
    due = sink.stats.next_retry_at
    assert due is not None
    fake_clock.advance(due - fake_clock.now())  # the retry falls due on the monitor's clock
    assert wait_until(lambda: len(silent_server.accepted) == 2)
    assert sink.wait_idle(timeout * 3)
    assert (sink.stats.attempts, dict(sink.stats.dropped)) == (2, {"gave_up": 1})
    assert monitor.status().plugin_stats["email"]["dropped"] == {"gave_up": 1}
    sink.close()


async def test_the_monitor_closes_the_sink_when_it_stops(
    fake_clock: FakeClock, internal_errors: Any, smtp_server: Callable[..., SmtpServer]
):
    server = smtp_server()
    probe = Probe("media_errors", "API Errors on /media-upload route")
    monitor = build(fake_clock, options(server.url), probe)
    sink = email_sink(monitor, internal_errors)
    probe.status = "critical"
    async with monitor.running():
        await monitor.evaluate()
    assert len(server.received) == 1  # drained on the way out
    sink.send(transition(site="acme-studio", incident_id="after"))
    assert (sink.stats.sent, dict(sink.stats.dropped)) == (1, {"shutdown": 1})  # closed: counted, not sent
