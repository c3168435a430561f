"""Errors the SDK raises at its boundaries, and the reporter for those it swallows.

Start-up mistakes fail fast with :class:`ConfigError`, whose message says what to fix.
Everything after start-up (a raising plugin, a store that is down) is reported here
instead: counted, logged once per place and kind, and never raised into the host. Tests
subscribe to the reporter to turn swallowed errors back into failures.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from .logs import get_logger

__all__ = ["ConfigError", "ErrorReporter", "NextMonthHealthError", "StaleLease", "StoreError", "is_store_error"]

log = get_logger(__name__)


class NextMonthHealthError(Exception):
    """Base class for errors raised by nextmonth_health."""


class ConfigError(NextMonthHealthError, ValueError):
    """A setting, store URL or plugin option is wrong; the message says how to fix it."""


class StoreError(NextMonthHealthError):
    """The store failed to read or write (a damaged, deleted or locked file); the message
    says what to do. The driver's own exception is its ``__cause__``."""


class StaleLease(NextMonthHealthError):
    """A write carried the fencing token of a lease another process has taken since: the
    writer was paused (a long GC, a frozen VM, a slow probe) past its lease, and its pass
    must end without effect. Nothing was written."""


def is_store_error(exc: BaseException) -> bool:
    """A store that failed (``StoreError``, or its client library's error): the environment, not a bug."""
    return isinstance(exc, StoreError) or any(
        kind.__module__.split(".")[0] in ("redis", "sqlite3") for kind in type(exc).__mro__
    )


class ErrorReporter:
    """Counts internal errors by where they happened and logs each kind once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._seen: set[tuple[str, type[BaseException]]] = set()
        self._listeners: list[Callable[[str, BaseException], None]] = []
        self._lock = threading.Lock()

    def report(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self.counts[where] += 1
            first = (where, type(exc)) not in self._seen
            self._seen.add((where, type(exc)))
            listeners = list(self._listeners)
        if first:
            log.warning("nextmonth_health.internal_error", where=where, exc_info=exc)
        for listener in listeners:
            listener(where, exc)

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held by a thread the child lacks)."""
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[str, BaseException], None]) -> Callable[[], None]:
        """Call ``listener(where, exc)`` for every reported error; returns an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    @property
    def total(self) -> int:
        return sum(self.counts.values())
