"""The ``webhook`` entry of ``plugin_settings``: validated once, when the monitor is built."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen
from nextmonth_health.plugin import check_option_names, number_option, option_error, whole_option

__all__ = ["KINDS", "SETTINGS_KEY", "WebhookConfig", "parse_config"]

#: The key of this plugin's options in ``plugin_settings`` (also its entry-point name).
SETTINGS_KEY = "webhook"

KINDS = frozenset({"opened", "escalated", "updated", "reminded", "resolved"})

_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "url": None,
        "format": "json",
        "only_alerts": True,
        "kinds": ("opened", "escalated", "reminded", "resolved"),
        "headers": {},
        "timeout": 5.0,
        "queue_size": 1000,
        "max_attempts": 8,
        "backoff": 1.0,
        "max_backoff": 300.0,
        "max_retry_after": 600.0,
    }
)


@frozen
class WebhookConfig:
    """Where and how one site's transitions are posted.

    ``host`` is the URL's host alone: what logs and stats may show, since a chat
    webhook URL carries its secret in the path.
    """

    url: str
    host: str
    format: str
    only_alerts: bool
    kinds: frozenset[str]
    headers: Mapping[str, str] = field(converter=lambda h: MappingProxyType(dict(h)))
    timeout: float
    queue_size: int
    max_attempts: int
    backoff: float
    max_backoff: float
    max_retry_after: float


def parse_config(raw: Any, where: str = f"plugin_settings[{SETTINGS_KEY!r}]") -> WebhookConfig | None:
    """Validate the plugin's options; ``None`` (nothing configured) gives ``None``.

    A bare string is taken as the URL.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, Mapping):
        raise option_error(where, f"must be a URL or a mapping of options, got {raw!r}")
    check_option_names(where, raw, _DEFAULTS)
    opts = {**_DEFAULTS, **raw}
    url = opts["url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        shown = (
            f"{parts.scheme}://…"
            if parts is not None and parts.scheme
            else repr(type(url).__name__ if url is not None else None)
        )
        raise option_error(where, f"url must be an http(s) URL with a host, got {shown}")
    if opts["format"] not in {"json", "slack"}:
        raise option_error(where, f"format must be 'json' or 'slack', got {opts['format']!r}")
    if not isinstance(opts["only_alerts"], bool):
        raise option_error(where, f"only_alerts must be true or false, got {opts['only_alerts']!r}")
    kinds = opts["kinds"]
    if isinstance(kinds, str) or not hasattr(kinds, "__iter__") or not set(kinds) or not set(kinds) <= KINDS:
        raise option_error(where, f"kinds must list some of {sorted(KINDS)}, got {kinds!r}")
    headers = opts["headers"]
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise option_error(where, "headers must map header names to strings")
    config = WebhookConfig(
        url=url,
        host=parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}",
        format=opts["format"],
        only_alerts=opts["only_alerts"],
        kinds=frozenset(kinds),
        headers=headers,
        timeout=number_option(where, "timeout", opts["timeout"]),
        queue_size=whole_option(where, "queue_size", opts["queue_size"]),
        max_attempts=whole_option(where, "max_attempts", opts["max_attempts"]),
        backoff=number_option(where, "backoff", opts["backoff"]),
        max_backoff=number_option(where, "max_backoff", opts["max_backoff"]),
        max_retry_after=number_option(where, "max_retry_after", opts["max_retry_after"]),
    )
    if config.backoff > config.max_backoff:
        raise option_error(where, f"backoff ({config.backoff}) cannot exceed max_backoff ({config.max_backoff})")
    return config
