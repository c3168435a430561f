"""acme-queue-health: jobs waiting too long in the app's queues, told to users in the
app's own words.

The app records how long each job waited (``record_wait``) into the plugin's own signal;
the ``slow_queue`` check judges it per queue; the renderer words the notice. Configured
through ``plugin_settings["acme_queues"]`` (for the monitor, or per site); with no options
the plugin declares and registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import nextmonth_health as nmh
from nextmonth_health.plugin import (
    Health,
    Incident,
    Notice,
    Reading,
    SiteView,
    UsersOf,
    check_option_names,
    hookimpl,
    number_option,
    option_error,
    plugin_configs,
)

NAME = "acme_queues"
QUEUE_WAIT = "acme.queue_wait"
DEFAULTS: Mapping[str, Any] = {"wait_seconds": 10.0, "area": "bookings"}


@dataclass(frozen=True)
class Options:
    wait_seconds: float
    area: str


def parse_options(raw: Any, where: str) -> Options | None:
    """One place's options, validated; ``None`` where nothing is configured."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise option_error(where, f"must be a mapping of options, got {raw!r}")
    check_option_names(where, raw, DEFAULTS)
    opts = {**DEFAULTS, **raw}
    if not isinstance(opts["area"], str) or not opts["area"]:
        raise option_error(where, f"area must be a non-empty string, got {opts['area']!r}")
    return Options(number_option(where, "wait_seconds", opts["wait_seconds"]), opts["area"])


def record_wait(monitor: nmh.Monitor, queue: str, seconds: float, *, user: str | None = None) -> None:
    """Call from the job runner as a job starts: how long it waited in ``queue``."""
    monitor.record(QUEUE_WAIT, queue, value=seconds, user=user)


class SlowQueue:
    """Degraded while half of a queue's jobs wait longer than ``wait_seconds``."""

    name = "slow_queue"

    def __init__(self, configs: Mapping[str | None, Options | None]) -> None:
        self.configs = configs

    def evaluate(self, view: SiteView) -> Iterator[Reading]:
        options = self.configs.get(view.site, self.configs[None])
        if options is None:
            return
        for queue in sorted(view.keys(QUEUE_WAIT)):
            window = view.window(QUEUE_WAIT, queue)
            wait = window.quantile(0.5)
            slow = window.samples >= 5 and wait is not None and wait > options.wait_seconds
            status = Health.DEGRADED if slow else Health.OK
            yield Reading(
                check=self.name,
                site=view.site,
                key=queue,
                area=options.area,
                status=status,
                subject=f"Jobs waiting on the {queue} queue",
                value=wait,
                threshold=options.wait_seconds,
                affected_users=view.affected(status, self.name, queue, UsersOf(QUEUE_WAIT, queue)),
            )


class QueueWords:
    """The notice people see while a queue is slow: what they will notice, no more."""

    name = "acme_queue_words"
    areas = None

    def render(self, incident: Incident) -> Notice | None:
        if incident.check != SlowQueue.name:
            return None  # someone else's incident: the next renderer words it
        return Notice(
            area=incident.area,
            site=incident.site,
            severity=incident.severity,
            title="Confirmations are running late",
            message="Your request has reached us; its confirmation may take longer than usual to arrive.",
        )


@hookimpl
def register_signals(register: Callable[[str], None], monitor: nmh.Monitor) -> None:
    try:
        configs = plugin_configs(monitor, NAME, parse_options)
    except nmh.ConfigError:
        return  # reported once, by register_health_checks
    if any(configs.values()):
        register(QUEUE_WAIT)


@hookimpl
def register_health_checks(register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
    configs = plugin_configs(monitor, NAME, parse_options)
    if any(configs.values()):
        register(SlowQueue(configs))


@hookimpl
def register_message_renderers(register: Callable[[Any], None]) -> None:
    register(QueueWords())
