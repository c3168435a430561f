"""Every tunable of the monitor, with its default and why it is what it is.

``Settings`` is built once when a :class:`~nextmonth_health.Monitor` starts. A wrong name
or value raises :class:`~nextmonth_health.errors.ConfigError` there and then, naming the
setting and what would be accepted. Per-site overrides live in ``sites``; plugin options
live in ``plugin_settings`` so that third-party checks can be tuned the same way.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from functools import cached_property
from types import MappingProxyType
from typing import Any

import attrs
from attrs import field, frozen

from .errors import ConfigError
from .record.routes import RouteTable, parse_route, parse_routes

__all__ = ["DEFAULT_ROUTES", "Settings", "build_settings"]

DEFAULT_ROUTES: Mapping[str, str] = MappingProxyType(
    {
        "/media-upload": "uploads",
        "/bookings": "bookings",
        "/portal": "portal",
        "/login": "login",
        "/logout": "login",
        "/session": "login",
        "/auth": "login",
        "/dashboard": "dashboard",
    }
)


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{attribute.name} must be a positive number, got {value!r}")


def _not_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or value == float("inf"):
        raise ConfigError(f"{attribute.name} must be a number of seconds, 0 or more, got {value!r}")


def _ratio(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1:
        raise ConfigError(f"{attribute.name} must be a ratio between 0 and 1, got {value!r}")


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{attribute.name} must be a whole number of at least 1, got {value!r}")


def _routes(value: Any) -> Mapping[str, str]:
    return MappingProxyType(parse_routes(value))


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if type(value) is not bool:
        raise ConfigError(f"{attribute.name} must be True or False, got {value!r}")


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigError(f"expected a list of paths starting with '/', got {value!r}")
    paths = tuple(value)
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise ConfigError(f"expected a list of paths starting with '/', got {value!r}")
    return paths


def _route_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigError(
            f"critical_routes: expected a list of routes ('/bookings', 'POST /payments/webhook'), got {value!r}"
        )
    routes = tuple(value)
    for route in routes:
        parse_route(route, where="critical_routes")
    return routes


def _pages(value: Any) -> tuple[str, ...]:
    pages = _paths(value)
    if not pages:
        raise ConfigError("dashboard_pages must name at least one page, e.g. ['/dashboard']")
    return pages


def _notice_overrides(value: Any) -> Mapping[str, Mapping[str, str]]:
    if not isinstance(value, Mapping):
        raise ConfigError("notice_overrides must map an area to {'title': ..., 'message': ...}")
    for area, texts in value.items():
        if not isinstance(texts, Mapping) or not set(texts) <= {"title", "message"} or not texts:
            raise ConfigError(f"notice_overrides[{area!r}] must be a mapping with 'title' and/or 'message'")
        for part, text in texts.items():
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"notice_overrides[{area!r}][{part!r}] must be non-empty text, got {text!r}")
    return MappingProxyType({a: MappingProxyType(dict(t)) for a, t in value.items()})


def _plugin_settings(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"plugin_settings must map a plugin name to its options, got {value!r}")
    return MappingProxyType(dict(value))


def _setting(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help}, **kwargs)


@frozen(kw_only=True)
class Settings:
    """The monitor's settings for one site. Read the ``help`` metadata of a field for why."""

    bucket_seconds: int = _setting(10, "Width of a time bucket; windows are whole buckets.", validator=_count)
    tick_seconds: float = _setting(15.0, "How often the runner evaluates every check.", validator=_positive)
    flush_seconds: float = _setting(1.0, "How often recorded events are folded into the store.", validator=_positive)
    lease_seconds: float | None = _setting(
        None,
        "How long a site's leader holds its lease without renewing it (None: three ticks, at least 30 s); "
        "another process takes over after.",
        validator=attrs.validators.optional(_positive),
    )
    buffer_capacity: int = _setting(
        500_000, "Events held between flushes; more are dropped and counted.", validator=_count
    )
    max_sites: int = _setting(
        10_000, "Distinct sites one process records; more are dropped and counted.", validator=_count
    )
    max_key_length: int = _setting(
        200, "Longest route, page or user accepted (sites: 100); longer are dropped.", validator=_count
    )
    window_seconds: int = _setting(300, "The window every check judges (the seed's 5 minutes).", validator=_count)
    baseline_seconds: int = _setting(
        3600, "Trailing history that defines normal (the hour before the window).", validator=_count
    )
    history_seconds: int = _setting(
        7200, "How long raw buckets are kept; at least window plus baseline.", validator=_count
    )
    trend_retention: int = _setting(
        30 * 86_400, "How long hourly roll-ups for trend graphs are kept (30 days).", validator=_count
    )
    escalate_after: float = _setting(
        600.0, "A degraded incident still bad after this long becomes critical (10 minutes).", validator=_positive
    )
    cooldown_seconds: float = _setting(
        300.0, "How long a signal must stay healthy before its incident resolves.", validator=_positive
    )
    resolved_retention: float = _setting(
        86_400.0, "Resolved incidents leave the recent list after this long (24 hours).", validator=_positive
    )
    check_timeout: float = _setting(10.0, "Longest one check may run before it reads as unknown.", validator=_positive)
    sink_timeout: float = _setting(
        10.0, "Longest one sink delivery may take before it counts as failed.", validator=_positive
    )
    stop_timeout: float = _setting(
        10.0,
        "Longest a stopping monitor waits for its last flush; what is still unstored then is counted lost.",
        validator=_positive,
    )
    sink_max_attempts: int = _setting(
        5, "Deliveries to a sink per transition before giving up (counted).", validator=_count
    )
    sink_backoff_seconds: float = _setting(
        5.0, "First retry delay of a failed delivery; doubles each time, at most 5 minutes.", validator=_positive
    )
    routes: Mapping[str, str] = _setting(
        DEFAULT_ROUTES,
        "Route (a path prefix, optionally after a method) to user-facing area; other paths count under 'other'.",
        converter=_routes,
    )
    replace_routes: bool = _setting(
        False,
        "Whether routes replaces the bundled and plugin-declared routes instead of adding to them.",
        validator=_flag,
    )
    critical_routes: tuple[str, ...] = _setting(
        ("/media-upload", "/bookings", "/portal"),
        "Routes whose 5xx rate the API error check watches.",
        converter=_route_list,
    )
    dashboard_pages: tuple[str, ...] = _setting(
        ("/dashboard",), "Pages whose load time the dashboard check watches.", converter=_pages
    )
    alpha: float = _setting(
        1e-6,
        "Evidence a problem needs, per look: how unlikely normal traffic must be to show it. A key is "
        "looked at ~40,000 times a week; see docs/checks.md for the false-alarm budget.",
        validator=_ratio,
    )
    line_alpha: float = _setting(
        1e-4,
        "Evidence a fixed line (10 % of uploads failing, a 3 s p75) needs, per look: how sure it must "
        "be that the true value is past the line, not just the point value of a few samples.",
        validator=_ratio,
    )
    fast_window_seconds: int = _setting(
        60,
        "The short window a sharp outage is also judged on (half the evidence budget each), and "
        "recovery: an incident heals once this much of recent traffic looks normal.",
        validator=_count,
    )
    baseline_min_share: float = _setting(
        0.25,
        "A baseline holding less than this share of what current traffic would fill it with is still "
        "being learned: checks then judge only on fixed lines.",
        validator=_ratio,
    )
    alert_min_users: int = _setting(
        3,
        "Fewest distinct people hurt since an incident opened before it alerts the admin; one client's "
        "retry storm stays a user notice.",
        validator=_count,
    )
    alert_repeat_seconds: float = _setting(
        4 * 3600.0,
        "An unacknowledged critical alert is sent again through the push sinks (email, webhook) after "
        "this long (4 hours, Alertmanager's repeat_interval); 0 never reminds.",
        validator=_not_negative,
    )

    api_error_min_count: int = _setting(5, "Fewest 5xx in a window that can open an incident.", validator=_count)
    api_error_ratio: float = _setting(
        0.01, "Least baseline error ratio a spike is measured against, so a clean hour is not zero.", validator=_ratio
    )
    api_error_spike_factor: float = _setting(
        2.0, "A spike's error ratio is at least this many times the baseline (or floor).", validator=_positive
    )
    api_error_critical_ratio: float = _setting(0.25, "Error ratio that alerts the admin at once.", validator=_ratio)
    api_error_recovery_ratio: float = _setting(
        0.005, "Error ratio under which a route has recovered (or 1.5x its usual ratio, if higher).", validator=_ratio
    )
    api_error_learning_ratio: float = _setting(
        0.10,
        "While a route's baseline is being learned, errors must be significantly above this ratio.",
        validator=_ratio,
    )

    page_load_slow_seconds: float = _setting(
        3.0, "A page load slower than this is a problem (the seed's 3 s).", validator=_positive
    )
    page_load_critical_seconds: float = _setting(
        6.0, "A p75 load time above this alerts the admin at once.", validator=_positive
    )
    page_load_recovery_seconds: float = _setting(2.5, "p75 under this counts as recovered.", validator=_positive)
    page_load_min_samples: int = _setting(5, "Fewest load samples in a window before p75 is trusted.", validator=_count)
    page_load_min_users: int = _setting(
        2, "Fewest distinct users behind those samples, so one client cannot fake an outage.", validator=_count
    )

    session_min_count: int = _setting(5, "Fewest failed logins and expiries in a window for a spike.", validator=_count)
    session_floor: float = _setting(
        1.0, "Least expected failures per window, so a quiet baseline is not zero.", validator=_positive
    )
    session_spike_factor: float = _setting(
        3.0, "A spike is at least this many times the baseline.", validator=_positive
    )
    session_critical_factor: float = _setting(
        10.0, "A spike this many times the baseline alerts at once.", validator=_positive
    )
    session_recovery_factor: float = _setting(
        1.5, "At most this many times the baseline counts as recovered.", validator=_positive
    )
    session_learning_ratio: float = _setting(
        0.5,
        "While the baseline is being learned, only failed sign-ins judged against attempts count: "
        "significantly above this share of them.",
        validator=_ratio,
    )

    upload_failure_ratio: float = _setting(
        0.10, "Upload failure ratio that shows users a notice (the seed's 10 %).", validator=_ratio
    )
    upload_critical_ratio: float = _setting(
        0.25, "Upload failure ratio that alerts the admin at once.", validator=_ratio
    )
    upload_recovery_ratio: float = _setting(
        0.05, "Upload failure ratio under which uploads count as recovered.", validator=_ratio
    )
    upload_min_attempts: int = _setting(
        10, "Fewest upload attempts in a window before the ratio is trusted.", validator=_count
    )
    upload_min_failures: int = _setting(3, "Fewest failed uploads that can open an incident.", validator=_count)

    notice_overrides: Mapping[str, Mapping[str, str]] = _setting(
        MappingProxyType({}), "Per-area notice text replacing the bundled wording.", converter=_notice_overrides
    )
    plugin_settings: Mapping[str, Any] = _setting(
        MappingProxyType({}), "Options for third-party plugins, keyed by plugin name.", converter=_plugin_settings
    )

    def __attrs_post_init__(self) -> None:
        if self.lease_seconds is not None and self.lease_seconds < 2 * self.tick_seconds:
            raise ConfigError(
                f"lease_seconds ({self.lease_seconds}) must be at least two ticks ({2 * self.tick_seconds}): "
                "a leader renews its lease once a tick"
            )
        if self.history_seconds < self.window_seconds + self.baseline_seconds:
            raise ConfigError(
                f"history_seconds ({self.history_seconds}) must be at least window_seconds + baseline_seconds "
                f"({self.window_seconds + self.baseline_seconds}) or the baseline has nothing to read"
            )
        for low, high in (
            ("api_error_recovery_ratio", "api_error_ratio"),
            ("api_error_ratio", "api_error_critical_ratio"),
            ("upload_recovery_ratio", "upload_failure_ratio"),
            ("upload_failure_ratio", "upload_critical_ratio"),
            ("page_load_recovery_seconds", "page_load_slow_seconds"),
            ("page_load_slow_seconds", "page_load_critical_seconds"),
            ("session_recovery_factor", "session_spike_factor"),
            ("session_spike_factor", "session_critical_factor"),
        ):
            if getattr(self, low) >= getattr(self, high):
                raise ConfigError(f"{low} ({getattr(self, low)}) must be below {high} ({getattr(self, high)})")
        if (
            self.window_seconds % self.bucket_seconds
            or self.baseline_seconds % self.bucket_seconds
            or self.fast_window_seconds % self.bucket_seconds
        ):
            raise ConfigError(
                "window_seconds, fast_window_seconds and baseline_seconds must be whole multiples of bucket_seconds"
            )
        if self.fast_window_seconds >= self.window_seconds:
            raise ConfigError(
                f"fast_window_seconds ({self.fast_window_seconds}) must be shorter than window_seconds ({self.window_seconds})"
            )
        if self.baseline_seconds % 300:
            raise ConfigError(
                f"baseline_seconds ({self.baseline_seconds}) must be a whole number of five-minute roll-ups (a multiple of 300)"
            )

    @property
    def lease(self) -> float:
        """The lease a leader takes each pass, in seconds (see ``lease_seconds``)."""
        return self.lease_seconds if self.lease_seconds is not None else max(3 * self.tick_seconds, 30.0)

    @cached_property
    def route_table(self) -> RouteTable:
        """``routes``, ``critical_routes`` and ``dashboard_pages`` precompiled for matching."""
        return RouteTable.build(self.routes, (*self.critical_routes, *self.dashboard_pages))

    def area_for(self, request: str) -> str | None:
        """The area of a path (``"/bookings/42"``) or request (``"POST /payments/webhook"``)
        by the route it falls under, or None."""
        table = self.route_table
        return table.areas.get(table.route_for(request) or "")

    def route_for(self, request: str) -> str | None:
        """The route a path or ``"METHOD /path"`` falls under, or None for 'other'."""
        return self.route_table.route_for(request)


