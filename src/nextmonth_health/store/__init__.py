"""Stores, chosen by URL (``memory://``, later ``sqlite:///path`` and ``redis://host``) or object."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Store
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "open_store"]

SCHEMES = {"memory": MemoryStore}


def open_store(store: str | Store | None) -> Store:
    """The store for a URL string, a ready store object, or the default (memory)."""
    if store is None:
        return MemoryStore()
    if isinstance(store, Store):
        return store
    if not isinstance(store, str):
        raise ConfigError(f"store must be a URL string like 'memory://' or a Store object, got {store!r}")
    scheme, sep, _ = store.partition("://")
    factory = SCHEMES.get(scheme) if sep else None
    if factory is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(f"unknown store URL {store!r}: use one of {known}")
    return factory(store)
