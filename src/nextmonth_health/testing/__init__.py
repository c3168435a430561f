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
``make_monitor``
    a factory ``make_monitor(*plugins, **settings)``: a memory-backed monitor on
    ``fake_clock`` with your plugins, no installed ones, ``internal_errors`` applied, and
    stopped at teardown.
``passes``
    ``await passes(n)`` runs n evaluation passes of the ``monitor`` fixture (or
    ``passes(n, monitor=...)``'s) a tick apart and returns their transitions; see
    :func:`run_passes`.
``http_receiver``
    an :class:`HttpReceiver`: a real HTTP server on 127.0.0.1 that answers with scripted
    statuses, headers and delays and records every request.
``recording_sink``
    a :class:`RecordingSink`, to pass in ``plugins=``: every transition it is sent.

The kit is what a plugin's own tests need and what the distributions in ``plugins/`` use,
so that no plugin author writes a loopback server or a fake sink again.

:func:`capture_logs` collects the SDK's log events as dicts, the way structlog's own
``capture_logs`` does for a structlog-configured app (the SDK logs through ``logging``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..clock import START, FakeClock
from ..hooks.specs import hookimpl
from ..values import Transition
from .loopback import HttpReceiver, Received, Reply, serve_loopback

if TYPE_CHECKING:
    from ..judge.runner import Evaluation
    from ..monitor import Monitor

__all__ = [
    "START",
    "FakeClock",
    "HttpReceiver",
    "Passes",
    "Received",
    "RecordingSink",
    "Reply",
    "capture_logs",
    "run_passes",
]


class RecordingSink:
    """An alert sink that keeps every transition it is sent, in order.

    It is its own plugin: ``Monitor(..., plugins=[sink])`` registers it.
    """

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.transitions: list[Transition] = []

    def send(self, transition: Transition) -> None:
        self.transitions.append(transition)

    def kinds(self) -> list[str]:
        """What was sent, as ``"opened check/key"`` strings: easy to compare in a test."""
        return [f"{t.kind} {t.incident.check}/{t.incident.key}" for t in self.transitions]

    @hookimpl
    def register_alert_sinks(self, register: Callable[[Any], None]) -> None:
        register(self)


class Passes(list[Transition]):
    """The transitions of some evaluation passes, in order; ``evaluations`` has each pass whole
    (its readings, failures and transitions)."""

    def __init__(self, evaluations: list[Evaluation]) -> None:
        super().__init__(t for e in evaluations for t in e.transitions)
        self.evaluations = evaluations

    def of(self, kind: str) -> list[Transition]:
        """The transitions of one kind: ``passes.of("opened")``."""
        return [t for t in self if t.kind == kind]


async def run_passes(monitor: Monitor, n: int, *, tick: float | None = None) -> Passes:
    """Run ``n`` evaluation passes, moving the monitor's ``FakeClock`` one tick after each.

    A tick is ``tick`` seconds, else the monitor's ``tick_seconds`` (15 s): passes as the
    runner would space them, without waiting. Returns every transition of the passes.
    """
    clock = monitor.clock
    if not isinstance(clock, FakeClock):
        raise TypeError("run_passes moves time: build the monitor with clock=FakeClock()")
    step = monitor.settings.tick_seconds if tick is None else tick
    evaluations = []
    for _ in range(n):
        evaluations.append(await monitor.evaluate())
        clock.advance(step)
    return Passes(evaluations)


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
        from ..monitor import Monitor

        m = Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
        internal_errors(m)
        yield m
        m.stop()

    @pytest.fixture
    def make_monitor(fake_clock: FakeClock, internal_errors: Callable[[Any], Any]) -> Iterator[Callable[..., Any]]:
        from ..monitor import Monitor

        built: list[Monitor] = []

        def make(*plugins: Any, site: str = "test-site", **settings: Any) -> Monitor:
            settings.setdefault("store", "memory://")
            settings.setdefault("load_entrypoints", False)
            m = Monitor(site, clock=fake_clock, plugins=list(plugins), **settings)
            internal_errors(m)
            built.append(m)
            return m

        yield make
        for m in built:
            m.stop()

    @pytest.fixture
    def passes(request: pytest.FixtureRequest) -> Callable[..., Any]:
        async def run(n: int, *, monitor: Monitor | None = None, tick: float | None = None) -> Passes:
            return await run_passes(monitor or request.getfixturevalue("monitor"), n, tick=tick)

        return run

    @pytest.fixture
    def http_receiver() -> Iterator[HttpReceiver]:
        yield from serve_loopback()

    @pytest.fixture
    def recording_sink() -> RecordingSink:
        return RecordingSink()
