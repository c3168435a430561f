"""nextmonth-health-db: notice a database slowdown before users report slow pages.

Configured through ``plugin_settings["db"]`` (monitor-wide, or per site in ``sites``);
with no options anywhere, the plugin registers nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nextmonth_health as nmh
from nextmonth_health.plugin import plugin_options

from ._check import RECORDED_KEY, DbCheck, judge, p95, record_query, timed_query
from ._config import SETTINGS_KEY, SIGNAL, DbConfig, Probe, Recorded, parse_config
from ._probes import APPLICATION_NAME, Sample, run_probe

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "APPLICATION_NAME",
    "RECORDED_KEY",
    "SETTINGS_KEY",
    "SIGNAL",
    "DbCheck",
    "DbConfig",
    "Probe",
    "Recorded",
    "Sample",
    "configs_of",
    "judge",
    "p95",
    "record_query",
    "run_probe",
    "timed_query",
]

__version__ = "0.1.0"


def configs_of(monitor: nmh.Monitor) -> dict[str | None, DbConfig | None]:
    """Every site's validated options (``None``: the monitor-wide ones), or raise ConfigError."""
    return {
        site: parse_config(raw, settings, where) for site, raw, where, settings in plugin_options(monitor, SETTINGS_KEY)
    }


@nmh.hookimpl
def register_signals(register: Callable[[str], None], monitor: nmh.Monitor) -> None:
    """Declare ``db.query`` where recorded timings are configured (on any site): a plugin
    installed but not configured declares nothing, as it registers nothing."""
    try:
        configs = configs_of(monitor)
    except nmh.ConfigError:
        return  # reported once, by register_health_checks
    if any(config is not None and config.recorded is not None for config in configs.values()):
        register(SIGNAL)


@nmh.hookimpl
def register_health_checks(register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
    configs = configs_of(monitor)
    if any(config is not None for config in configs.values()):
        register(DbCheck(configs))
