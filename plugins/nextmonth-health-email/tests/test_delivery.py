"""Delivery to real SMTP servers on loopback: TLS, AUTH, refusals, silence, nobody home.

Retry delays are measured on the fake clock: the sink schedules a retry at a clock time
(``stats.next_retry_at``), and the test moves the clock there — nothing waits for a
backoff in real time. Only socket timeouts are real (a fraction of a second here).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from nextmonth_health.testing import FakeClock, capture_logs

from nextmonth_health_email import EmailSink

from .conftest import T0, SilentServer, SmtpServer, options, transition, wait_until

MakeSink = Callable[..., EmailSink]
StartServer = Callable[..., SmtpServer]


# TLS and AUTH.


def test_starttls_with_a_private_ca(make_sink: MakeSink, smtp_server: StartServer, ca_file: str):
    server = smtp_server(tls="starttls")
    sink = make_sink(options(server.url, ca_file=ca_file, require_starttls=True))
    sink.send(transition())
    assert sink.wait_idle(5)
    [received] = server.received
    assert received.tls
    assert sink.stats.sent == 1


def test_smtps_with_a_private_ca(make_sink: MakeSink, smtp_server: StartServer, ca_file: str):
    server = smtp_server(tls="smtps")
    assert server.url.startswith("smtps://")
    sink = make_sink(options(server.url, ca_file=ca_file))
    sink.send(transition())
    assert sink.wait_idle(5)
    [received] = server.received
    assert received.tls
    assert received.message["Subject"].startswith("⚡ Health Alert: API Errors on /media-upload route")


def test_starttls_is_used_whenever_offered(make_sink: MakeSink, smtp_server: StartServer, ca_file: str):
    server = smtp_server(tls="starttls")
    sink = make_sink(options(server.url, ca_file=ca_file))  # not required, offered: used
    sink.send(transition())
    assert sink.wait_idle(5)
    assert [r.tls for r in server.received] == [True]


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_an_untrusted_certificate_is_never_accepted(
    make_sink: MakeSink, smtp_server: StartServer, retry_now: Callable[[EmailSink], float], tls: str
):
    server = smtp_server(tls=tls)
    sink = make_sink(options(server.url, max_attempts=2))  # the system's CAs: the test CA is not among them
    sink.send(transition())
    retry_now(sink)
    assert sink.wait_idle(5)
    assert server.received == []
    assert (sink.stats.last_error, dict(sink.stats.dropped)) == ("tls_verify", {"gave_up": 1})


def test_auth_with_credentials_from_the_environment(
    make_sink: MakeSink, smtp_server: StartServer, ca_file: str, monkeypatch: pytest.MonkeyPatch
):
    server = smtp_server(tls="starttls", login=("health@acme.example", "correct horse"))
    monkeypatch.setenv("NEXTMONTH_HEALTH_SMTP_USERNAME", "health@acme.example")
    monkeypatch.setenv("NEXTMONTH_HEALTH_SMTP_PASSWORD", "correct horse")
    sink = make_sink(options(server.url, ca_file=ca_file))
    sink.send(transition())
    assert sink.wait_idle(5)
    [received] = server.received
    assert (received.login, received.tls) == ("health@acme.example", True)


def test_wrong_credentials_are_retried_then_counted_as_refused(
    make_sink: MakeSink,
    smtp_server: StartServer,
    ca_file: str,
    monkeypatch: pytest.MonkeyPatch,
    retry_now: Callable[[EmailSink], float],
):
    server = smtp_server(tls="starttls", login=("health@acme.example", "correct horse"))
    monkeypatch.setenv("ACME_SMTP_USER", "health@acme.example")
    monkeypatch.setenv("ACME_SMTP_PASSWORD", "battery staple")
    sink = make_sink(
        options(
            server.url,
            ca_file=ca_file,
            username_env="ACME_SMTP_USER",
            password_env="ACME_SMTP_PASSWORD",
            max_attempts=2,
        )
    )
    with capture_logs("nextmonth_health_email") as logs:
        sink.send(transition())
        retry_now(sink)
        assert sink.wait_idle(5)
    assert server.received == []
    assert (sink.stats.attempts, sink.stats.last_error, dict(sink.stats.dropped)) == (2, "auth 535", {"refused": 1})
    assert "battery staple" not in repr(logs)


@pytest.mark.parametrize(
    ("opts", "why"),
    [
        ({"require_starttls": True}, "require_starttls is set"),
        ({"username_env": "ACME_SMTP_USER", "password_env": "ACME_SMTP_PASSWORD"}, "credentials are configured"),
    ],
)
def test_no_starttls_where_it_is_needed_sends_nothing(
    make_sink: MakeSink,
    smtp_server: StartServer,
    monkeypatch: pytest.MonkeyPatch,
    retry_now: Callable[[EmailSink], float],
    opts: dict[str, Any],
    why: str,
):
    monkeypatch.setenv("ACME_SMTP_USER", "health@acme.example")
    monkeypatch.setenv("ACME_SMTP_PASSWORD", "correct horse")
    server = smtp_server()  # plain: offers no STARTTLS
    sink = make_sink(options(server.url, max_attempts=2, **opts))
    with capture_logs("nextmonth_health_email") as logs:
        sink.send(transition())
        retry_now(sink)
        assert sink.wait_idle(5)
    assert server.received == [] and server.commands("MAIL") == []  # not even the sender went out in the clear
    assert (sink.stats.last_error, dict(sink.stats.dropped)) == ("no_starttls", {"refused": 1})
    [dropped] = [e for e in logs if e["event"] == "nextmonth_health_email.dropped"]
    assert why in dropped["detail"] and "correct horse" not in repr(logs)


# Refusals: retried with backoff and jitter, then dropped and counted.


@pytest.mark.parametrize(
    ("command", "reply", "reason", "dropped"),
    [
        ("MAIL", "550 5.7.1 Sender not allowed to relay", "mail 550", "refused"),
        ("RCPT", "554 5.7.1 Relay access denied", "rcpt 554", "refused"),
        ("DATA", "554 5.6.0 Message rejected as spam", "data 554", "refused"),
        ("RCPT", "451 4.3.0 Try again later", "rcpt 451", "gave_up"),
    ],
)
def test_refusals_are_retried_with_backoff_and_jitter_then_given_up_and_counted(
    make_sink: MakeSink,
    smtp_server: StartServer,
    retry_now: Callable[[EmailSink], float],
    command: str,
    reply: str,
    reason: str,
    dropped: str,
):
    server = smtp_server()
    server.refuse(command, reply, times=5)  # three for the first email, two for the next
    sink = make_sink(options(server.url, backoff=2.0, max_attempts=3))
    with capture_logs("nextmonth_health_email") as logs:
        sink.send(transition())
        delays = [retry_now(sink), retry_now(sink)]
        assert sink.wait_idle(5)  # refused three times: given up
        sink.send(transition("escalated", incident_id="next"))
        delays += [retry_now(sink), retry_now(sink)]
        assert sink.wait_idle(5)  # refused twice, then taken
    assert [r.message["X-NextMonth-Health-Alert"] for r in server.received] == ["next"]
    steps = [2.0, 4.0, 2.0, 4.0]
    assert all(step / 2 <= delay <= step for step, delay in zip(steps, delays, strict=True)), delays
    assert len(set(delays)) == 4  # jittered: not the bare steps, not one another
    stats = sink.stats
    assert (stats.sent, stats.attempts, stats.retries, dict(stats.dropped), stats.last_error) == (
        1,
        6,
        4,
        {dropped: 1},
        reason,
    )
    assert len(server.commands("MAIL")) == 6
    [event] = [e for e in logs if e["event"] == "nextmonth_health_email.dropped"]
    assert (event["reason"], event["alert_id"], event["email"], event["server"], event["attempts"]) == (
        dropped,
        "inc-1",
        "alert",
        server.url,
        3,
    )
    assert reply.split(" ", 2)[2] in event["detail"]


def test_backoff_is_capped(make_sink: MakeSink, smtp_server: StartServer, retry_now: Callable[[EmailSink], float]):
    server = smtp_server()
    server.refuse("MAIL", "451 4.3.2 Busy", times=6)
    sink = make_sink(options(server.url, backoff=1.0, max_backoff=4.0))
    sink.send(transition())
    delays = [retry_now(sink) for _ in range(6)]
    assert sink.wait_idle(5)
    assert max(delays) <= 4.0 and min(delays[2:]) >= 2.0
    assert sink.stats.sent == 1


def test_some_recipients_refused_still_delivers_to_the_others(make_sink: MakeSink, smtp_server: StartServer):
    server = smtp_server()
    sink = make_sink(options(server.url, to=["rob@acme.example", "nobody@acme.example"]))
    with capture_logs("nextmonth_health_email") as logs:
        sink.send(transition())
        assert sink.wait_idle(5)
    [received] = server.received
    assert received.rcpt_tos == ["rob@acme.example"]
    assert (sink.stats.sent, sink.stats.recipients_refused, sink.stats.retries) == (1, 1, 0)
    assert [e["refused"] for e in logs if e["event"] == "nextmonth_health_email.recipients_refused"] == [
        ["nobody@acme.example"]
    ]


# A server that is down, and one that hangs.


def test_a_server_that_is_down_is_retried_then_counted(
    make_sink: MakeSink, closed_port: str, retry_now: Callable[[EmailSink], float]
):
    sink = make_sink(options(closed_port, max_attempts=3))
    sink.send(transition())
    retry_now(sink)
    retry_now(sink)
    assert sink.wait_idle(5)
    stats = sink.stats
    assert (stats.attempts, stats.last_error, dict(stats.dropped)) == (3, "connection_refused", {"gave_up": 1})


def test_a_server_that_hangs_times_out_and_is_retried(
    make_sink: MakeSink, silent_server: SilentServer, retry_now: Callable[[EmailSink], float]
):
    sink = make_sink(options(silent_server.url, timeout=0.3, max_attempts=2))
    started = time.monotonic()
    sink.send(transition())
    assert time.monotonic() - started < 0.05
    retry_now(sink)  # the first attempt timed out: a retry is scheduled on the clock
    assert sink.stats.last_error == "timeout"
    assert sink.wait_idle(5)
    assert len(silent_server.accepted) == 2  # the retry really connected again
    first, second = (at for at, _ in silent_server.accepted)
    assert second - first >= 0.25  # a real timeout (0.3 s, give or take scheduling) before the retry
    assert (sink.stats.attempts, dict(sink.stats.dropped)) == (2, {"gave_up": 1})


# Off the request path: a bounded queue, never waiting, drained or counted on close.


def test_send_never_waits_and_a_full_queue_drops_and_counts(make_sink: MakeSink, silent_server: SilentServer):
    sink = make_sink(options(silent_server.url, timeout=5.0, queue_size=2))
    took = []
    for n in range(5):
        started = time.perf_counter()
        sink.send(transition(incident_id=f"inc-{n}"))
        took.append(time.perf_counter() - started)
    assert max(took) < 0.05, took  # microseconds, bar the first (it starts the worker thread)
    assert (sink.stats.queued, dict(sink.stats.dropped)) == (2, {"queue_full": 3})
    assert not sink.wait_idle(0.1)


def test_close_cuts_a_hanging_conversation_short_and_counts_what_was_left(
    make_sink: MakeSink, silent_server: SilentServer
):
    sink = make_sink(options(silent_server.url, timeout=30.0))
    sink.send(transition())
    sink.send(transition(incident_id="queued"))
    assert wait_until(lambda: len(silent_server.accepted) == 1)
    started = time.perf_counter()
    sink.close(timeout=0.1)
    assert time.perf_counter() - started < 1.0  # not the 30 s timeout
    sink.send(transition(incident_id="late"))
    assert dict(sink.stats.dropped) == {"shutdown": 3}
    worker = sink._outbox._state.thread
    assert worker is not None and not worker.is_alive()


def test_close_drains_what_can_be_sent(make_sink: MakeSink, smtp_server: StartServer):
    server = smtp_server()
    sink = make_sink(options(server.url))
    for n in range(3):
        sink.send(transition(incident_id=f"inc-{n}"))
    sink.close(timeout=5.0)
    assert len(server.received) == 3 and sink.stats.dropped_total == 0


# Keyed by alert, in order per alert, no site holding up another.


def test_the_same_email_is_sent_once(make_sink: MakeSink, smtp_server: StartServer):
    server = smtp_server()
    sink = make_sink(options(server.url))
    sink.send(transition())
    sink.send(transition())  # handed over again: a retried pass, a second leader
    sink.send(transition("updated", at=T0 + timedelta(minutes=2)))  # impact grew: no email
    assert sink.wait_idle(5)
    assert len(server.received) == 1
    assert (sink.stats.duplicates, sink.stats.skipped) == (1, 1)


def test_a_resolution_waits_for_its_alert_while_another_site_goes_ahead(
    make_sink: MakeSink,
    smtp_server: StartServer,
    closed_port: str,
    fake_clock: FakeClock,
    retry_now: Callable[[EmailSink], float],
):
    good = smtp_server()
    sink = make_sink(None, acme=options(good.url), beta=options(closed_port))
    sink.send(transition(site="beta", incident_id="beta-1"))
    assert wait_until(lambda: sink.stats.next_retry_at is not None)  # beta's server is down: waiting to retry
    sink.send(
        transition("resolved", site="beta", incident_id="beta-1", alert_resolved=True, at=T0 + timedelta(minutes=9))
    )
    sink.send(transition(site="acme", incident_id="acme-1"))
    assert wait_until(lambda: sink.stats.sent == 1)  # acme's alert did not wait for beta's retries
    assert len(good.received) == 1
    assert sink.stats.queued == 2 and sink.stats.attempts == 2  # beta's resolution did not overtake its alert
    retry_now(sink)
    assert wait_until(lambda: sink.stats.attempts == 3)
    assert sink.stats.queued == 2  # still the alert first


def test_close_does_not_wait_for_a_retry_due_later(
    make_sink: MakeSink, closed_port: str, retry_now: Callable[[EmailSink], float]
):
    sink = make_sink(options(closed_port, backoff=60.0, max_backoff=600.0))
    sink.send(transition())
    assert wait_until(lambda: sink.stats.next_retry_at is not None)  # refused; next try in a minute or so
    started = time.perf_counter()
    sink.close(timeout=5.0)
    assert time.perf_counter() - started < 0.5  # nothing could go out within the 5 s: no point waiting
    assert dict(sink.stats.dropped) == {"shutdown": 1}


def test_a_forked_child_starts_with_an_empty_queue_and_its_own_worker(
    make_sink: MakeSink, smtp_server: StartServer, silent_server: SilentServer
):
    server = smtp_server()
    sink = make_sink(None, acme=options(silent_server.url, timeout=30.0), beta=options(server.url))
    sink.send(transition(site="acme"))  # the parent's worker now sits on the silent server
    assert wait_until(lambda: len(silent_server.accepted) == 1)
    pid = os.fork()
    if pid == 0:  # the child: none of the parent's email, a worker of its own
        code = 1
        try:
            if sink.stats.queued == 0:
                sink.send(transition(site="beta", incident_id="from-the-child"))
                code = 0 if sink.wait_idle(5) and sink.stats.sent == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r.message["X-NextMonth-Health-Alert"] for r in server.received] == ["from-the-child"]
    assert sink.stats.queued == 1 and sink.stats.sent == 0  # the parent's email is still the parent's
