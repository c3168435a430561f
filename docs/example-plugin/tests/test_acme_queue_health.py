"""The plugin's own tests, on the kit nextmonth_health ships: a monitor on a fake clock
(``make_monitor``), evaluation passes a tick apart (``passes``), a sink that records."""

from __future__ import annotations

import importlib.metadata

import pytest

import acme_queue_health
import nextmonth_health as nmh

pytestmark = pytest.mark.anyio
OPTIONS = {"acme_queues": {"wait_seconds": 5.0}}


def late_jobs(monitor: nmh.Monitor, seconds: float = 40.0) -> None:
    for n in range(8):
        acme_queue_health.record_wait(monitor, "confirmations", seconds, user=f"u-{n}")


def test_the_distribution_declares_its_entry_point() -> None:
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.name == "acme_queues"]
    assert entry_point.load() is acme_queue_health


async def test_late_jobs_open_an_incident_in_our_words(make_monitor, passes, recording_sink) -> None:
    monitor = make_monitor(acme_queue_health, recording_sink, plugin_settings=OPTIONS)
    late_jobs(monitor)

    opened = (await passes(1, monitor=monitor)).of("opened")

    assert [(t.incident.check, t.incident.key, t.incident.affected_users) for t in opened] == [
        ("slow_queue", "confirmations", 8)
    ]
    [notice] = monitor.notices("bookings")
    assert notice.title == "Confirmations are running late"
    assert recording_sink.kinds() == ["opened slow_queue/confirmations"]


async def test_the_incident_resolves_once_jobs_flow_again(make_monitor, passes, fake_clock) -> None:
    monitor = make_monitor(acme_queue_health, plugin_settings=OPTIONS)
    late_jobs(monitor)
    await passes(1, monitor=monitor)
    fake_clock.advance(600)  # ten minutes later the slow jobs are out of the window
    late_jobs(monitor, seconds=0.5)

    resolved = (await passes(40, monitor=monitor)).of("resolved")

    assert [t.incident.key for t in resolved] == ["confirmations"]
    assert monitor.notices("bookings") == []


def test_a_misspelt_option_fails_at_start_up_with_a_suggestion(make_monitor) -> None:
    with pytest.raises(
        nmh.ConfigError, match=r"sites\['shop'\].*unknown option 'wait_second'; did you mean 'wait_seconds'"
    ):
        make_monitor(
            acme_queue_health,
            strict_plugins=True,
            sites={"shop": {"plugin_settings": {"acme_queues": {"wait_second": 5}}}},
        )


def test_unconfigured_it_declares_and_registers_nothing(make_monitor) -> None:
    monitor = make_monitor(acme_queue_health)
    assert acme_queue_health.QUEUE_WAIT not in monitor.signals
    assert "slow_queue" not in [check.name for check in monitor.checks]
