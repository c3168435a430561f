"""Clocks: the FakeClock that drives every test, and SystemClock under freezegun."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest
from freezegun import freeze_time

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock

pytestmark = pytest.mark.anyio


async def test_sleepers_wake_when_time_reaches_them_in_order() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now() - START))

    async with anyio.create_task_group() as tg:
        tg.start_soon(nap, "long", 30)
        tg.start_soon(nap, "short", 10)
        await anyio.wait_all_tasks_blocked()
        assert clock.sleepers == 2
        clock.advance(9.5)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        clock.advance(0.5)
        await anyio.wait_all_tasks_blocked()
        assert woke == [("short", 10)]
        clock.set(START + 100)
        await anyio.wait_all_tasks_blocked()
    assert woke == [("short", 10), ("long", 100)]
    assert clock.sleepers == 0


async def test_zero_sleep_is_a_checkpoint() -> None:
    clock = FakeClock()
    await clock.sleep(0)
    assert clock.now() == START


def test_time_only_moves_forward() -> None:
    clock = FakeClock(100.0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(50.0)
    assert clock.now() == 100.0


def test_start_is_bucket_aligned_and_a_monday_morning() -> None:
    assert START % 3600 == 0
    assert datetime.fromtimestamp(START, UTC).strftime("%A %H:%M") == "Monday 09:00"


async def test_the_system_clock_follows_freezegun() -> None:
    with freeze_time("2026-03-02 10:00:00", tick=False) as frozen:
        m = nmh.Monitor("frozen", load_entrypoints=False)
        for user in range(20):
            m.record_upload(False, user=f"u{user}")
        frozen.tick(10)
        result = await m.evaluate()
        [opened] = result.opened
        assert opened.incident.opened_at == datetime(2026, 3, 2, 10, 0, 10, tzinfo=UTC)
        frozen.tick(86_400 * 2)
        assert m.incidents()[0].id == opened.incident.id
