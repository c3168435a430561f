"""Forking while a started monitor works in its background thread.

A forked child has only the thread that called ``fork()``. Whatever lock another thread
held at that instant stays held in the child, for ever: an import lock (a first
``import email`` deep inside a Redis client), a log writer's lock, a connection pool's.
A pre-fork server that forks while the monitor's thread is in the middle of a flush or a
pass would give that worker a monitor that hangs the first time it needs the same lock.

So the monitor's background work runs in units (a flush, a pass, the start-up question
to the store), and a fork from any other thread waits for the units under way to end and
keeps new ones from starting until it is done (see :class:`ForkGate`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

__all__ = ["ForkGate"]

#: How long a fork waits for the monitor's current work before it goes ahead regardless.
FORK_WAIT_SECONDS = 10.0
#: How often a unit that found a fork under way looks again.
_RETRY_SECONDS = 0.005


class ForkGate:
    """Counts the units of background work under way; a fork waits for none to be.

    Only a fork from a thread other than the monitor's loop thread waits: the loop thread
    itself cannot finish a unit while it is blocked in ``fork()``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = 0
        self._forking = False
        #: Times a unit found a fork under way and waited.
        self.held_back = 0
        #: The thread that runs the units (the monitor's event loop), once one has run.
        self.loop_thread: int | None = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        """One unit of background work; waits (without blocking the loop) while a fork is under way."""
        self.loop_thread = threading.get_ident()
        while not self._enter():
            self.held_back += 1
            await anyio.sleep(_RETRY_SECONDS)
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                if not self._busy:
                    self._cond.notify_all()

    def _enter(self) -> bool:
        with self._cond:
            if self._forking:
                return False
            self._busy += 1
            return True

    @property
    def busy(self) -> int:
        """Units under way."""
        return self._busy

    def before_fork(self, timeout: float = FORK_WAIT_SECONDS) -> bool:
        """Hold new units back and wait for the ones under way; False if they outlasted ``timeout``."""
        if threading.get_ident() == self.loop_thread:
            return self._busy == 0
        with self._cond:
            self._forking = True
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    def after_fork_in_parent(self) -> None:
        with self._cond:
            self._forking = False
            self._cond.notify_all()
