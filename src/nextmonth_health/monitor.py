"""The one object a developer configures: records traffic, evaluates, answers queries."""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from datetime import datetime
from typing import Any

import anyio
import anyio.from_thread
import attrs
from attrs import frozen

from . import signals as sig
from .clock import Clock, SystemClock
from .errors import ConfigError, ErrorReporter
from .forking import ForkGate
from .hooks.manager import PluginFailure, collect, get_plugin_manager, strict_mode
from .judge.checks import Check
from .judge.incidents import IncidentTracker
from .judge.runner import Evaluation, Evaluator
from .judge.windows import SiteView
from .logs import get_logger
from .record.recorder import FIELDS, Recorder
from .record.routes import check_routes, registered_routes, warn_unwatched
from .settings import Settings, build_settings
from .store import Store, check_reads_signals, open_store
from .tell import quiet
from .tell.notices import MessageRenderer, NoticeBoard
from .tell.sinks import AlertSink, Delivery
from .values import Alert, Incident, MaintenanceWindow, Notice, Silence, timestamp

__all__ = ["Monitor", "MonitorStatus"]

log = get_logger(__name__)


@frozen
class MonitorStatus:
    """How the monitor itself is doing: what it dropped, what went wrong inside it."""

    site: str
    store: str
    events_flushed: int
    buffered: int
    drops: Mapping[str, int]
    internal_errors: Mapping[str, int]
    sink_pending: int
    sink_dropped: int
    last_evaluation: Any
    plugin_failures: tuple[PluginFailure, ...]
    #: What plugins report of themselves (a sink's or check's ``stats``), by name.
    plugin_stats: Mapping[str, Any]
    #: Buckets folded but not yet stored: a failed write waiting to be sent again.
    unsent: int = 0
    #: Events the store has taken (``events_flushed`` less those unsent or lost).
    events_stored: int = 0
    #: Events folded but not stored yet (``unsent``'s buckets, in events).
    unsent_events: int = 0
    #: Ways the store may lose what it keeps (``Store.caveats``), read when the monitor started.
    store_caveats: tuple[str, ...] = ()
    #: Sites still learning what normal looks like (judged on fixed lines only), as of the
    #: last pass this process led for them; see :meth:`Monitor.learning`.
    learning: tuple[str, ...] = ()
    #: Seconds this process's clock is behind (positive) or ahead of the store's clock, or
    #: of the newest counts other processes wrote, when more than a few; None when in step.
    clock_skew: float | None = None
    #: Seconds since this process last evaluated while events keep being recorded, once that
    #: is more than three ticks (nothing runs the loop, or a pass hangs); None while all keeps up.
    evaluation_overdue: float | None = None


