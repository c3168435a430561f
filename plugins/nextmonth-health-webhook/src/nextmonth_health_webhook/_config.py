"""The ``webhook`` entry of ``plugin_settings``: validated once, when the monitor is built."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen
from nextmonth_health import ConfigError

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


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _number(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise _fail(where, f"{name} must be a positive number, got {value!r}")
    return float(value)


def _whole(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def parse_config(raw: Any, where: str = f"plugin_settings[{SETTINGS_KEY!r}]") -> WebhookConfig | None:
    """Validate the plugin's options; ``None`` (nothing configured) gives ``None``.

    A bare string is taken as the URL.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, Mapping):
        raise _fail(where, f"must be a URL or a mapping of options, got {raw!r}")
    for name in raw:
        if name not in _DEFAULTS:
            close = difflib.get_close_matches(str(name), _DEFAULTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known options: {', '.join(_DEFAULTS)}"
            raise _fail(where, f"unknown option {name!r}{hint}")
    opts = {**_DEFAULTS, **raw}
    url = opts["url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        shown = (
            f"{parts.scheme}://…"
            if parts is not None and parts.scheme
            else repr(type(url).__name__ if url is not None else None)
        )
        raise _fail(where, f"url must be an http(s) URL with a host, got {shown}")
    if opts["format"] not in {"json", "slack"}:
        raise _fail(where, f"format must be 'json' or 'slack', got {opts['format']!r}")
    if not isinstance(opts["only_alerts"], bool):
        raise _fail(where, f"only_alerts must be true or false, got {opts['only_alerts']!r}")
    kinds = opts["kinds"]
    if isinstance(kinds, str) or not hasattr(kinds, "__iter__") or not set(kinds) or not set(kinds) <= KINDS:
        raise _fail(where, f"kinds must list some of {sorted(KINDS)}, got {kinds!r}")
    headers = opts["headers"]
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _fail(where, "headers must map header names to strings")
    config = WebhookConfig(
        url=url,
        host=parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}",
        format=opts["format"],
        only_alerts=opts["only_alerts"],
        kinds=frozenset(kinds),
        headers=headers,
        timeout=_number(where, "timeout", opts["timeout"]),
        queue_size=_whole(where, "queue_size", opts["queue_size"]),
        max_attempts=_whole(where, "max_attempts", opts["max_attempts"]),
        backoff=_number(where, "backoff", opts["backoff"]),
        max_backoff=_number(where, "max_backoff", opts["max_backoff"]),
        max_retry_after=_number(where, "max_retry_after", opts["max_retry_after"]),
    )
    if config.backoff > config.max_backoff:
        raise _fail(where, f"backoff ({config.backoff}) cannot exceed max_backoff ({config.max_backoff})")
    return config