SETTING_NAMES = frozenset(a.name for a in attrs.fields(Settings))

#: Settings of the process, not of a site: the buffer, the loops and what is kept.
MONITOR_WIDE = frozenset(
    {
        "buffer_capacity",
        "max_sites",
        "tick_seconds",
        "lease_seconds",
        "flush_seconds",
        "history_seconds",
        "resolved_retention",
        "trend_retention",
        "sink_timeout",
        "stop_timeout",
        "sink_max_attempts",
        "sink_backoff_seconds",
    }
)


def _unknown(name: str) -> ConfigError:
    close = difflib.get_close_matches(name, SETTING_NAMES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known settings: {', '.join(sorted(SETTING_NAMES))}"
    return ConfigError(f"unknown setting {name!r}{hint}")


def build_settings(
    overrides: Mapping[str, Any],
    sites: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_routes: Mapping[str, str] | None = None,
) -> tuple[Settings, Mapping[str, Settings]]:
    """Validate the monitor-wide settings and each site's overrides on top of them.

    Routes add up rather than replace one another, so that a host naming its one extra
    route, or a plugin declaring the route its check reads, never silently drops the
    routes everything else watches: the monitor-wide table is the bundled
    :data:`DEFAULT_ROUTES`, then ``plugin_routes`` (valid already), then the host's
    ``routes``; a site's ``routes`` add to the monitor-wide table. ``replace_routes=True``
    beside ``routes`` makes those routes the whole table of that level instead.
    """
    for name in overrides:
        if name not in SETTING_NAMES:
            raise _unknown(name)
    try:
        table = _table(overrides, {**DEFAULT_ROUTES, **(plugin_routes or {})})
        base = Settings(**{**overrides, "routes": table})
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    per_site: dict[str, Settings] = {}
    if sites is not None and not isinstance(sites, Mapping):
        raise ConfigError(
            f"sites must map a site name to its setting overrides, e.g. {{'tiny': {{'alpha': 0.01}}}}; got {sites!r}"
        )
    for site, site_overrides in (sites or {}).items():
        if not isinstance(site, str) or not site:
            raise ConfigError(f"sites: site names must be non-empty strings, got {site!r}")
        if not isinstance(site_overrides, Mapping):
            raise ConfigError(f"sites[{site!r}] must be a mapping of setting names to values")
        for name in site_overrides:
            if name not in SETTING_NAMES:
                raise ConfigError(f"sites[{site!r}]: {_unknown(name)}")
            if name in MONITOR_WIDE:
                raise ConfigError(
                    f"sites[{site!r}]: {name} applies to the whole monitor; set it on Monitor(...) instead"
                )
        try:
            if "routes" in site_overrides or "replace_routes" in site_overrides:
                site_overrides = {**site_overrides, "routes": _table(site_overrides, base.routes)}
            per_site[site] = attrs.evolve(base, **site_overrides)
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"sites[{site!r}]: {exc}") from None
    return base, MappingProxyType(per_site)


def _table(given: Mapping[str, Any], below: Mapping[str, str]) -> Mapping[str, str]:
    """The routes of one level: its own ``routes`` on top of ``below``, or alone with ``replace_routes``."""
    replace = given.get("replace_routes") is True
    if "routes" not in given:
        if replace:
            raise ConfigError(
                "replace_routes=True needs routes: the routes to watch instead of the bundled ones, "
                "e.g. routes={'/files': 'uploads'}"
            )
        return below
    routes = _routes(given["routes"])
    return routes if replace else {**below, **routes}
