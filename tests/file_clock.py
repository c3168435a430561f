"""A fake clock that several processes share: the time is a number in a file the test writes.

``FakeClock`` moves one process's time; a real server with worker processes needs every
worker on the same time, so that their events fall in the same buckets and the leader's
passes see them. The test moves time with :func:`set_time`; ``sleep`` waits (in short real
naps) until the file says its deadline has come.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

__all__ = ["FileClock", "set_time"]

_NAP = 0.005


def set_time(path: Path | str, seconds: float) -> None:
    """Move the shared time (atomically: a reader never sees half a number)."""
    path = Path(path)
    scratch = path.with_name(path.name + f".{os.getpid()}.tmp")
    scratch.write_text(repr(float(seconds)), encoding="ascii")
    os.replace(scratch, path)


class FileClock:
    """A :class:`~nextmonth_health.clock.Clock` reading the time from ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def now(self) -> float:
        return float(self.path.read_text(encoding="ascii"))

    async def sleep(self, seconds: float) -> None:
        deadline = self.now() + seconds
        while self.now() < deadline:
            await anyio.sleep(_NAP)
