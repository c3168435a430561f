"""A bounded outbox with a worker thread of its own: the push-sink skeleton, SMTP-free.

``put`` takes a lock, appends and returns; a daemon thread delivers jobs one at a time
and retries failures with exponential backoff and jitter on the monitor's clock, up to a
number of attempts; what cannot be delivered is counted by reason. Jobs of one *group*
(one alert: its email, then its resolution) go out in order, while a job waiting to
retry does not hold up the other groups' — one client site's dead mail server does not
delay another site's alert.

Nothing here knows about email; it is what every push sink needs (the webhook
distribution has its own copy of the same ideas). It belongs in the core's plugin kit,
once there is one, for every sink to share.
"""

from __future__ import annotations

import atexit
import os
import random
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import nextmonth_health as nmh
from attrs import define, field, frozen
from nextmonth_health.plugin import get_logger

__all__ = ["Failed", "Outbox", "OutboxCounts", "RetryPolicy"]

log = get_logger(__name__)

#: Keys remembered for deduplication: far more than the jobs one process sees between restarts.
_REMEMBER = 10_000

#: How often a worker on a clock other than the system's looks at it again while waiting.
_POLL = 0.02


class Failed(Exception):
    """One delivery attempt failed.

    :param reason: what went wrong, short and stable (``"timeout"``, ``"mail 550"``): the
        stats' ``last_error``.
    :param drop_as: the reason counted if this was the last attempt.
    :param retry: False drops the job now, whatever attempts are left.
    """

    def __init__(self, reason: str, detail: str = "", *, drop_as: str = "gave_up", retry: bool = True) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.drop_as = drop_as
        self.retry = retry


@frozen
class RetryPolicy:
    max_attempts: int
    backoff: float
    max_backoff: float


@frozen
class OutboxCounts:
    """What the outbox has done since it was built."""

    queued: int
    delivered: int
    attempts: int
    retries: int
    duplicates: int
    dropped: Mapping[str, int]
    last_error: str | None
    #: When the earliest retry falls due, on the outbox's clock (Unix seconds), or None.
    next_retry_at: float | None


@define(eq=False)
class _Job:
    key: str
    group: str
    payload: Any
    policy: RetryPolicy
    context: Mapping[str, Any]
    attempts: int = 0
    due: float = 0.0
    busy: bool = False


