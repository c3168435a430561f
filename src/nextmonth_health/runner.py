"""One evaluation pass, and the loops that repeat it.

A pass flushes the recorder, then for every site this process leads (a lease in the
store, so four workers give one alert, not four) runs each due check, folds the readings
into incidents and delivers the transitions to the sinks. A check that raises or overruns
its timeout reads as unknown, reported but harmless; the pass itself never raises into
the host.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import structlog
from attrs import field, frozen

from .values import Incident, Reading, Transition, TransitionKind, timestamp
from .windows import SiteView

if TYPE_CHECKING:
    from datetime import datetime

    from .checks import Check
    from .monitor import Monitor

__all__ = ["CheckFailure", "Evaluation", "Evaluator"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

_TRIM_EVERY = 60.0


@frozen
class CheckFailure:
    """A check that raised or timed out during a pass (its readings count as unknown)."""

    site: str
    check: str
    error: str


@frozen
class Evaluation:
    """What one pass saw and changed."""

    at: datetime
    sites: tuple[str, ...]
    readings: tuple[Reading, ...]
    transitions: tuple[Transition, ...] = ()
    failures: tuple[CheckFailure, ...] = field(default=())

    def _of(self, kind: TransitionKind) -> list[Transition]:
        return [t for t in self.transitions if t.kind is kind]

    @property
    def opened(self) -> list[Transition]:
        return self._of(TransitionKind.OPENED)

    @property
    def resolved(self) -> list[Transition]:
        return self._of(TransitionKind.RESOLVED)

    @property
    def alerts(self) -> list[Any]:
        """Alerts raised or updated in this pass."""
        return [t.alert for t in self.transitions if t.alert is not None]


_Prepared = tuple[list[Incident], list[Reading], list[str], list[CheckFailure], list[tuple["Check", Any, float]]]


class Evaluator:
    """Runs passes for a monitor; holds per-check schedules and the lease identity."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._last_run: dict[tuple[str, str], float] = {}
        self._last_trim = float("-inf")
        self._store_down = False
        self.last_evaluation: float | None = None

    async def store_call(self, func: Callable[..., T], *args: Any) -> T:
        if self.monitor.store.blocking:
            return await anyio.to_thread.run_sync(func, *args)
        return func(*args)

    async def evaluate(self) -> Evaluation:
        m = self.monitor
        await self.store_call(m.recorder.flush)
        now = m.clock.now()
        try:
            stored = await self.store_call(m.store.sites)
        except Exception as exc:
            m.errors.report("store.sites", exc)
            self.last_evaluation = now
            return Evaluation(at=timestamp(now), sites=(), readings=())
        sites = sorted(stored | {m.site} | set(m.site_settings))
        led: list[str] = []
        readings: list[Reading] = []
        transitions: list[Transition] = []
        failures: list[CheckFailure] = []
        self._store_down = False
        for site in sites:
            if self._store_down:
                break
            outcome = await self.store_call(self._prepare, site, now)
            if outcome is None:
                continue
            led.append(site)
            open_now, site_readings, ran, site_failures, pending = outcome
            if pending:
                await self._await_checks(site, pending, site_readings, ran, site_failures)
            readings += site_readings
            failures += site_failures
            try:
                transitions += await self.store_call(
                    lambda: m.tracker.apply(site, site_readings, now, m.settings_for(site), checks_run=ran, open_now=open_now)
                )
            except Exception as exc:
                m.errors.report("incidents.apply", exc)
        if led:
            try:
                await self.store_call(m.store.note_evaluations, led, now)
            except Exception as exc:
                m.errors.report("store.note_evaluations", exc)
        await m.delivery.deliver(m.sinks, transitions, now)
        if now - self._last_trim >= _TRIM_EVERY:
            self._last_trim = now
            try:
                await self.store_call(self._trim, now)
            except Exception as exc:
                m.errors.report("store.trim", exc)
        self.last_evaluation = now
        await self.store_call(m.refresh_notices)
        return Evaluation(
            at=timestamp(now),
            sites=tuple(led),
            readings=tuple(readings),
            transitions=tuple(transitions),
            failures=tuple(failures),
        )

    def _trim(self, now: float) -> None:
        s = self.monitor.settings
        self.monitor.store.trim(
            buckets_before=now - s.history_seconds,
            hourly_before=now - s.trend_retention,
            resolved_before=timestamp(now - s.resolved_retention),
        )

    def _prepare(self, site: str, now: float) -> _Prepared | None:
        """The synchronous part of a site's pass: lease, open incidents, plain checks.

        Runs in a worker thread when the store blocks, so SQLite or Redis I/O (the view
        reads lazily, and plain checks call it) never stalls the event loop. Returns
        None when another process leads the site. Async checks are handed back to be
        awaited on the loop under their timeouts.
        """
        m = self.monitor
        try:
            if not m.store.acquire_lease(f"leader:{site}", self.owner, max(3 * m.settings.tick_seconds, 30.0), now):
                return None
            open_now = m.store.incidents(site, open_only=True)
        except Exception as exc:
            m.errors.report("store.lease", exc)
            self._store_down = True  # one timeout per pass, not one per site
            return None
        settings = m.settings_for(site)
        view = SiteView(site, now, settings, m.store, {(i.check, i.key): i for i in open_now})
        readings: list[Reading] = []
        ran: list[str] = []
        failures: list[CheckFailure] = []
        pending: list[tuple[Check, Any, float]] = []
        for check in m.checks:
            interval = getattr(check, "interval", None)
            last = self._last_run.get((site, check.name))
            if interval and last is not None and now - last < interval:
                continue
            self._last_run[(site, check.name)] = now
            try:
                result = check.evaluate(view)
                if inspect.isawaitable(result):
                    pending.append((check, result, getattr(check, "timeout", None) or settings.check_timeout))
                    continue
                readings += _own(check, site, result)
                ran.append(check.name)
            except Exception as exc:
                self._failed(site, check, exc, failures)
        return open_now, readings, ran, failures, pending

    def _failed(self, site: str, check: Check, exc: BaseException, failures: list[CheckFailure]) -> None:
        self.monitor.errors.report(f"check.{check.name}", exc)
        failures.append(CheckFailure(site, check.name, f"{type(exc).__name__}: {exc}"))

    async def _await_checks(
        self,
        site: str,
        pending: list[tuple[Check, Any, float]],
        readings: list[Reading],
        ran: list[str],
        failures: list[CheckFailure],
    ) -> None:
        """Await a site's async checks concurrently, each under its own timeout."""

        async def wait(check: Check, awaitable: Any, timeout: float) -> None:
            try:
                with anyio.fail_after(timeout):
                    result = await awaitable
                readings.extend(_own(check, site, result))
                ran.append(check.name)
            except Exception as exc:
                self._failed(site, check, exc, failures)

        async with anyio.create_task_group() as tg:
            for check, awaitable, timeout in pending:
                tg.start_soon(wait, check, awaitable, timeout)

    async def flush_forever(self) -> None:
        m = self.monitor
        while True:
            await m.clock.sleep(m.settings.flush_seconds)
            try:
                await self.store_call(m.recorder.flush)
                await self.store_call(m.refresh_notices)
            except Exception as exc:
                m.errors.report("recorder.flush", exc)

    async def run_forever(self) -> None:
        m = self.monitor
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.flush_forever)
            while True:
                try:
                    await self.evaluate()
                except Exception as exc:
                    m.errors.report("runner.evaluate", exc)
                await m.clock.sleep(m.settings.tick_seconds)


def _own(check: Check, site: str, result: Iterable[Reading] | None) -> Sequence[Reading]:
    """A check's readings, keeping only well-formed ones for its own name and site."""
    readings = list(result or ())
    for reading in readings:
        if not isinstance(reading, Reading):
            raise TypeError(f"check {check.name!r} returned {type(reading).__name__}, not a Reading")
        if reading.check != check.name or reading.site != site:
            raise ValueError(
                f"check {check.name!r} returned a reading for check {reading.check!r} of site {reading.site!r}"
            )
    return readings
