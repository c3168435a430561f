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
import logging
from collections.abc import Callable, Iterator
from typing import Any

from .clock import START, FakeClock

__all__ = ["START", "FakeClock", "capture_logs"]

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