class Monitor:
    """Watches one or many sites from inside the app.

    ``record_*`` methods (and :meth:`record`, for plugins' signals) are the request path:
    they append one event to an in-memory buffer and return, never raising and never blocking. Everything else happens in
    :meth:`evaluate`, run on intervals by :meth:`running`, :meth:`run` or :meth:`start`.

    :param site: the site recorded when a ``record_*`` call names none.
    :param store: a store URL (``"memory://"``) or :class:`~nextmonth_health.store.Store`.
    :param clock: a :class:`~nextmonth_health.clock.Clock`; tests pass a ``FakeClock``.
    :param plugins: plugin objects or module names, on top of installed and bundled ones.
    :param sites: per-site setting overrides, e.g. ``{"tiny": {"api_error_min_count": 10}}``.
    :param settings: any :class:`~nextmonth_health.settings.Settings` field.
    """

    def __init__(
        self,
        site: str = "default",
        *,
        store: str | Store | None = None,
        clock: Clock | None = None,
        plugins: Iterable[Any] = (),
        sites: Mapping[str, Mapping[str, Any]] | None = None,
        load_entrypoints: bool = True,
        strict_plugins: bool | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(site, str) or not site or len(site) > 100:
            raise ConfigError(f"site must be a non-empty name of at most 100 characters, got {site!r}")
        self.site = site
        self.settings, self.site_settings = build_settings(settings, sites)
        self.clock: Clock = clock if clock is not None else SystemClock()
        if not isinstance(self.clock, Clock) or not inspect.iscoroutinefunction(self.clock.sleep):
            raise ConfigError(f"clock must have now() and async sleep(), got {clock!r}")
        self.store = open_store(store)
        self.errors = ErrorReporter()
        self.recorder = Recorder(
            store=self.store,
            default_site=site,
            settings_for=self.settings_for,
            capacity=self.settings.buffer_capacity,
            max_sites=self.settings.max_sites,
            errors=self.errors,
        )
        self._buffer = self.recorder.buffer
        self._capacity = self.settings.buffer_capacity * FIELDS
        # time.time itself, not SystemClock.now's extra frame: ~65 ns of a ~350 ns call.
        # Bound when the monitor is built, so freezegun steers monitors built inside it.
        self._now = time.time if type(self.clock) is SystemClock else self.clock.now
        self.tracker = IncidentTracker(self.store, self.errors)
        self.delivery = Delivery(
            self.errors,
            timeout=self.settings.sink_timeout,
            max_attempts=self.settings.sink_max_attempts,
            backoff=self.settings.sink_backoff_seconds,
        )
        self.plugin_manager, failures = get_plugin_manager(plugins, entrypoints=load_entrypoints, strict=strict_plugins)
        strict = strict_mode(strict_plugins)
        declared, f0 = collect(
            self.plugin_manager, "register_signals", "signal", (), strict, validate=sig.signal_name_error, monitor=self
        )
        #: Every signal this monitor records and reads: the built-in ones, then those plugins
        #: declared (``register_signals``), each once.
        self.signals: tuple[str, ...] = (*sig.SIGNALS, *dict.fromkeys(declared))
        self.recorder.declared = frozenset(self.signals[len(sig.SIGNALS) :])
        if self.recorder.declared:
            check_reads_signals(self.store)
        routes, f0r = collect(
            self.plugin_manager, "register_routes", "routes", (), strict, validate=registered_routes, monitor=self
        )
        plugin_routes = {route: area for table in routes for route, area in table.items()}
        if plugin_routes:  # the checks registered next see them
            self.settings, self.site_settings = build_settings(settings, sites, plugin_routes)
        checks, f1 = collect(
            self.plugin_manager,
            "register_health_checks",
            "check",
            ("name", "evaluate"),
            strict,
            validate=check_routes,
            monitor=self,
        )
        sinks, f2 = collect(self.plugin_manager, "register_alert_sinks", "sink", ("name", "send"), strict, monitor=self)
        renderers, f3 = collect(
            self.plugin_manager, "register_message_renderers", "renderer", ("name", "render"), strict, monitor=self
        )
        self.plugin_failures: tuple[PluginFailure, ...] = (*failures, *f0, *f0r, *f1, *f2, *f3)
        self.checks: Sequence[Check] = _by_name(checks)
        own = {route: area for check in self.checks for route, area in check_routes(check).items()}
        if own:
            self.settings, self.site_settings = build_settings(settings, sites, {**plugin_routes, **own})
            warn_unwatched(
                self.checks,
                {"*": self.settings.route_table} | {s: t.route_table for s, t in self.site_settings.items()},
            )
        self.sinks: Sequence[AlertSink] = _by_name(sinks)
        self.renderers: Sequence[MessageRenderer] = tuple(reversed(_by_name(renderers)))
        #: Lets a fork wait for the background work under way (see ``forking``).
        self.fork_gate = ForkGate()
        self.evaluator = self._evaluator()
        self.board = NoticeBoard(self.store, self.clock, self.renderers, self.errors, running=lambda: self._running)
        #: What the store said of itself when the monitor last started running.
        self.store_caveats: tuple[str, ...] = ()
        self._running = False
        self._portal: contextlib.AbstractContextManager[Any] | None = None
        self._future: Future[None] | None = None
        self._thread_lock = threading.Lock()
        self._parents_portals: list[Any] = []
        self._stops_at_exit = False
        #: What :meth:`overdue` last saw: the last pass, events recorded then, since when.
        self._watched: tuple[float | None, int, float] = (None, 0, self.clock.now())
        self._said_overdue = False
        me = weakref.ref(self)

        def after_in_parent() -> None:
            if (m := me()) is not None:
                m.fork_gate.after_fork_in_parent()

        def after_in_child() -> None:
            if (m := me()) is not None:
                m._after_fork_in_child()

        os.register_at_fork(
            before=lambda: (m := me()) is not None and m.fork_gate.before_fork(),
            after_in_parent=after_in_parent,
            after_in_child=after_in_child,
        )

    def _after_fork_in_child(self) -> None:
        """A pre-fork server's child starts clean: its own loop, buffer and leader identity.

        Events the parent buffered stay the parent's to flush (the child would count them
        twice). The parent's background thread does not exist here: if the parent had
        called :meth:`start` (an app module that starts its monitor, under gunicorn
        ``--preload``), the child starts its own, as OpenTelemetry's batch processor does,
        so that every worker flushes without a ``post_fork`` hook.
        """
        started = self._future is not None
        if started:
            # Never closed here: closing the parent's portal waits for its loop thread,
            # which the child does not have, so dropping it (and letting it be collected)
            # would hang the child in this hook.
            self._parents_portals.append(self._portal)
        self._future = self._portal = None
        self._thread_lock = threading.Lock()
        self._running = False
        self.fork_gate = ForkGate()
        self.errors.after_fork()
        self.recorder.after_fork()
        self.evaluator = self._evaluator()
        if started:
            try:
                self.start()
            except Exception as exc:
                self.errors.report("monitor.start_after_fork", exc)

    def _evaluator(self) -> Evaluator:
        return Evaluator(
            store=self.store,
            recorder=self.recorder,
            tracker=self.tracker,
            delivery=self.delivery,
            sinks=self.sinks,
            checks=self.checks,
            clock=self.clock,
            settings=self.settings,
            settings_for=self.settings_for,
            sites=frozenset({self.site, *self.site_settings}),
            errors=self.errors,
            fork_gate=self.fork_gate,
            refresh=self.refresh_notices,
            signals=self.signals,
        )

    def __repr__(self) -> str:
        return f"Monitor(site={self.site!r}, store={self.store.url!r})"

    def settings_for(self, site: str | None = None) -> Settings:
        """The settings in force for a site: its overrides on top of the monitor's."""
        return self.site_settings.get(site or self.site, self.settings)

    # The request path. Each method extends the buffer by one event's fields and returns;
    # validation happens at flush time, where bad input is counted as dropped, not raised.

    def record_request(
        self,
        route: str,
        status: int,
        duration: float,
        user: str | None = None,
        site: str | None = None,
    ) -> None:
        """An HTTP request finished: its route, status code and duration in seconds.

        ``route`` is a path or route template (``"/bookings/{id}"``), or the request's
        method and path (``"POST /payments/webhook"``) to match routes declared with a
        method; a path alone matches only routes without one.
        """
        try:
            if len(self._buffer) < self._capacity:
                self._buffer.extend((sig.REQUEST, site, route, status, duration, user, self._now()))
            else:
                self.recorder.overflow += 1
        except Exception as exc:
            self.errors.report("record", exc)

    def record_login(self, ok: bool, user: str | None = None, site: str | None = None) -> None:
        """A sign-in attempt succeeded (``ok=True``) or failed."""
        try:
            if len(self._buffer) < self._capacity:
                self._buffer.extend((sig.LOGIN, site, None, ok, None, user, self._now()))
            else:
                self.recorder.overflow += 1
        except Exception as exc:
            self.errors.report("record", exc)

    def record_session_expired(self, user: str | None = None, site: str | None = None) -> None:
        """A user's session expired while they were using the site."""
        try:
            if len(self._buffer) < self._capacity:
                self._buffer.extend((sig.SESSION_EXPIRED, site, None, None, None, user, self._now()))
            else:
                self.recorder.overflow += 1
        except Exception as exc:
            self.errors.report("record", exc)

    def record_upload(
        self, ok: bool, user: str | None = None, site: str | None = None, size: int | None = None
    ) -> None:
        """A media upload finished, successfully or not; ``size`` in bytes if known."""
        try:
            if len(self._buffer) < self._capacity:
                self._buffer.extend((sig.UPLOAD, site, None, ok, size, user, self._now()))
            else:
                self.recorder.overflow += 1
        except Exception as exc:
            self.errors.report("record", exc)

    def record_page_load(self, page: str, seconds: float, user: str | None = None, site: str | None = None) -> None:
        """A page finished loading in the browser after ``seconds`` (the beacon calls this)."""
        try:
            if len(self._buffer) < self._capacity:
                self._buffer.extend((sig.PAGE_LOAD, site, page, seconds, None, user, self._now()))
            else:
                self.recorder.overflow += 1
        except Exception as exc:
            self.errors.report("record", exc)

    def record(
        self,
        signal: str,
        key: str = "",
        *,
        ok: bool = True,
        value: float | None = None,
        user: str | None = None,
        site: str | None = None,
    ) -> None:
        """One event of a plugin's own signal (declared through ``register_signals``).

        ``ok=False`` counts it bad (a failed job, a timed-out call); ``value``, a duration
        in seconds or another amount of at least 0, feeds the window's quantiles; ``key``
        splits the signal as routes split requests, so keep it to a few fixed names (the
        first 100 per site and signal are kept, later ones dropped and counted).

        As cheap as :meth:`record_request`, and like it never raises: an event of a signal
        no plugin declared is dropped when flushed, counted in ``status().drops`` and named
        once in the log. The built-in signals have their own ``record_*`` methods.
        """
        try:
            if len(self._buffer) < self._capacity:
                self._buffer.extend((signal, site, key, ok, value, user, self._now()))
            else:
                self.recorder.overflow += 1
        except Exception as exc:
            self.errors.report("record", exc)

    # Evaluation and its loops.

    async def evaluate(self) -> Evaluation:
        """Run one full pass now: flush, check every site, update incidents, notify sinks."""
        return await self.evaluator.evaluate()

    def flush(self) -> int:
        """Fold buffered events into the store now; returns how many were folded."""
        return self.recorder.flush()

    async def run(self) -> None:
        """Flush every ``flush_seconds`` and evaluate every ``tick_seconds``, until cancelled."""
        self._running = True
        try:
            async with self.fork_gate.unit():
                await self._read_caveats()
                await self.evaluator.follow_store_clock()
            await self.evaluator.run_forever()
        finally:
            self._running = False
            with anyio.CancelScope(shield=True):
                async with self.fork_gate.unit():
                    await self._last_flush()
                    await self._close_plugins()

    async def _last_flush(self) -> None:
        """Store what is left, waiting at most ``stop_timeout``; count the rest as lost.

        A store that is down or hung when the monitor stops cannot take the last events;
        they are counted in ``status().drops["store_at_exit"]`` and logged with their
        number, never dropped silently. A flush still running when time is up is left to
        finish in its thread: if the store's own timeout ends it, it counts what it held.
        """
        timeout = self.settings.stop_timeout
        with anyio.move_on_after(timeout):
            try:
                if self.store.blocking:
                    await anyio.to_thread.run_sync(self.recorder.flush, abandon_on_cancel=True)
                else:
                    self.recorder.flush()
            except Exception as exc:
                self.errors.report("recorder.flush", exc)
        self.recorder.abandon("store_at_exit", wait=0.1)

    async def _read_caveats(self) -> None:
        """Tell the operator, once per run, how the store may lose incidents (``Store.caveats``)."""
        try:
            caveats = tuple(await self.evaluator.store_call(self.store.caveats))
        except Exception as exc:
            self.errors.report("store.caveats", exc)
            return
        if caveats != self.store_caveats:
            for caveat in caveats:
                log.warning("nextmonth_health.store_caveat", store=self.store.url, caveat=caveat)
        self.store_caveats = caveats

    async def _close_plugins(self) -> None:
        """Let checks and sinks with a ``close()`` drain queues and release connections."""
        for obj in (*self.sinks, *self.checks, *self.renderers):
            close = getattr(obj, "close", None)
            if not callable(close):
                continue
            try:
                with anyio.fail_after(self.settings.sink_timeout):
                    result = close()
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                self.errors.report(f"close.{getattr(obj, 'name', '?')}", exc)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Monitor]:
        """Run the monitor in the background of an ``async with`` block."""
        try:
            async with anyio.create_task_group() as tg:
                self._running = True  # at once: a middleware starting up next must see it
                tg.start_soon(self.run)
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self._running = False

    @property
    def is_running(self) -> bool:
        """Whether this monitor's loop runs in this process (:meth:`running`, :meth:`run` or :meth:`start`).

        The middlewares ask before starting it, so that a host that runs it itself never
        gets a second loop.
        """
        return self._running or self._future is not None

    def start(self) -> None:
        """Run the monitor in a background thread, for sync hosts (Flask, Django WSGI).

        A process that exits without calling :meth:`stop` still has it called at exit
        (``atexit``), so the last second's events are flushed, as Sentry's SDK does.
        """
        with self._thread_lock:
            if self._future is not None:
                raise RuntimeError("this monitor is already started; call stop() first")
            self._portal = anyio.from_thread.start_blocking_portal()
            portal = self._portal.__enter__()
            self._future = portal.start_task_soon(self.run)
            if not self._stops_at_exit:
                me = weakref.ref(self)

                def stop_at_exit() -> None:
                    if (m := me()) is not None:
                        m.stop()

                atexit.register(stop_at_exit)
                self._stops_at_exit = True

    def stop(self) -> None:
        """Stop the background thread started by :meth:`start`, flushing what is buffered."""
        with self._thread_lock:
            future, portal = self._future, self._portal
            self._future = self._portal = None
        if future is None or portal is None:
            return
        future.cancel()
        with contextlib.suppress(CancelledError):
            future.exception()
        portal.__exit__(None, None, None)

    def overdue(self, now: float | None = None) -> float | None:
        """Seconds since this process last evaluated, if events keep coming and that is over three ticks.

        Recording without evaluating is the one failure nothing else would show: the
        request path goes on, no notice ever appears. It is said once per stall, as a
        warning, and while it lasts ``status().evaluation_overdue`` holds the seconds.
        """
        now = self.clock.now() if now is None else now
        last = self.evaluator.last_evaluation
        recorder = self.recorder
        recorded = recorder.events_flushed + recorder.buffered + recorder.overflow
        seen_pass, recorded_then, since = self._watched
        if last != seen_pass:
            self._watched = (last, recorded, now if last is None else last)
            self._said_overdue = False
            return None
        overdue = now - since
        if recorded == recorded_then or overdue <= 3 * self.settings.tick_seconds:
            return None
        if not self._said_overdue:
            self._said_overdue = True
            log.warning(
                "nextmonth_health.not_evaluating",
                site=self.site,
                seconds=round(overdue),
                running=self.is_running,
                hint="events are recorded but nothing in this process has evaluated them: wrap the app in "
                "nextmonth_health.asgi/wsgi.HealthMiddleware (it runs the monitor), or call monitor.start() "
                "or use `async with monitor.running()`; ignore this if `nextmonth-health serve` evaluates "
                "this store",
            )
        return overdue

    # What people see.

    def refresh_notices(self) -> None:
        """Re-read the open incidents of every site whose notices were asked for.

        The runner calls this after each pass and each flush (in a worker thread for a
        blocking store), so that :meth:`notices` answers from memory on the request path.
        """
        self.overdue()
        self.board.refresh()

    def notices(self, area: str, site: str | None = None) -> list[Notice]:
        """The notice users should see at ``area`` now: empty while all is well there.

        At most one notice per area: the most serious open incident's, a site-wide one
        (area ``site``, every route failing) counting in every area; the planned-maintenance
        words while a maintenance window covers it. Never raises: a store that cannot be
        read is reported (counted in ``status().internal_errors``) and the last incidents
        known keep their notices.
        """
        try:
            self.overdue()
        except Exception as exc:
            self.errors.report("notices", exc)
        return self.board.notices(area, site or self.site)

    # Planned quiet: what the admin schedules (the admin view, the JSON API and the command
    # line call these). They read and write the store: never the request path.

    def schedule_maintenance(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        duration: float | None = None,
        reason: str = "",
        area: str | None = None,
        site: str | None = None,
    ) -> MaintenanceWindow:
        """Plan work on ``site`` (or this monitor's), or on one ``area`` of it, from
        ``start`` (default now) to ``end`` or for ``duration`` seconds. Raises
        :class:`ValueError` for a window that ends before it starts or lasts over a week."""
        window = quiet.new_window(
            site or self.site,
            self.clock.now(),
            start=start,
            end=end,
            duration=duration,
            reason=reason,
            area=area,
        )
        self.store.save_maintenance(window)
        log.info(
            "nextmonth_health.maintenance_scheduled",
            site=window.site,
            id=window.id,
            area=window.area,
        )
        return window

    def maintenance(self, site: str | None = None) -> list[MaintenanceWindow]:
        """Maintenance windows running now or still to come (of ``site``, or every site)."""
        now = timestamp(self.clock.now())
        return [w for w in self.store.maintenance_windows(site) if w.ends_at > max(now, w.starts_at)]

    def end_maintenance(self, window_id: str) -> MaintenanceWindow | None:
        """End a window now (one still to come is cancelled); None if there is no such window."""
        return self.store.end_maintenance(window_id, timestamp(self.clock.now()))

    def silence(
        self,
        check: str,
        key: str | None = None,
        *,
        duration: float = quiet.DEFAULT_SILENCE_SECONDS,
        reason: str = "",
        site: str | None = None,
    ) -> Silence:
        """No alerts or reminders for ``check`` (on ``key``, or every key) for ``duration``
        seconds (two hours by default); its incidents stay in view, marked silenced."""
        made = quiet.new_silence(site or self.site, self.clock.now(), check, key, duration=duration, reason=reason)
        self.store.save_silence(made)
        log.info("nextmonth_health.silenced", site=made.site, id=made.id, check=check, key=key)
        return made

    def silences(self, site: str | None = None) -> list[Silence]:
        """Silences in force now or still to come (of ``site``, or every site)."""
        now = timestamp(self.clock.now())
        return [s for s in self.store.silences(site) if s.ends_at > now]

    def end_silence(self, silence_id: str) -> Silence | None:
        """Lift a silence now; None if there is no such silence."""
        return self.store.end_silence(silence_id, timestamp(self.clock.now()))

    def acknowledge(self, incident_id: str) -> Alert | None:
        """Mark the alert of ``incident_id`` read (no more reminders); None if it has none."""
        return self.store.acknowledge_alert(incident_id, timestamp(self.clock.now()))

    # What the admin sees.

    def incidents(self, site: str | None = None, include_resolved: bool = True) -> list[Incident]:
        """Open incidents and, unless told otherwise, those resolved in the last 24 hours."""
        since = timestamp(self.clock.now() - self.settings.resolved_retention)
        return self.store.incidents(site, open_only=not include_resolved, resolved_since=since)

    def alerts(self, site: str | None = None) -> list[Alert]:
        """The admin alerts of recent incidents, newest first (resolved ones keep ``resolved_at``)."""
        since = timestamp(self.clock.now() - self.settings.resolved_retention)
        return [a for a in self.store.alerts(site) if a.resolved_at is None or a.resolved_at >= since]

    def learning(self, site: str | None = None) -> bool:
        """True while a site's baseline is still being learned, read from the store now.

        That is while its last hour holds less than ``baseline_min_share`` of what its
        current traffic would fill it with: it started recording recently, came back
        after a quiet spell, or its traffic jumped. Its checks then judge only on fixed,
        conservative lines. SQLite and Redis keep the hour across restarts, so a restart
        is not a cold start. Reads the store: for the command line and the admin view,
        never the request path.
        """
        site = site or self.site
        view = SiteView(site, self.clock.now(), self.settings_for(site), self.store)
        return view.learning(sig.REQUEST) if view.window(sig.REQUEST).total else view.learning(sig.LOGIN)

    def status(self) -> MonitorStatus:
        """The monitor's own health: drops, internal errors, sink backlog, last pass."""
        last = self.evaluator.last_evaluation
        plugins: tuple[AlertSink | Check, ...] = (*self.sinks, *self.checks)
        return MonitorStatus(
            site=self.site,
            store=self.store.url,
            events_flushed=self.recorder.events_flushed,
            buffered=self.recorder.buffered,
            unsent=self.recorder.unsent,
            events_stored=self.recorder.events_stored,
            unsent_events=self.recorder.unsent_events,
            store_caveats=self.store_caveats,
            learning=tuple(sorted(self.evaluator.learning)),
            clock_skew=self.evaluator.clock_skew,
            drops=dict(self.recorder.drops),
            internal_errors=dict(self.errors.counts),
            sink_pending=self.delivery.pending,
            sink_dropped=self.delivery.dropped,
            last_evaluation=None if last is None else timestamp(last),
            evaluation_overdue=self.overdue(),
            plugin_failures=self.plugin_failures,
            plugin_stats={obj.name: stats for obj in plugins if (stats := _stats_of(obj)) is not None},
        )


def _stats_of(obj: object) -> dict[str, Any] | None:
    """A plugin's self-reported ``stats`` (a mapping or an attrs instance), or None."""
    try:
        stats = getattr(obj, "stats", None)
        if isinstance(stats, Mapping):
            return dict(stats)
        if stats is not None and attrs.has(type(stats)):
            return attrs.asdict(
                stats,
                recurse=True,
                value_serializer=lambda _, __, v: dict(v) if isinstance(v, Mapping) else v,
            )
    except Exception:
        return None
    return None


def _by_name(objects: Sequence[Any]) -> tuple[Any, ...]:
    """Later objects replace earlier ones of the same name."""
    chosen: dict[str, Any] = {}
    for obj in objects:
        chosen.pop(obj.name, None)
        chosen[obj.name] = obj
    return tuple(chosen.values())
