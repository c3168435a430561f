"""The ``cdn`` entry of ``plugin_settings``: validated once, when the monitor is built.

A mistake (an unknown option, a URL without a host, a slow line above the timeout) raises
:class:`nextmonth_health.ConfigError` naming the option, so it shows up at start-up and
not as a silent probe that never fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from attrs import field, frozen
from nextmonth_health.plugin import check_option_names, number_option, option_error, whole_option

__all__ = ["SETTINGS_KEY", "Asset", "CdnConfig", "parse_config"]

#: The key of this plugin's options in ``plugin_settings`` (also its entry-point name).
SETTINGS_KEY = "cdn"

_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "urls": (),
        "area": "portal",
        "interval": 60.0,
        "timeout": 3.0,
        "slow_seconds": 1.0,
        "recovery_seconds": 0.5,
        "failure_ratio": 0.3,
        "history": 10,
        "min_probes": 3,
        "headers": {},
        "max_bytes": 5_000_000,
    }
)


@frozen
class Asset:
    """One URL to fetch, the key its readings carry and the area its users are in.

    ``key`` is the URL's host and path: no scheme, credentials, query or fragment, so a
    signed URL's token never reaches the store, a log or the admin view.
    """

    url: str
    key: str
    host: str
    area: str


@frozen
class CdnConfig:
    """The options in force for one site (or the whole monitor)."""

    assets: tuple[Asset, ...]
    interval: float
    timeout: float
    slow_seconds: float
    recovery_seconds: float
    failure_ratio: float
    history: int
    min_probes: int
    headers: Mapping[str, str] = field(converter=lambda h: MappingProxyType(dict(h)))
    max_bytes: int


def _asset(where: str, entry: Any, default_area: str) -> Asset:
    if isinstance(entry, str):
        entry = {"url": entry}
    if not isinstance(entry, Mapping) or not set(entry) <= {"url", "area"} or "url" not in entry:
        raise option_error(where, f"each entry must be a URL or {{'url': ..., 'area': ...}}, got {entry!r}")
    url, area = entry["url"], entry.get("area", default_area)
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise option_error(where, f"{url!r} is not an http(s) URL with a host")
    if not isinstance(area, str) or not area:
        raise option_error(where, f"the area of {url!r} must be a non-empty string, got {area!r}")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return Asset(url=url, key=f"{host}{parts.path or '/'}", host=host, area=area)


def parse_config(raw: Any, where: str = f"plugin_settings[{SETTINGS_KEY!r}]") -> CdnConfig | None:
    """Validate the plugin's options; ``None`` (nothing configured) gives ``None``."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise option_error(where, f"must be a mapping of options, got {raw!r}")
    check_option_names(where, raw, _DEFAULTS)
    opts = {**_DEFAULTS, **raw}
    area = opts["area"]
    if not isinstance(area, str) or not area:
        raise option_error(where, f"area must be a non-empty string, got {area!r}")
    urls = opts["urls"]
    if isinstance(urls, str | bytes | Mapping) or not hasattr(urls, "__iter__"):
        raise option_error(where, f"urls must be a list of URLs, got {urls!r}")
    assets = tuple(_asset(f"{where}['urls'][{i}]", entry, area) for i, entry in enumerate(urls))
    if not assets:
        raise option_error(where, "urls must list at least one asset URL, e.g. ['https://assets.example.com/app.js']")
    if len({a.url for a in assets}) != len(assets):
        raise option_error(where, "urls lists the same URL twice")
    headers = opts["headers"]
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise option_error(where, f"headers must map header names to strings, got {headers!r}")
    config = CdnConfig(
        assets=assets,
        interval=number_option(where, "interval", opts["interval"]),
        timeout=number_option(where, "timeout", opts["timeout"]),
        slow_seconds=number_option(where, "slow_seconds", opts["slow_seconds"]),
        recovery_seconds=number_option(where, "recovery_seconds", opts["recovery_seconds"]),
        failure_ratio=number_option(where, "failure_ratio", opts["failure_ratio"], high=1.0),
        history=whole_option(where, "history", opts["history"], low=2),
        min_probes=whole_option(where, "min_probes", opts["min_probes"], low=2),
        headers=headers,
        max_bytes=whole_option(where, "max_bytes", opts["max_bytes"]),
    )
    if not config.recovery_seconds < config.slow_seconds < config.timeout:
        raise option_error(
            where,
            f"need recovery_seconds < slow_seconds < timeout, got {config.recovery_seconds} < "
            f"{config.slow_seconds} < {config.timeout}: a fetch is cut off at timeout, so slow must be below it",
        )
    if config.min_probes > config.history:
        raise option_error(where, f"min_probes ({config.min_probes}) cannot exceed history ({config.history})")
    return config
