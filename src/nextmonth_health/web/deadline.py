"""Admin requests off the host's request path, each under a deadline.

The admin view reads the store: on SQLite a locked file can make it wait, on Redis a hung
server makes every call wait for its socket timeout. Served on an event loop that wait
would stall every other request of the host (a hung Redis once took a host's ``GET /``
from 2 ms to a second while two admin requests were served). So the adaptors run each
admin request in a worker thread and stop waiting for it after ``seconds``: the caller
gets ``None`` and answers "the store is not answering"; the thread finishes on its own
when the store's call times out or fails.

The threads are the admin view's own (``workers`` at most), never the event loop's
default pool, which a host's own sync endpoints share: admin requests piling up behind a
hung store wait for one of these few, and give up at the same deadline.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import anyio
import anyio.to_thread

__all__ = ["Deadline"]

T = TypeVar("T")
A = TypeVar("A")


class Deadline:
    """Run a call in a worker thread; stop waiting for it after ``seconds``."""

    def __init__(self, seconds: float = 1.0, workers: int = 4) -> None:
        if not seconds > 0:
            raise ValueError(f"the deadline must be a positive number of seconds, got {seconds!r}")
        self.seconds = seconds
        self.workers = workers
        self._limiter = anyio.CapacityLimiter(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        me = weakref.ref(self)

        def after_in_child() -> None:
            if (d := me()) is not None:
                d._after_fork_in_child()

        os.register_at_fork(after_in_child=after_in_child)

    def _after_fork_in_child(self) -> None:
        # The parent's threads do not exist in a forked worker: start afresh.
        self._pool = None
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(self.workers)

    async def run_async(self, func: Callable[[A], T], arg: A) -> T | None:
        """``func(arg)`` in a worker thread, from an event loop; None after ``seconds``."""
        with anyio.move_on_after(self.seconds):
            return await anyio.to_thread.run_sync(func, arg, limiter=self._limiter, abandon_on_cancel=True)
        return None

    def run(self, func: Callable[[A], T], arg: A) -> T | None:
        """``func(arg)`` in a worker thread, from a thread that may block; None after ``seconds``."""
        future: Future[T] = self._executor().submit(func, arg)
        try:
            return future.result(timeout=self.seconds)
        except FutureTimeout:
            future.cancel()  # not started yet (every worker is stuck): never start it
            return None

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="nmh-admin")
            return self._pool
