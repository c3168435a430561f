"""Timing one cheap query, bounded by a deadline that also stops the query on the server.

Every probe returns a :class:`Sample` within ``timeout`` seconds, whatever the database
does: a query still running at the deadline is cancelled on the server (PostgreSQL's
cancel request; SQLite's progress handler), recorded as a slow sample of ``timeout``
seconds, and the connection is closed. A probe that fails (cannot connect, bad query)
is a failed sample. Cancellation from outside (the runner's own timeout, shutdown)
always propagates.

PostgreSQL goes through ``psycopg.AsyncConnection`` when the loop is asyncio, which is
all psycopg's async API supports; under trio the same steps run on a worker thread with
a plain ``psycopg.Connection``. SQLite always runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from attrs import frozen
from nextmonth_health.plugin import get_logger

from ._config import Probe

__all__ = ["APPLICATION_NAME", "Sample", "run_probe"]

log = get_logger(__name__)

#: How probe sessions show in ``pg_stat_activity``.
APPLICATION_NAME = "nextmonth-health-db"


@frozen
class Sample:
    """One probe: the query's seconds, and whether it failed or ran out of time."""

    seconds: float
    failed: bool = False
    timed_out: bool = False
    outcome: str = "ok"
    connect_seconds: float | None = None


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def run_probe(probe: Probe, timeout: float) -> Sample:
    """Time ``probe.query`` once; never takes (much) longer than ``timeout``."""
    if probe.kind == "sqlite":
        return await _sqlite(probe, timeout)
    if _on_asyncio():
        return await _postgres_async(probe, timeout)
    return await _postgres_thread(probe, timeout)


def _connect_timeout(timeout: float) -> int:
    return max(2, math.ceil(timeout))  # libpq's unit is whole seconds, 2 at least


async def _postgres_async(probe: Probe, timeout: float) -> Sample:
    import psycopg

    started = time.perf_counter()
    conn = None
    with anyio.move_on_after(timeout):
        try:
            conn = await psycopg.AsyncConnection.connect(
                probe.dsn,
                autocommit=True,
                application_name=APPLICATION_NAME,
                connect_timeout=_connect_timeout(timeout),
            )
        except psycopg.Error as exc:
            return Sample(time.perf_counter() - started, failed=True, outcome=type(exc).__name__)
    if conn is None:
        return Sample(timeout, timed_out=True, outcome="connect timeout")
    connected = time.perf_counter()
    timed_out = False

    async def watchdog() -> None:
        nonlocal timed_out
        await anyio.sleep(max(0.0, started + timeout - time.perf_counter()))
        timed_out = True
        await conn.cancel_safe(timeout=2.0)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watchdog)
            try:
                cursor = await conn.execute(probe.query)
                if cursor.description is not None:
                    await cursor.fetchall()
                seconds = time.perf_counter() - connected
                sample = Sample(seconds, connect_seconds=connected - started)
            except psycopg.Error as exc:
                sample = Sample(time.perf_counter() - connected, failed=True, outcome=type(exc).__name__)
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
            await conn.close()
    if timed_out:
        return Sample(timeout, timed_out=True, outcome="timeout", connect_seconds=connected - started)
    return sample


def _postgres_blocking(probe: Probe, timeout: float, holder: dict[str, Any]) -> Sample:
    import psycopg

    started = time.perf_counter()
    try:
        conn = psycopg.connect(
            probe.dsn,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=_connect_timeout(timeout),
        )
    except psycopg.Error as exc:
        return Sample(time.perf_counter() - started, failed=True, outcome=type(exc).__name__)
    with conn:
        holder["conn"] = conn
        if holder.get("abandoned"):
            return Sample(timeout, timed_out=True, outcome="timeout")
        connected = time.perf_counter()
        try:
            cursor = conn.execute(probe.query)
            if cursor.description is not None:
                cursor.fetchall()
        except psycopg.Error as exc:
            return Sample(time.perf_counter() - connected, failed=True, outcome=type(exc).__name__)
        return Sample(time.perf_counter() - connected, connect_seconds=connected - started)


async def _postgres_thread(probe: Probe, timeout: float) -> Sample:
    holder: dict[str, Any] = {}
    with anyio.move_on_after(timeout):
        return await anyio.to_thread.run_sync(_postgres_blocking, probe, timeout, holder, abandon_on_cancel=True)
    holder["abandoned"] = True
    conn = holder.get("conn")
    if conn is not None:
        # The worker thread is still in the query: stop it on the server, so the thread ends too.
        with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
            await anyio.to_thread.run_sync(_cancel_quietly, conn, abandon_on_cancel=True)
    return Sample(timeout, timed_out=True, outcome="timeout")


def _cancel_quietly(conn: Any) -> None:
    import psycopg

    try:
        conn.cancel_safe(timeout=2.0)
    except (psycopg.Error, OSError) as exc:  # it finished or closed meanwhile: nothing left to stop
        log.debug("nextmonth_health_db.cancel_failed", error=f"{type(exc).__name__}: {exc}")


def _sqlite_blocking(path: str, query: str, timeout: float) -> Sample:
    started = time.perf_counter()
    deadline = started + timeout
    timed_out = threading.Event()

    def past_deadline() -> int:
        if time.perf_counter() > deadline:
            timed_out.set()
            return 1
        return 0

    try:
        # Read-only: a probe never creates the file or takes a write lock.
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    except sqlite3.Error as exc:
        return Sample(time.perf_counter() - started, failed=True, outcome=type(exc).__name__)
    try:
        conn.set_progress_handler(past_deadline, 1000)
        connected = time.perf_counter()
        try:
            conn.execute(query).fetchall()
        except sqlite3.OperationalError as exc:
            # Interrupted at the deadline, or waited out the busy timeout on a lock: slow, not broken.
            waited = time.perf_counter() - started >= 0.9 * timeout
            if timed_out.is_set() or ("locked" in str(exc) and waited):
                return Sample(timeout, timed_out=True, outcome="timeout")
            return Sample(time.perf_counter() - connected, failed=True, outcome=type(exc).__name__)
        except sqlite3.Error as exc:
            return Sample(time.perf_counter() - connected, failed=True, outcome=type(exc).__name__)
        return Sample(time.perf_counter() - connected, connect_seconds=connected - started)
    finally:
        conn.close()


async def _sqlite(probe: Probe, timeout: float) -> Sample:
    with anyio.move_on_after(timeout + 1.0):  # a backstop: the thread stops itself at timeout
        return await anyio.to_thread.run_sync(_sqlite_blocking, probe.dsn, probe.query, timeout, abandon_on_cancel=True)
    return Sample(timeout, timed_out=True, outcome="timeout")
