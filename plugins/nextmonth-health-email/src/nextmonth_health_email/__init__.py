"""nextmonth-health-email: the admin's critical alerts and their resolutions, by email.

Configured through ``plugin_settings["email"]`` (monitor-wide, or per site in
``sites``); with no options anywhere, the plugin registers nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nextmonth_health as nmh

from ._config import PASSWORD_ENV, SETTINGS_KEY, USERNAME_ENV, Credentials, EmailConfig, configs_of, parse_config
from ._message import ALERT, REMINDER, RESOLVED, compose, incident_url, mail_kind, subject_of
from ._sink import EmailSink, EmailStats

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ALERT",
    "PASSWORD_ENV",
    "REMINDER",
    "RESOLVED",
    "SETTINGS_KEY",
    "USERNAME_ENV",
    "Credentials",
    "EmailConfig",
    "EmailSink",
    "EmailStats",
    "compose",
    "configs_of",
    "incident_url",
    "mail_kind",
    "parse_config",
    "subject_of",
]

__version__ = "0.1.0"


@nmh.hookimpl
def register_alert_sinks(register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
    configs = configs_of(monitor)
    if any(config is not None for config in configs.values()):
        register(EmailSink(configs, clock=monitor.clock))
