"""Connections of the Redis store: short timeouts, no retries, and a fresh pool in each
forked child.

Why: a dead or hung Redis must cost the background flusher one timeout per call, never
the request path; and a store created before a pre-fork server forks (gunicorn
``--preload``) must not share a socket or a lock across ``fork()``.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Final, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...errors import ConfigError

_HEALTH_CHECK_INTERVAL: Final = 30


def persistence_caveats(client: Any, shown_url: str) -> tuple[str, ...]:
    """A Redis that keeps nothing on disk (no append-only file, no save points).

    A managed Redis that refuses ``CONFIG`` (or one that is down) cannot tell, and says
    nothing.
    """
    try:
        aof = _config_value(client.config_get("appendonly"), "appendonly")
        save = _config_value(client.config_get("save"), "save")
    except Exception:
        return ()
    if aof == "no" and save == "":
        return (
            (
                f"Redis at {shown_url} keeps nothing on disk (appendonly no, no save points):"
                " a restart forgets open incidents and alerts, and the next pass opens and"
                " alerts them again; set appendonly yes"
            ),
        )
    return ()


def _config_value(reply: Any, name: str) -> str | None:
    """One setting from a ``CONFIG GET`` reply (str or bytes), or None if it is not there."""
    if not isinstance(reply, dict):
        return None
    for key, value in reply.items():
        if (key.decode() if isinstance(key, bytes) else key) == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def connect(url: str, timeout: float, shown_url: str) -> Any:
    """A client of ``url``; a bad URL raises ConfigError naming ``shown_url`` (redacted)."""
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=_HEALTH_CHECK_INTERVAL,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigError(f"bad redis:// store URL {shown_url!r}: {exc}") from exc


class _Reconnects(Protocol):
    def _after_fork_in_child(self) -> None: ...


_STORES: weakref.WeakSet[Any] = weakref.WeakSet()


def forked_children_reconnect(store: _Reconnects) -> None:
    """Call ``store._after_fork_in_child()`` in every child forked while it lives."""
    _STORES.add(store)


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
