"""Warm-up: a site with no history judges only on fixed lines, says so, and a restart on a
persistent store is not a cold start."""

from __future__ import annotations

from pathlib import Path

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

pytestmark = pytest.mark.anyio

PEOPLE = [f"p{n}" for n in range(60)]


def minute_of_sign_ins(m: nmh.Monitor, minute: int) -> None:
    """A minute of a site where 8 % of sign-ins are mistyped passwords, the ordinary rate."""
    for n, person in enumerate(PEOPLE):
        m.record_request("/portal", 200, 0.1, user=person)
        m.record_login((n + minute) % 12 != 0, user=person)


async def play(m: nmh.Monitor, clock: FakeClock, minutes: int, start: int = 0) -> list[nmh.Evaluation]:
    passes = []
    for minute in range(start, start + minutes):
        for _ in range(4):
            minute_of_sign_ins(m, minute)  # spread over the minute, a quarter at a time
            clock.advance(15)
            passes.append(await m.evaluate())
    return passes


async def test_a_cold_start_with_ordinary_failed_sign_ins_opens_nothing_and_says_it_is_learning(
    monitor: nmh.Monitor, fake_clock: FakeClock
) -> None:
    passes = await play(monitor, fake_clock, 10)
    assert [t for p in passes for t in p.transitions] == [], "an empty hour is not a reason to alarm"
    assert monitor.learning()
    assert monitor.status().learning == ("test-site",)
    assert any(r.detail.get("learning") for r in passes[-1].readings if r.check == "session_failures")
    passes = await play(monitor, fake_clock, 50, start=10)
    assert [t for p in passes for t in p.transitions] == []
    assert not monitor.learning() and monitor.status().learning == ()


async def test_while_learning_a_broken_sign_in_is_still_found(monitor: nmh.Monitor, fake_clock: FakeClock) -> None:
    await play(monitor, fake_clock, 3)
    for _ in range(8):
        for person in PEOPLE:
            monitor.record_request("/portal", 200, 0.1, user=person)
            monitor.record_login(False, user=person)
        fake_clock.advance(15)
        evaluation = await monitor.evaluate()
        if evaluation.opened:
            break
    [opened] = evaluation.opened
    assert opened.incident.check == "session_failures" and opened.incident.threshold is None


async def test_a_restart_on_sqlite_keeps_the_baseline(tmp_path: Path, internal_errors: object) -> None:
    clock = FakeClock()
    url = f"sqlite:///{tmp_path / 'health.db'}"
    first = nmh.Monitor("acme", store=url, clock=clock, load_entrypoints=False)
    internal_errors(first)  # type: ignore[operator]
    await play(first, clock, 70)
    assert not first.learning()
    first.store.close()

    again = nmh.Monitor("acme", store=url, clock=clock, load_entrypoints=False)
    internal_errors(again)  # type: ignore[operator]
    assert not again.learning(), "the hour is in the file: a restart is not a cold start"
    passes = await play(again, clock, 2, start=70)
    assert again.status().learning == ()
    assert [t for p in passes for t in p.transitions] == []
    again.store.close()

    cold = nmh.Monitor("acme", store="memory://", clock=clock, load_entrypoints=False)
    minute_of_sign_ins(cold, 0)
    cold.flush()
    assert cold.learning(), "a memory:// store starts empty"
