"""Stores, chosen by URL (``memory://``, ``sqlite:///path``, ``redis://host``) or object."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

from ..errors import ConfigError
from .base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "check_reads_signals", "default_store_url", "open_store"]


def _redis_store(url: str) -> Store:
    """``redis://`` and ``rediss://``, imported only when asked for: the core runs without redis-py."""
    from .redis import RedisStore

    return RedisStore(url)


SCHEMES: dict[str, Callable[[str], Store]] = {
    "memory": MemoryStore,
    "sqlite": SQLiteStore,
    "redis": _redis_store,
    "rediss": _redis_store,
}


def default_store_url() -> str:
    """``$NEXTMONTH_HEALTH_STORE``, else ``nextmonth-health.db`` in the working directory."""
    return os.environ.get("NEXTMONTH_HEALTH_STORE") or "sqlite:///nextmonth-health.db"


def open_store(store: str | Store | None) -> Store:
    """The store for a URL string, a ready store object, or the default.

    The default is ``$NEXTMONTH_HEALTH_STORE`` when set, else the SQLite file
    ``nextmonth-health.db`` in the working directory: durable, and shared by every
    worker process of one host.
    """
    if store is None:
        store = default_store_url()
    if isinstance(store, Store):
        _check_write(store)
        return store
    if not isinstance(store, str):
        raise ConfigError(f"store must be a URL string like 'memory://' or a Store object, got {store!r}")
    scheme, sep, _ = store.partition("://")
    factory = SCHEMES.get(scheme) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(f"unknown store URL {store!r}: use one of {known}")
    return factory(store)


def _check_write(store: Store) -> None:
    """A store object from elsewhere must take ``write(buckets, batch=…)``: found at start-up,
    not as a ``TypeError`` on every flush in the background, with the events dropped."""
    try:
        params = inspect.signature(store.write).parameters
    except (TypeError, ValueError):  # a builtin or C callable we cannot look into: trust it
        return
    takes = "batch" in params and params["batch"].kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    if not takes and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        name = type(store).__qualname__
        raise ConfigError(
            f"{name}.write must accept a keyword argument 'batch' (the recorder's name for the"
            f" write; a store may ignore it): define it as write(self, buckets, *, batch=None)"
        )


def check_reads_signals(store: Store) -> None:
    """A store object from elsewhere must let a pass name the signals it reads, once plugins
    declared signals of their own: found at start-up, not as a ``TypeError`` on every pass.

    A pass reads through ``read_rows`` (stores that block) or ``sums`` (those that do not);
    a store that overrides the one it uses must take ``signals=``. Without plugin signals a
    pass never passes it, so a store written before them keeps working.
    """
    method = "read_rows" if store.blocking else "sums"
    try:
        params = inspect.signature(getattr(store, method)).parameters
    except (TypeError, ValueError):  # a builtin or C callable we cannot look into: trust it
        return
    if "signals" not in params and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        raise ConfigError(
            f"{type(store).__qualname__}.{method} must accept a keyword argument 'signals' (the signals a pass"
            f" reads, plugins' own included): define it as {method}(self, sites, start, end, *, width=None,"
            " signals=nextmonth_health.signals.SIGNALS)"
        )
