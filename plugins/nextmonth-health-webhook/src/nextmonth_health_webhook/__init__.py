"""nextmonth-health-webhook: alerts and resolutions posted as JSON (or to Slack).

Configured through ``plugin_settings["webhook"]`` (monitor-wide, or per site in
``sites``); with no options anywhere, the plugin registers nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nextmonth_health as nmh
from nextmonth_health.plugin import plugin_configs

from ._config import KINDS, SETTINGS_KEY, WebhookConfig, parse_config
from ._payload import dedup_key, payload, text_of, wanted
from ._sink import WebhookSink, WebhookStats, retry_after_seconds

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "KINDS",
    "SETTINGS_KEY",
    "WebhookConfig",
    "WebhookSink",
    "WebhookStats",
    "configs_of",
    "dedup_key",
    "parse_config",
    "payload",
    "retry_after_seconds",
    "text_of",
    "wanted",
]

__version__ = "0.1.0"


def configs_of(monitor: nmh.Monitor) -> dict[str | None, WebhookConfig | None]:
    """Every site's validated options (``None``: the monitor-wide ones), or raise ConfigError."""
    return plugin_configs(monitor, SETTINGS_KEY, parse_config)


@nmh.hookimpl
def register_alert_sinks(register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
    configs = configs_of(monitor)
    if any(config is not None for config in configs.values()):
        register(WebhookSink(configs))