@define(eq=False)
class _State:
    """Everything a fork must not inherit: the child starts with a fresh one."""

    lock: threading.Lock = field(factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    jobs: list[_Job] = field(factory=list)
    seen: OrderedDict[str, None] = field(factory=OrderedDict)
    stop: threading.Event = field(factory=threading.Event)
    closed: bool = False
    thread: threading.Thread | None = None
    delivered: int = 0
    attempts: int = 0
    retries: int = 0
    duplicates: int = 0
    dropped: Counter[str] = field(factory=Counter)
    last_error: str | None = None

    def __attrs_post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class Outbox:
    """Jobs in, deliveries out, on a thread of its own.

    :param name: the worker thread's name and the log events' prefix (``<name>.dropped``).
    :param capacity: jobs held at once (waiting, retrying or in flight); more are dropped
        and counted as ``queue_full``.
    :param deliver: called on the worker thread with a job's payload; returns on success,
        raises :class:`Failed` (or anything else: a bug, dropped as ``error``) otherwise.
    :param clock: retry delays are measured on it; with a fake clock, a retry waits until
        the test advances it.
    :param interrupt: called (from the closing thread) when :meth:`close` gives up
        waiting, to cut short a delivery blocked on the network.
    """

    def __init__(
        self,
        name: str,
        capacity: int,
        deliver: Callable[[Any], None],
        *,
        clock: nmh.Clock | None = None,
        rng: random.Random | None = None,
        interrupt: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._event = name.replace("-", "_")
        self.capacity = capacity
        self._deliver = deliver
        self._clock = clock if clock is not None else nmh.SystemClock()
        self._real_time = isinstance(self._clock, nmh.SystemClock)
        self._rng = rng or random.Random()
        self._interrupt = interrupt
        self._state = _State()
        _LIVE.add(self)

    def after_fork_in_child(self) -> None:
        """The parent's lock, jobs and thread are not ours: start clean (a job is the parent's to send)."""
        self._state = _State()

    # The producer's side: quick, never waiting on the network.

    def put(
        self, key: str, group: str, payload: Any, policy: RetryPolicy, context: Mapping[str, Any] | None = None
    ) -> str:
        """Queue a job; returns ``"queued"``, ``"duplicate"`` (a key seen before), ``"full"`` or ``"closed"``."""
        s = self._state
        with s.lock:
            if key in s.seen:
                s.duplicates += 1
                return "duplicate"
            if s.closed:
                s.dropped["shutdown"] += 1
                outcome = "closed"
            elif len(s.jobs) >= self.capacity:
                s.dropped["queue_full"] += 1
                outcome = "full"
            else:
                s.seen[key] = None
                if len(s.seen) > _REMEMBER:
                    s.seen.popitem(last=False)
                s.jobs.append(_Job(key, group, payload, policy, dict(context or {}), due=self._clock.now()))
                s.changed.notify_all()
                if s.thread is None:
                    s.thread = threading.Thread(target=self._run, args=(s,), name=self.name, daemon=True)
                    s.thread.start()
                return "queued"
        reason = "queue_full" if outcome == "full" else "shutdown"
        log.warning(f"{self._event}.dropped", reason=reason, **dict(context or {}))
        return outcome

    def counts(self) -> OutboxCounts:
        s = self._state
        with s.lock:
            return OutboxCounts(
                queued=len(s.jobs),
                delivered=s.delivered,
                attempts=s.attempts,
                retries=s.retries,
                duplicates=s.duplicates,
                dropped=dict(s.dropped),
                last_error=s.last_error,
                next_retry_at=min((j.due for j in s.jobs if j.attempts and not j.busy), default=None),
            )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every job is delivered or dropped; False if ``timeout`` ran out first."""
        s = self._state
        with s.lock:
            return s.changed.wait_for(lambda: not s.jobs, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Give the jobs up to ``timeout`` seconds, then stop the worker (idempotent).

        It stops waiting early when nothing left can go out in time (every job waits for
        a retry due later). A delivery still blocked on the network is interrupted;
        whatever is left is counted as dropped (``shutdown``), as is anything put
        afterwards.
        """
        s = self._state
        deadline = self._clock.now() + timeout

        def settled() -> bool:
            if any(job.busy for job in s.jobs):
                return False
            due, wake = self._next(s, self._clock.now())
            return due is None and (wake is None or wake > deadline)

        with s.lock:
            s.changed.wait_for(settled, timeout)
            s.closed = True
            s.stop.set()
            s.changed.notify_all()
            thread, busy = s.thread, any(job.busy for job in s.jobs)
        if busy and self._interrupt is not None:
            self._interrupt()
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)

    # The worker's side.

    def _next(self, s: _State, now: float) -> tuple[_Job | None, float | None]:
        """The first job that is due and first of its group, or when the next one falls due."""
        groups: set[str] = set()
        wake: float | None = None
        for job in s.jobs:
            if job.group in groups:
                continue
            groups.add(job.group)
            if job.due <= now:
                return job, None
            wake = job.due if wake is None else min(wake, job.due)
        return None, wake

    def _take(self, s: _State) -> _Job | None:
        with s.lock:
            while True:
                if s.stop.is_set():
                    if s.jobs:
                        s.dropped["shutdown"] += len(s.jobs)
                        for job in s.jobs:
                            self._log_drop("shutdown", job, "the sink closed")
                        s.jobs.clear()
                        s.changed.notify_all()
                    return None
                now = self._clock.now()
                due, wake = self._next(s, now)
                if due is not None:
                    due.busy = True
                    return due
                wait = None if wake is None else wake - now
                if wait is not None and not self._real_time:
                    wait = min(wait, _POLL)
                s.changed.wait(wait)

    def _run(self, s: _State) -> None:
        while (job := self._take(s)) is not None:
            with s.lock:
                s.attempts += 1
                job.attempts += 1
            try:
                self._deliver(job.payload)
            except Failed as failure:
                self._failed(s, job, failure)
            except Exception as exc:  # the worker outlives anything one delivery does
                log.exception(f"{self._event}.error", **job.context)
                self._failed(s, job, Failed(type(exc).__name__, str(exc), drop_as="error", retry=False))
            else:
                with s.lock:
                    s.delivered += 1
                    s.jobs.remove(job)
                    s.changed.notify_all()

    def _failed(self, s: _State, job: _Job, failure: Failed) -> None:
        with s.lock:
            s.last_error = failure.reason
            job.busy = False
            if s.stop.is_set():
                drop_as = "shutdown"
            elif not failure.retry or job.attempts >= job.policy.max_attempts:
                drop_as = failure.drop_as
            else:
                s.retries += 1
                job.due = self._clock.now() + self.backoff(job.attempts, job.policy)
                s.changed.notify_all()
                return
            s.dropped[drop_as] += 1
            s.jobs.remove(job)
            s.changed.notify_all()
        self._log_drop(drop_as, job, str(failure))

    def backoff(self, attempt: int, policy: RetryPolicy) -> float:
        """Exponential, capped, with "equal jitter": between half and all of ``backoff × 2^(attempt-1)``."""
        step = min(policy.max_backoff, policy.backoff * 2.0 ** (attempt - 1))
        return step * self._rng.uniform(0.5, 1.0)

    def _log_drop(self, reason: str, job: _Job, detail: str) -> None:
        log.warning(f"{self._event}.dropped", reason=reason, detail=detail, attempts=job.attempts, **job.context)


_LIVE: weakref.WeakSet[Outbox] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for outbox in list(_LIVE):
        outbox.after_fork_in_child()


def _drain_at_exit() -> None:
    for outbox in list(_LIVE):
        thread = outbox._state.thread
        if thread is not None and thread.is_alive():
            outbox.close(timeout=2.0)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_drain_at_exit)
