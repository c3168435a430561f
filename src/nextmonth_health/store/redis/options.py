"""The ``redis://`` store's URL and its own query options (``timeout``, ``history``,
``trend``, ``prefix``): taken out of the URL before redis-py sees the rest, so a typo in
one of ours fails as a ConfigError naming it, not deep inside a connection."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import ConfigError

DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_HISTORY: Final = 7200
DEFAULT_TREND: Final = 30 * 86_400
DEFAULT_PREFIX: Final = "nmh"

OPTIONS: Final = ("timeout", "history", "trend", "prefix")


def split_options(url: str) -> tuple[str, dict[str, str]]:
    """The URL for redis-py, and this store's own query options taken out of it."""
    if not isinstance(url, str) or url.partition("://")[0] not in ("redis", "rediss", "unix"):
        raise ConfigError(f"not a Redis store URL: {url!r}; use redis://host:6379/0")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in OPTIONS}
    rest = [(k, v) for k, v in query if k not in OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(rest))), options


def positive(name: str, given: float | None, text: str | None, default: float) -> float:
    if given is None and text is None:
        return default
    try:
        value = float(given if given is not None else text)  # type: ignore[arg-type]
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(
            f"the redis:// store option {name} must be a positive number of seconds, got {given or text!r}"
        )
    return value


def redacted(url: str) -> str:
    """The URL without its password, for logs, ``repr`` and the admin view."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def config_value(reply: Any, name: str) -> str | None:
    """One setting from a ``CONFIG GET`` reply (str or bytes), or None if it is not there."""
    if not isinstance(reply, dict):
        return None
    for key, value in reply.items():
        if (key.decode() if isinstance(key, bytes) else key) == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None

