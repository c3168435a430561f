"""Time for the SDK: wall time for bucketing, sleeping for the runner.

Buckets are keyed by wall-clock epoch seconds so that every process and host agrees on
bucket edges. :class:`FakeClock` moves only when told to: tests use it (through
:mod:`nextmonth_health.testing`), and so do ``demo``, ``replay`` and ``selfcheck``, which
play minutes of traffic in a moment.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["START", "Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Wall time in Unix seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    """The real clock. ``now`` reads ``time.time`` at call time, so freezegun can steer it."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


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
