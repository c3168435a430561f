"""The fork gate: a fork from another thread waits for the monitor's work under way."""

from __future__ import annotations

import threading
import time

import anyio
import anyio.from_thread

from nextmonth_health.forking import ForkGate


def wait_until(condition, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_fork_waits_for_the_unit_under_way_and_holds_new_ones_back() -> None:
    gate = ForkGate()
    inside, release = threading.Event(), threading.Event()
    log: list[str] = []

    async def work(name: str, hold: bool) -> None:
        log.append(f"{name} tries")
        async with gate.unit():
            log.append(f"{name} in")
            if hold:
                inside.set()
                await anyio.to_thread.run_sync(release.wait)
            log.append(f"{name} out")

    def fork() -> None:
        log.append("fork waits")
        log.append(f"fork goes, all done: {gate.before_fork(timeout=10)}")

    with anyio.from_thread.start_blocking_portal() as portal:
        flush = portal.start_task_soon(work, "flush", True)
        inside.wait(10)
        forker = threading.Thread(target=fork)
        forker.start()
        wait_until(lambda: gate._forking)
        evaluation = portal.start_task_soon(work, "pass", False)
        wait_until(lambda: gate.held_back >= 2)
        assert "pass in" not in log, "no unit starts while a fork waits"
        release.set()
        forker.join(10)
        flush.result(10)
        assert "pass in" not in log, "nor while the fork is under way"
        gate.after_fork_in_parent()
        evaluation.result(10)
    assert log == [
        "flush tries",
        "flush in",
        "fork waits",
        "pass tries",
        "flush out",
        "fork goes, all done: True",
        "pass in",
        "pass out",
    ]


def test_a_fork_from_the_loop_thread_does_not_wait_for_itself() -> None:
    gate = ForkGate()

    async def work() -> tuple[bool, float]:
        async with gate.unit():
            began = time.monotonic()
            done = gate.before_fork(timeout=5)
            return done, time.monotonic() - began

    done, waited = anyio.run(work)
    assert done is False and waited < 1, "it says the unit is under way, and goes ahead"
    assert gate.busy == 0


def test_a_fork_that_outwaits_its_timeout_goes_ahead() -> None:
    gate = ForkGate()
    inside, release = threading.Event(), threading.Event()

    async def work() -> None:
        async with gate.unit():
            inside.set()
            await anyio.to_thread.run_sync(release.wait)

    with anyio.from_thread.start_blocking_portal() as portal:
        unit = portal.start_task_soon(work)
        inside.wait(10)
        assert gate.before_fork(timeout=0.05) is False
        gate.after_fork_in_parent()
        release.set()
        unit.result(10)
    assert gate.busy == 0
