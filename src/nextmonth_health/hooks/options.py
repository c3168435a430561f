"""Validated per-plugin, per-site options: ``plugin_settings[name]``, read the same way by
every plugin.

A plugin's options are read once, when the monitor is built, for the monitor and for each
site, and every mistake raises :class:`~nextmonth_health.ConfigError` naming where it is
(``sites['acme']: plugin_settings['payments']``) and what would be accepted. Typos in
option names are the mistake that otherwise costs the most — an option silently left at
its default — so an unknown name is always an error with a "did you mean".
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..monitor import Monitor
    from ..settings import Settings

__all__ = [
    "check_option_names",
    "number_option",
    "option_error",
    "plugin_configs",
    "plugin_options",
    "whole_option",
]

T = TypeVar("T")


def option_error(where: str, message: str) -> ConfigError:
    """A ``ConfigError`` that says where the option is: ``f"{where}: {message}"``."""
    return ConfigError(f"{where}: {message}")


def check_option_names(where: str, raw: Mapping[str, Any], known: Collection[str]) -> None:
    """Raise on the first name in ``raw`` that is not in ``known``, with the closest known
    name ("did you mean 'payments'?") or, when none is close, the list of known ones."""
    for name in raw:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known options: {', '.join(known)}"
            raise option_error(where, f"unknown option {name!r}{hint}")


def number_option(where: str, name: str, value: Any, *, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` as a finite float above ``low`` and at most ``high`` (a positive number by default)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise option_error(where, f"{name} must be a number, got {value!r}")
    if not low < value <= high:
        if low == 0.0 and high == math.inf:
            bound = "a positive number"
        else:
            bound = f"above {low}" if high == math.inf else f"above {low} and at most {high}"
        raise option_error(where, f"{name} must be {bound}, got {value!r}")
    return float(value)


def whole_option(where: str, name: str, value: Any, *, low: int = 1) -> int:
    """``value`` as an int of at least ``low`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise option_error(where, f"{name} must be a whole number of at least {low}, got {value!r}")
    return value


def plugin_options(
    monitor: Monitor, name: str, *, layered: bool = False
) -> Iterator[tuple[str | None, Any, str, Settings]]:
    """Each place a plugin's options are read: ``(site, raw, where, settings)``.

    First the monitor-wide ``plugin_settings[name]`` (``site`` None), then each site's.
    With ``layered``, a site's own mapping is laid over the monitor-wide one (so
    ``{"to": "owner@acme.example"}`` is enough), and a site that names no
    ``plugin_settings`` of its own is left out: the monitor-wide options apply to it.
    """
    where = f"plugin_settings[{name!r}]"
    base = monitor.settings.plugin_settings.get(name)
    yield None, base, where, monitor.settings
    for site, settings in monitor.site_settings.items():
        own = settings.plugin_settings.get(name)
        if layered:
            if own is base:
                continue
            if isinstance(own, Mapping) and isinstance(base, Mapping):
                own = {**base, **own}
        yield site, own, f"sites[{site!r}]: {where}", settings


def plugin_configs(
    monitor: Monitor, name: str, parse: Callable[[Any, str], T | None], *, layered: bool = False
) -> dict[str | None, T | None]:
    """Every site's validated options, ``None`` keying the monitor-wide ones; raises ConfigError.

    ``parse(raw, where)`` validates one place's options (``None`` when nothing is
    configured there). A check or sink then looks a site up with
    ``configs.get(site, configs[None])``.
    """
    return {site: parse(raw, where) for site, raw, where, _ in plugin_options(monitor, name, layered=layered)}
