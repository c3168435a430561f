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
import threading
import types
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

import anyio
from attrs import field, frozen

from ..clock import SystemClock
from ..errors import StaleLease
from ..logs import get_logger
from ..signals import SIGNALS
from ..store.base import FIVE_MINUTE_RETENTION, SiteSums, Store, site_lease
from ..tell.quiet import NONE, Quiet
from ..values import Incident, Reading, Transition, TransitionKind, timestamp
from .cache import BucketCache, Span
from .windows import BASELINE_ROLLUP, SiteView

if TYPE_CHECKING:
    from datetime import datetime

    from ..clock import Clock
    from ..errors import ErrorReporter
    from ..forking import ForkGate
    from ..record.recorder import Recorder
    from ..settings import Settings
    from ..tell.sinks import AlertSink, Delivery
    from .checks import Check
    from .incidents import IncidentTracker

__all__ = ["CheckFailure", "Evaluation", "Evaluator"]

log = get_logger(__name__)

T = TypeVar("T")

_TRIM_EVERY = 60.0

#: A clock further off than this from the store's (or the others') is said in the log and
#: in ``status().clock_skew``. With Redis the process follows the store's clock; with
#: SQLite (one host) windows absorb a minute of it (``AHEAD_SECONDS``), not more.
SKEW_SECONDS = 5.0
#: Closer than this to the store's clock, a process keeps its own (a round trip's worth).
CLOCK_TOLERANCE = 0.5


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


class _SitePass:
    """One site's share of a pass, filled in as it goes."""

    __slots__ = (
        "failures",
        "open_now",
        "pending",
        "ran",
        "readings",
        "site",
        "token",
        "transitions",
    )

    def __init__(self, site: str, open_now: list[Incident], token: int) -> None:
        self.site = site
        self.open_now = open_now
        #: The site lease's fencing token this pass took.
        self.token = token
        self.readings: list[Reading] = []
        self.ran: list[str] = []
        self.failures: list[CheckFailure] = []
        self.pending: list[tuple[Check, Any, float]] = []
        self.transitions: list[Transition] | None = None


class _BatchRead(NamedTuple):
    """What :meth:`Evaluator._read` got for a batch of sites: those this process leads."""

    sites: list[str]
    settings: dict[str, Settings]
    open_now: dict[str, list[Incident]]
    windows: dict[str, SiteSums]
    baselines: dict[str, SiteSums]
    recents: dict[str, SiteSums]
    #: Each led site's lease token: the fence of the pass's writes for it.
    tokens: dict[str, int]


#: What plain checks return: surely not awaitable (an ABC check per call is not free).
_PLAIN = frozenset({list, tuple, types.GeneratorType})

#: Sites read and judged per worker-thread hop: a few store calls each, whatever its size.
_BATCH = 200


