"""Helpers for testing code that uses nextmonth_health — and a pytest plugin.

``FakeClock`` makes time explicit: nothing sleeps for real, ``advance`` moves time and
wakes whatever was waiting. The pytest plugin (registered through the ``pytest11`` entry
point) provides fixtures:

``fake_clock``
    a :class:`FakeClock` starting at a fixed, bucket-aligned moment.
``monitor``
    a memory-backed :class:`~nextmonth_health.Monitor` on ``fake_clock`` whose swallowed
    internal errors fail the test.
``internal_errors``
    a factory ``internal_errors(monitor)`` that re-raises what a monitor swallowed, at
    teardown (what the ``monitor`` fixture uses).

:func:`capture_logs` collects the SDK's log events as dicts, the way structlog's own
``capture_logs`` does for a structlog-configured app (the SDK logs through ``logging``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["START", "FakeClock", "capture_logs"]

#: 2026-01-05 09:00:00 UTC, a Monday morning: a round moment every bucket size divides.
START = 1_767_603_600.0


class FakeClock:
    """A clock that moves only when told to.

    ``sleep`` waits until ``advance`` has moved the clock past its deadline; waiters in
    other threads (a monitor started with ``start()``) are woken through their own loop.
    """

    def __init__(self, start: float = START) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, int, anyio.Event, Any, int]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds
            due = []
            while self._sleepers and self._sleepers[0][0] <= self._now:
                due.append(heapq.heappop(self._sleepers))
        here = threading.get_ident()
        for _, _, event, token, thread in due:
            if thread == here:
                event.set()
            else:
                anyio.from_thread.run_sync(event.set, token=token)

    def set(self, when: float) -> None:
        """Jump to an absolute time (forward only)."""
        self.advance(when - self._now)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        with self._lock:
            deadline = self._now + seconds
            heapq.heappush(
                self._sleepers,
                (deadline, next(self._counter), event, anyio.lowlevel.current_token(), threading.get_ident()),
            )
        await event.wait()

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return len(self._sleepers)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now})"


@contextlib.contextmanager
def capture_logs(logger: str = "nextmonth_health") -> Iterator[list[dict[str, Any]]]:
    """Collect the events logged under ``logger`` (every level) while the block runs.

    Each is a dict of the event's fields with ``event`` (its name) and ``log_level``
    (``"info"``, ``"warning"``, ...), as ``structlog.testing.capture_logs`` gives them.
    """
    events: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = dict(record.msg) if isinstance(record.msg, dict) else {"event": record.getMessage()}
            fields["log_level"] = record.levelname.lower()
            events.append(fields)

    target = logging.getLogger(logger)
    handler, level = Collect(logging.DEBUG), target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield events
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


try:
    import pytest
except ImportError:  # pragma: no cover - the plugin is only loaded by pytest
    pass
else:

    @pytest.fixture
    def fake_clock() -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def internal_errors() -> Iterator[Callable[[Any], list[tuple[str, BaseException]]]]:
        seen: list[tuple[str, BaseException]] = []
        unsubscribes: list[Callable[[], None]] = []

        def watch(monitor: Any) -> list[tuple[str, BaseException]]:
            unsubscribes.append(monitor.errors.subscribe(lambda where, exc: seen.append((where, exc))))
            return seen

        yield watch
        for unsubscribe in unsubscribes:
            unsubscribe()
        if seen:
            where, exc = seen[0]
            raise AssertionError(f"nextmonth_health swallowed {len(seen)} internal error(s); first in {where}") from exc

    @pytest.fixture
    def monitor(fake_clock: FakeClock, internal_errors: Callable[[Any], Any]) -> Iterator[Any]:
        from .monitor import Monitor

        m = Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
        internal_errors(m)
        yield m
        m.stop()
