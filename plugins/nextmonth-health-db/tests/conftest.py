"""A real PostgreSQL (required: these tests fail, never skip, without one) and SQLite files."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES = os.environ.get("NEXTMONTH_HEALTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        with psycopg.connect(POSTGRES, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"these tests need a PostgreSQL at {POSTGRES} (set NEXTMONTH_HEALTH_TEST_POSTGRES): {exc}")
    return POSTGRES


@pytest.fixture
def pg_delay(pg_dsn: str) -> Iterator[tuple[str, Callable[[float], None]]]:
    """A probe query whose delay the test can change: ``(query, set_delay)``."""
    table = f"nmh_delay_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (seconds float NOT NULL)")
        conn.execute(f"INSERT INTO {table} VALUES (0)")

    def set_delay(seconds: float) -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"UPDATE {table} SET seconds = %s", (seconds,))

    try:
        yield f"SELECT pg_sleep((SELECT seconds FROM {table}))", set_delay
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE bookings (id INTEGER PRIMARY KEY, who TEXT)")
        conn.executemany("INSERT INTO bookings (who) VALUES (?)", [(f"u-{n}",) for n in range(100)])
    conn.close()
    return path