class Evaluator:
    """Runs passes; holds per-check schedules and the lease identity.

    Given its collaborators, not the monitor that wires them (the monitor is the facade a
    host holds): what a pass reads and writes can be followed from these arguments.
    """

    def __init__(
        self,
        *,
        store: Store,
        recorder: Recorder,
        tracker: IncidentTracker,
        delivery: Delivery,
        sinks: Sequence[AlertSink],
        checks: Sequence[Check],
        clock: Clock,
        settings: Settings,
        settings_for: Callable[[str], Settings],
        sites: frozenset[str],
        errors: ErrorReporter,
        fork_gate: ForkGate,
        refresh: Callable[[], None],
        signals: Sequence[str] = SIGNALS,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.tracker = tracker
        self.delivery = delivery
        self.sinks = sinks
        self.checks = checks
        self.clock = clock
        self.settings = settings
        self.settings_for = settings_for
        #: The sites the host configured: evaluated even before they record anything.
        self.sites = sites
        self.errors = errors
        self.fork_gate = fork_gate
        #: Refreshes the notices people see, after each pass and flush.
        self.refresh = refresh
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._last_run: dict[tuple[str, str], float] = {}
        self._last_trim = float("-inf")
        self._store_down = False
        #: Each site's maintenance windows and silences, read once a pass.
        self._quiet: dict[str, Quiet] = {}
        self.last_evaluation: float | None = None
        #: Sites whose checks judged on fixed lines at their last pass here: still learning
        #: what normal looks like (a reading's ``detail["learning"]``).
        self.learning: frozenset[str] = frozenset()
        #: Seconds this process's clock is behind (positive) or ahead of the store's (or of
        #: the newest counts other processes wrote), once more than ``SKEW_SECONDS``.
        self.clock_skew: float | None = None
        #: Seconds added to this process's clock to follow the store's (see follow_store_clock).
        self.offset = 0.0
        self._passing = threading.Lock()
        self._store_has_time = type(store).time is not Store.time
        # A store doing I/O is read through caches; memory:// answers from its running sums.
        # Both read the monitor's signals: the built-in ones and any plugin declared.
        self._windows: _Reader = (
            BucketCache(store, signals=signals) if store.blocking else _Direct(store, signals=signals)
        )
        self._baselines: _Reader = (
            BucketCache(store, BASELINE_ROLLUP, signals=signals)
            if store.blocking
            else _Direct(store, BASELINE_ROLLUP, signals=signals)
        )

    async def store_call(self, func: Callable[..., T], *args: Any) -> T:
        if self.store.blocking:
            return await anyio.to_thread.run_sync(func, *args)
        return func(*args)

    async def evaluate(self) -> Evaluation:
        # One pass at a time, even if a host awaits evaluate() while the loop runs one: the
        # caches (and the views made from them) are not for two passes at once. A thread
        # waits for the lock, not the event loop; the host's pass may run on another loop.
        # The wait is not abandoned on cancellation (anyio's default): a cancelled caller
        # gets the lock first, so the finally below gives it back.
        if not self._passing.acquire(blocking=False):
            await anyio.to_thread.run_sync(self._passing.acquire)
        try:
            return await self._evaluate()
        finally:
            self._passing.release()

    async def _evaluate(self) -> Evaluation:
        await self.store_call(self.recorder.flush)
        own = self.clock.now()
        now = own + self.offset  # on the store's clock, where it keeps one
        try:
            stored = await self.store_call(self.store.sites)
        except Exception as exc:
            self.errors.report("store.sites", exc)
            self.last_evaluation = own
            return Evaluation(at=timestamp(now), sites=(), readings=())
        sites = sorted(stored | self.sites)
        try:
            self._quiet = await self.store_call(self._read_quiet, now)
        except Exception as exc:
            self.errors.report("store.quiet", exc)  # the last ones read still hold
        led: list[str] = []
        readings: list[Reading] = []
        transitions: list[Transition] = []
        failures: list[CheckFailure] = []
        self._store_down = False
        batches = [sites[i : i + _BATCH] for i in range(0, len(sites), _BATCH)]
        reads: list[_BatchRead | None] = [None] * len(batches)
        ready = [anyio.Event() for _ in batches]

        async def read_ahead() -> None:
            # The next batch is read while this one is judged: a store's work (Redis
            # answering, SQLite searching) overlaps with the checks' CPU. One reader: a
            # second measured no faster on Redis (its server is the limit), slower on SQLite.
            for i, batch in enumerate(batches):
                if not self._store_down:
                    reads[i] = await self.store_call(self._read, batch, now)
                ready[i].set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_ahead)
            for i in range(len(batches)):
                await ready[i].wait()
                read = reads[i]
                if read is None:
                    break  # the store failed: the rest of the pass waits for the next one
                reads[i] = None
                for outcome in await self.store_call(self._judge, read, now):
                    led.append(outcome.site)
                    if outcome.pending:
                        await self._await_checks(outcome)
                        outcome.transitions = await self.store_call(self._apply, outcome, now)
                    readings += outcome.readings
                    failures += outcome.failures
                    transitions += outcome.transitions or ()
        self.learning = (self.learning - set(led)) | {r.site for r in readings if r.detail.get("learning")}
        if led:
            try:
                await self.store_call(self.store.note_evaluations, led, now)
            except Exception as exc:
                self.errors.report("store.note_evaluations", exc)
        told = []
        for transition in transitions:
            if transition.muted is None:
                told.append(transition)
            else:
                log.info(
                    "nextmonth_health.transition_muted",
                    site=transition.incident.site,
                    incident_id=transition.incident.id,
                    kind=transition.kind.value,
                    reason=transition.muted,
                )
        await self.delivery.deliver(self.sinks, told, now)
        if now - self._last_trim >= _TRIM_EVERY:
            self._last_trim = now
            try:
                await self.store_call(self._trim, now)
            except Exception as exc:
                self.errors.report("store.trim", exc)
            await self.follow_store_clock()
        self.last_evaluation = own
        await self.store_call(self.refresh)
        return Evaluation(
            at=timestamp(now),
            sites=tuple(led),
            readings=tuple(readings),
            transitions=tuple(transitions),
            failures=tuple(failures),
        )

    async def follow_store_clock(self) -> None:
        """Put this process on the store's clock, where it has one (Redis's ``TIME``): the
        recorder's buckets and the evaluator's now both move by the difference, so every
        host's counts land in the same buckets whatever its own clock says. Asked when the
        monitor starts running and once a minute. A fake clock is off on purpose: left be.
        """
        if not self._store_has_time or not isinstance(self.clock, SystemClock):
            return
        try:
            store_time = await self.store_call(self.store.time)
        except Exception as exc:
            self.errors.report("store.time", exc)
            return
        if store_time is None:
            return
        offset = store_time - self.clock.now()
        self.offset = self.recorder.offset = offset if abs(offset) > CLOCK_TOLERANCE else 0.0
        self._note_skew(offset, "the store's clock (followed)")

    def _note_skew(self, behind: float, reference: str) -> None:
        """Remember how far this process's clock is off, and say so once per episode."""
        if abs(behind) <= SKEW_SECONDS:
            self.clock_skew = None
            return
        if self.clock_skew is None:
            log.warning(
                "nextmonth_health.clock_skew",
                seconds=round(behind, 1),
                reference=reference,
                owner=self.owner,
                reason="this process's clock is behind" if behind > 0 else "this process's clock is ahead",
            )
        self.clock_skew = behind

    def _trim(self, now: float) -> None:
        s = self.settings
        self.store.trim(
            buckets_before=now - s.history_seconds,
            hourly_before=now - s.trend_retention,
            resolved_before=timestamp(now - s.resolved_retention),
            five_minute_before=now - max(s.history_seconds, FIVE_MINUTE_RETENTION),
        )

    def _read_quiet(self, now: float) -> dict[str, Quiet]:
        store = self.store
        return Quiet.by_site(store.maintenance_windows(), store.silences(), timestamp(now))

    def _read(self, sites: list[str], now: float) -> _BatchRead | None:
        """What a batch of sites' pass needs from the store, in a few calls: the leases,
        the open incidents, and the windows and baselines (through the caches, which re-read
        only what can still have changed). Sites another process leads are left out.

        Runs in a worker thread when the store blocks, so its I/O never stalls the event
        loop. ``None`` when the store failed (reported; the rest of the pass is skipped).
        """
        try:
            taken = self.store.acquire_leases(
                [site_lease(site) for site in sites], self.owner, self.settings.lease, now
            )
            tokens = {site: int(token) for site, token in zip(sites, taken, strict=True) if token}
            mine = [site for site in sites if site in tokens]
            lost = [site for site in sites if site not in tokens]
            self._windows.forget(lost)  # read whole when this process leads them again
            self._baselines.forget(lost)
            if not mine:
                return _BatchRead([], {}, {}, {}, {}, {}, {})
            open_now = self.store.open_incidents(mine)
        except Exception as exc:
            self.errors.report("store.lease", exc)
            self._store_down = True  # one timeout per pass, not one per site
            return None
        settings = {site: self.settings_for(site) for site in mine}
        spans = {site: SiteView.spans(now, settings[site]) for site in mine}
        try:
            marks = self.store.write_marks(mine) if self.store.blocking else None
            if marks and not self._store_has_time:
                # With no clock of the store's, the others' counts tell a clock behind theirs
                # (a bucket starts up to one width before its writer's now).
                ahead = max(start for start, _ in marks.values()) - now
                self._note_skew(
                    ahead if ahead > SKEW_SECONDS + 10 else 0.0,
                    "the newest counts other processes wrote",
                )
            windows = self._windows.get({s: (*spans[s].window, settings[s].bucket_seconds) for s in mine}, now, marks)
            recents = self._windows.recent({s: (*spans[s].recent, settings[s].bucket_seconds) for s in mine})
            baselines = self._baselines.get({s: (*spans[s].baseline, BASELINE_ROLLUP) for s in mine}, now, marks)
        except Exception as exc:
            self.errors.report("store.read", exc)
            self._store_down = True
            return None
        return _BatchRead(mine, settings, open_now, windows, baselines, recents, tokens)

    def _judge(self, read: _BatchRead, now: float) -> list[_SitePass]:
        """Run each site's plain checks on what was read and fold their readings into
        incidents. Async checks are handed back to be awaited on the loop under their
        timeouts, and those sites' readings folded into incidents afterwards."""
        store = self.store
        outcomes = []
        for site in read.sites:
            outcome = _SitePass(site, read.open_now.get(site, []), read.tokens[site])
            view = SiteView(
                site,
                now,
                read.settings[site],
                store,
                {(i.check, i.key): i for i in outcome.open_now},
                window=read.windows[site],
                baseline=read.baselines[site],
                recent=read.recents.get(site),
            )
            self._run_checks(outcome, view, now)
            if not outcome.pending:
                outcome.transitions = self._apply(outcome, now)
            outcomes.append(outcome)
        return outcomes

    def _run_checks(self, outcome: _SitePass, view: SiteView, now: float) -> None:
        site = outcome.site
        for check in self.checks:
            interval = getattr(check, "interval", None)
            if interval:  # most checks run every pass: nothing to look up or remember
                last = self._last_run.get((site, check.name))
                if last is not None and now - last < interval:
                    continue
                self._last_run[(site, check.name)] = now
            try:
                result = check.evaluate(view)
                if type(result) not in _PLAIN and inspect.isawaitable(result):
                    timeout = getattr(check, "timeout", None) or view.settings.check_timeout
                    outcome.pending.append((check, result, timeout))
                    continue
                # Not awaitable (answered above); the fast type test keeps mypy from narrowing.
                outcome.readings += _own(check, site, cast("Iterable[Reading] | None", result))
                outcome.ran.append(check.name)
            except Exception as exc:
                self._failed(site, check, exc, outcome.failures)

    def _apply(self, outcome: _SitePass, now: float) -> list[Transition]:
        site = outcome.site
        quiet = self._quiet.get(site, NONE)
        settings = self.settings_for(site)
        try:
            transitions = self.tracker.apply(
                site,
                outcome.readings,
                now,
                settings,
                checks_run=outcome.ran,
                open_now=outcome.open_now,
                fence=(site_lease(site), outcome.token),
                quiet=quiet,
            )
            current = {i.id: i for i in outcome.open_now}
            current.update((t.incident.id, t.incident) for t in transitions)
            return transitions + self.tracker.remind(site, current.values(), now, settings, quiet=quiet)
        except StaleLease:
            # Paused past the lease (a slow probe, a frozen VM): another process leads the
            # site now and has judged it since. This pass ends for the site without effect.
            log.warning("nextmonth_health.stale_pass", site=site, token=outcome.token, owner=self.owner)
            self._windows.forget([site])
            self._baselines.forget([site])
            return []
        except Exception as exc:
            self.errors.report("incidents.apply", exc)
            return []

    def _failed(self, site: str, check: Check, exc: BaseException, failures: list[CheckFailure]) -> None:
        self.errors.report(f"check.{check.name}", exc)
        failures.append(CheckFailure(site, check.name, f"{type(exc).__name__}: {exc}"))

    async def _await_checks(self, outcome: _SitePass) -> None:
        """Await a site's async checks concurrently, each under its own timeout."""
        site, readings, ran, failures = (
            outcome.site,
            outcome.readings,
            outcome.ran,
            outcome.failures,
        )

        async def wait(check: Check, awaitable: Any, timeout: float) -> None:
            try:
                with anyio.fail_after(timeout):
                    result = await awaitable
                readings.extend(_own(check, site, result))
                ran.append(check.name)
            except Exception as exc:
                self._failed(site, check, exc, failures)

        async with anyio.create_task_group() as tg:
            for check, awaitable, timeout in outcome.pending:
                tg.start_soon(wait, check, awaitable, timeout)

    async def flush_forever(self) -> None:
        while True:
            await self.clock.sleep(self.settings.flush_seconds)
            try:
                async with self.fork_gate.unit():
                    await self.store_call(self.recorder.flush)
                    await self.store_call(self.refresh)
            except Exception as exc:
                self.errors.report("recorder.flush", exc)

    async def run_forever(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.flush_forever)
            while True:
                try:
                    async with self.fork_gate.unit():
                        await self.evaluate()
                except Exception as exc:
                    self.errors.report("runner.evaluate", exc)
                await self.clock.sleep(self.settings.tick_seconds)


class _Direct:
    """Reads straight from a store that keeps everything in memory (no cache to gain)."""

    def __init__(self, store: Store, width: int | None = None, *, signals: Sequence[str] = SIGNALS) -> None:
        self.store = store
        self.width = width
        #: Nothing without plugin signals: a store written before them is called as it was.
        self._which: dict[str, Any] = {} if tuple(signals) == SIGNALS else {"signals": tuple(signals)}

    def get(
        self,
        spans: Mapping[str, Span],
        now: float,
        marks: Mapping[str, tuple[int, int]] | None = None,
    ) -> dict[str, SiteSums]:
        groups: dict[tuple[float, float], list[str]] = {}
        for site, (start, end, _) in spans.items():
            groups.setdefault((start, end), []).append(site)
        found: dict[str, SiteSums] = {}
        for (start, end), sites in groups.items():
            found.update(self.store.sums(sites, start, end, width=self.width, **self._which))
        return found

    def recent(self, spans: Mapping[str, Span]) -> dict[str, SiteSums]:
        return self.get(spans, 0.0)

    def forget(self, sites: list[str] | None = None) -> None:
        pass


_Reader = BucketCache | _Direct


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
