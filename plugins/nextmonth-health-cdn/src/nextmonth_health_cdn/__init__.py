"""nextmonth-health-cdn: an active probe of the CDN assets a site's pages load.

Configured through ``plugin_settings["cdn"]`` (monitor-wide, or per site in ``sites``);
with no options anywhere, the plugin registers nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nextmonth_health as nmh
from nextmonth_health.plugin import plugin_configs

from ._check import CdnCheck, Sample, judge, p95
from ._config import SETTINGS_KEY, Asset, CdnConfig, parse_config

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SETTINGS_KEY", "Asset", "CdnCheck", "CdnConfig", "Sample", "configs_of", "judge", "p95"]

__version__ = "0.1.0"


def configs_of(monitor: nmh.Monitor) -> dict[str | None, CdnConfig | None]:
    """Every site's validated options (``None``: the monitor-wide ones), or raise ConfigError."""
    return plugin_configs(monitor, SETTINGS_KEY, parse_config)


@nmh.hookimpl
def register_health_checks(register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
    configs = configs_of(monitor)
    if any(config is not None for config in configs.values()):
        register(CdnCheck(configs))
