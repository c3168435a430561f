"""Clocks that disagree: a leader 30 s ahead of, or behind, the worker that records.

Both serve traffic and flush every second on their own clocks, 30 s apart, on the same
store; the leader evaluates every 15 s. An outage on the worker's half of /bookings (40 %
failing there, 20 % in all) must be found within the usual minute or so, and the quiet
hour before it must stay quiet. Before the fix, a leader 30 s ahead took the worker's
fresh buckets for settled (its own were newer) and found nothing for ten minutes; one 30 s
behind saw the worker's counts only half a minute late.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock

from ..redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "memory":
        yield nmh.store.MemoryStore()
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        yield request.getfixturevalue("redis_db").url()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # clocks are the subject, not the loop
@pytest.mark.parametrize("skew", [30.0, -30.0], ids=["leader ahead", "leader behind"])
async def test_an_outage_is_found_and_resolved_on_time_whatever_the_leaders_clock_says(
    store: object, skew: float
) -> None:
    worker_clock, leader_clock = FakeClock(START), FakeClock(START + skew)
    worker = nmh.Monitor("acme", store=store, clock=worker_clock, load_entrypoints=False)
    leader = nmh.Monitor("acme", store=store, clock=leader_clock, load_entrypoints=False)
    rng = random.Random(7)
    outage_at, fixed_at = 70 * 60, 78 * 60
    opened, resolved = [], []
    for second in range(fixed_at + 11 * 60):
        share = 0.4 if outage_at <= second < fixed_at else 0.01
        for n in range(2):  # two requests a second on /bookings each, from forty people
            status = 503 if rng.random() < share else 200
            worker.record_request("/bookings", status, 0.1, user=f"p{rng.randrange(40)}")
            leader.record_request("/bookings", 503 if rng.random() < 0.01 else 200, 0.1, user=f"p{rng.randrange(40)}")
        worker.flush()
        leader.flush()
        worker_clock.advance(1)
        leader_clock.advance(1)
        if second % 15 == 14:
            evaluation = await leader.evaluate()
            opened += [(second, t.incident.key) for t in evaluation.opened]
            resolved += [second for t in evaluation.resolved]
    assert opened, "the outage was never found"
    [(second, key)] = opened
    assert key == "/bookings" and second >= outage_at, "the quiet hour stayed quiet"
    assert second - outage_at <= 40, f"found {second - outage_at} s into the outage"
    [second] = resolved
    assert 0 < second - fixed_at <= 600, f"resolved {second - fixed_at} s after the fix"
    for monitor in (worker, leader):
        monitor.store.close()


class SkewedClock(nmh.SystemClock):
    """The real clock of a host whose time is off by ``skew`` seconds."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def now(self) -> float:
        return super().now() + self.skew


def test_a_process_whose_clock_is_off_says_so_once(redis_db: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    monitor = nmh.Monitor("acme", store=redis_db.url(), clock=SkewedClock(30.0), load_entrypoints=False)
    with caplog.at_level(logging.WARNING, logger="nextmonth_health"):
        anyio.run(monitor.evaluate)
        anyio.run(monitor.evaluate)
    skew = monitor.status().clock_skew
    assert skew is not None and -31 < skew < -29, skew
    said = [r for r in caplog.records if "clock_skew" in r.getMessage()]
    assert len(said) == 1 and "ahead" in said[0].getMessage()
    assert nmh.Monitor("in-step", store=redis_db.url(), load_entrypoints=False).status().clock_skew is None
    monitor.store.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_process_behind_the_others_counts_says_so(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    ahead, behind = FakeClock(START + 60), FakeClock(START)
    writer = nmh.Monitor("acme", store=store, clock=ahead, load_entrypoints=False)
    evaluator = nmh.Monitor("acme", store=store, clock=behind, load_entrypoints=False)
    writer.record_request("/bookings", 200, 0.1, user="p1")
    writer.flush()
    await evaluator.evaluate()
    skew = evaluator.status().clock_skew
    assert skew is not None and 50 <= skew <= 70, skew
    for monitor in (writer, evaluator):
        monitor.store.close()


@pytest.mark.parametrize("skew", [90.0, -90.0], ids=["writer ahead", "writer behind"])
def test_on_redis_every_process_counts_and_judges_on_redis_clock(redis_db: RedisServer, skew: float) -> None:
    """Past the minute windows absorb: each process follows Redis's ``TIME``, so a writer
    90 s off still fills the buckets of now, and a leader 90 s the other way reads them."""
    writer = nmh.Monitor("acme", store=redis_db.url(), clock=SkewedClock(skew), load_entrypoints=False)
    leader = nmh.Monitor("acme", store=redis_db.url(), clock=SkewedClock(-skew), load_entrypoints=False)
    for monitor in (writer, leader):
        anyio.run(monitor.evaluator.follow_store_clock)
    for n in range(30):
        writer.record_request("/bookings", 503, 0.1, user=f"p{n}")
    writer.flush()
    redis_now = writer.store.time()
    assert redis_now is not None
    [bucket] = writer.store.read("acme", "request", redis_now - 600, redis_now + 600)
    assert abs(bucket.start - redis_now) <= writer.settings.bucket_seconds + 1, (
        bucket.start,
        redis_now,
    )
    evaluation = anyio.run(leader.evaluate)
    counted = [r.detail["requests"] for r in evaluation.readings if r.key == "/bookings"]
    assert counted == [30], evaluation.readings
    assert leader.status().clock_skew == pytest.approx(skew, abs=1)
    for monitor in (writer, leader):
        monitor.store.close()


SKEWED_WRITER = """
import sys
import nextmonth_health as nmh

class SkewedClock(nmh.SystemClock):
    def now(self):
        return super().now() + float(sys.argv[2])

monitor = nmh.Monitor("acme", store=sys.argv[1], clock=SkewedClock(), load_entrypoints=False)
import anyio
anyio.run(monitor.evaluator.follow_store_clock)  # as monitor.run() does when it starts
for n in range(30):
    monitor.record_request("/bookings", 503, 0.1, user=f"p{n}")
monitor.flush()
print(monitor.status().events_stored)
"""


@pytest.mark.parametrize(
    ("kind", "skew"),
    [("sqlite", 30.0), ("sqlite", -30.0), ("redis", 90.0), ("redis", -90.0)],
    ids=[
        "sqlite, writer 30 s ahead",
        "sqlite, 30 s behind",
        "redis, 90 s ahead",
        "redis, 90 s behind",
    ],
)
def test_a_real_worker_process_whose_clock_is_off_is_counted_at_once(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, skew: float
) -> None:
    """A separate worker process on a real clock that is off: the leader's very next pass
    counts every request it recorded — on SQLite 30 s either way (windows reach a minute
    ahead), on Redis even 90 s (every process follows Redis's clock)."""
    import subprocess
    import sys

    if kind == "sqlite":
        shared_store = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        shared_store = request.getfixturevalue("redis_db").url()
    done = subprocess.run(
        [sys.executable, "-c", SKEWED_WRITER, shared_store, str(skew)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.split() == ["30"], done.stderr
    leader = nmh.Monitor("acme", store=shared_store, load_entrypoints=False)
    evaluation = anyio.run(leader.evaluate)
    counted = [r.detail["requests"] for r in evaluation.readings if r.key == "/bookings"]
    assert counted == [30], evaluation.readings
    leader.store.close()
