"""The ``redis://`` store's URL and its own query options (``timeout``, ``history``,
``trend``, ``prefix``): taken out of the URL before redis-py sees the rest, so a typo in
one of ours fails as a ConfigError naming it, not deep inside a connection."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from attrs import frozen

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
    """A number of seconds given as a keyword or, else, in the URL; a bad one raises
    ConfigError naming the option, rather than an odd TTL in Redis later."""
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


@frozen
class StoreOptions:
    """The store's settings: a keyword given to the store wins over the URL's option, which
    wins over the default."""

    connect_url: str
    shown_url: str
    timeout: float
    history_seconds: int
    trend_seconds: int
    prefix: str

    @classmethod
    def parse(
        cls,
        url: str,
        timeout: float | None = None,
        history_seconds: int | None = None,
        trend_seconds: int | None = None,
        prefix: str | None = None,
    ) -> StoreOptions:
        connect_url, options = split_options(url)
        prefix = prefix or options.get("prefix") or DEFAULT_PREFIX
        if "{" in prefix or "}" in prefix:
            raise ConfigError(f"the redis:// store prefix must not contain braces, got {prefix!r}")
        return cls(
            connect_url=connect_url,
            shown_url=redacted(url),
            timeout=positive("timeout", timeout, options.get("timeout"), DEFAULT_TIMEOUT),
            history_seconds=int(positive("history", history_seconds, options.get("history"), DEFAULT_HISTORY)),
            trend_seconds=int(positive("trend", trend_seconds, options.get("trend"), DEFAULT_TREND)),
            prefix=prefix,
        )
