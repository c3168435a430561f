"""A real leader process stopped (SIGSTOP) with its pass in flight, past its lease: the
standby process escalates, and the leader, when it wakes, alerts nobody a second time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("evaluator.py")


def heard(folder: Path) -> list[dict]:
    path = folder / "heard"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        yield request.getfixturevalue("redis_db").url()


def start(store: str, folder: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(WORKER), store, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "running"
    return process


def stop_mid_pass(process: subprocess.Popen[str], folder: Path) -> None:
    """SIGSTOP the process while its probe pauses (every pass waits 0.5 s there), so that it
    wakes with a pass in flight; a stop that came just after the pause is undone and tried
    again, however slow the machine."""
    probing = folder / f"probing-{process.pid}"
    for _ in range(50):
        wait_for(probing.exists, 20, "the leader to be mid-pass")
        process.send_signal(signal.SIGSTOP)
        if probing.exists():
            return
        process.send_signal(signal.SIGCONT)
    raise AssertionError("never stopped the leader mid-pass")


def test_a_stopped_leader_wakes_without_alerting_twice(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "status").write_text("degraded")
    leader = start(store_url, tmp_path)
    wait_for(
        lambda: any(h["kind"] == "opened" for h in heard(tmp_path)),
        10,
        "the leader to open the incident",
    )
    standby = start(store_url, tmp_path)
    try:
        stop_mid_pass(leader, tmp_path)
        (tmp_path / "status").write_text("critical")
        wait_for(
            lambda: any(h["kind"] == "escalated" for h in heard(tmp_path)),
            10,
            "the standby to escalate",
        )
        leader.send_signal(signal.SIGCONT)
        time.sleep(1.5)  # the leader finishes its stale pass, and a few more
        # Paused again while the standby leads, and the problem ends: one resolution.
        leader.send_signal(signal.SIGSTOP)
        (tmp_path / "status").write_text("ok")
        wait_for(lambda: any(h["kind"] == "resolved" for h in heard(tmp_path)), 20, "the incident to resolve")
        leader.send_signal(signal.SIGCONT)
        time.sleep(1.5)
    finally:
        for process in (leader, standby):
            process.send_signal(signal.SIGCONT)
            process.terminate()
        outputs = [process.communicate(timeout=20) for process in (leader, standby)]
    escalations = [h for h in heard(tmp_path) if h["kind"] == "escalated"]
    assert len(escalations) == 1 and escalations[0]["alert"], heard(tmp_path)
    assert escalations[0]["pid"] == standby.pid
    resolutions = [h for h in heard(tmp_path) if h["kind"] == "resolved"]
    assert len(resolutions) == 1, heard(tmp_path)
    leader_log = outputs[0][1]
    assert "stale_pass" in leader_log, leader_log
    assert all(process.returncode == 0 for process in (leader, standby)), outputs
