"""Time for the SDK: wall time for bucketing, sleeping for the runner.

Buckets are keyed by wall-clock epoch seconds so that every process and host agrees on
bucket edges. Tests swap in :class:`nextmonth_health.testing.FakeClock`.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]


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
