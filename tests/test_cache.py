"""The evaluator's bucket cache: what it reads, and that its sums equal a fresh read's."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from nextmonth_health.judge.cache import REFRESH_SECONDS, SETTLE_SECONDS, BucketCache
from nextmonth_health.signals import LOGIN, PAGE_LOAD, REQUEST, Bucket
from nextmonth_health.store import SQLiteStore, Store, open_store
from nextmonth_health.store.base import SiteSums
from nextmonth_health.testing import START

from .redis_server import RedisServer

T0 = int(START)
STEP = 10
SPAN = 300


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SQLiteStore(f"sqlite:///{tmp_path}/cache.db")
    else:
        server: RedisServer = request.getfixturevalue("redis_db")
        s = open_store(server.url())
    with s:
        yield s


def bucket(site: str, signal: str, key: str, start: int, total: int, bad: int = 0, slot: int | None = None) -> Bucket:
    b = Bucket(site, signal, key, start, exact_users=True)
    b.total, b.bad = total, bad
    if slot is not None:
        b.hist[slot] += total
    return b


def spans(sites: list[str], now: float) -> dict[str, tuple[float, float, int]]:
    end = (int(now) // STEP) * STEP + STEP
    return {site: (end - SPAN, end, STEP) for site in sites}


def flat(found: Mapping[str, SiteSums], hist: bool = False) -> dict[tuple[str, str, str], tuple]:
    return {
        (site, signal, key): (b.start, b.total, b.bad) + ((dict(b.hist),) if hist else ())
        for site, by_signal in found.items()
        for signal, by_key in by_signal.items()
        for key, b in by_key.items()
    }


def test_a_pass_rereads_only_what_can_still_change(store: Store) -> None:
    cache = BucketCache(store)
    sites = ["a", "b"]
    now = float(T0 + 600)
    store.write([bucket(s, REQUEST, "/x", t, 2) for s in sites for t in range(T0, T0 + 610, STEP)])
    cache.get(spans(sites, now), now)
    assert cache.rows_read == 2 * 30, "the first pass reads each window whole"
    before = cache.rows_read
    now += 15
    store.write([bucket(s, REQUEST, "/x", t, 2) for s in sites for t in range(T0 + 610, T0 + 620, STEP)])
    found = cache.get(spans(sites, now), now)
    reread = (cache.rows_read - before) // 2
    assert reread <= (15 + SETTLE_SECONDS + 2 * STEP) // STEP, "only the unsettled tail and the new buckets"
    assert found["a"][REQUEST]["/x"].total == 2 * 30


def test_sums_match_a_fresh_read_as_traffic_and_time_move_on(store: Store) -> None:
    """Writes land in the unsettled buckets (as flushes do); the cache, read every 15 s
    and asked for histograms along the way, always agrees with reading the store afresh."""
    rng = random.Random(7)
    cache = BucketCache(store)
    sites = ["a", "b", "c"]
    now = float(T0 + 400)
    keys = {REQUEST: ["/x", "/y", "/z"], LOGIN: [""], PAGE_LOAD: ["/dashboard"]}
    store.write(
        [
            bucket(s, signal, key, t, rng.randint(1, 5), rng.randint(0, 1), rng.randint(40, 60))
            for s in sites
            for signal, ks in keys.items()
            for key in ks
            for t in range(T0, T0 + 400, STEP)
            if rng.random() < 0.7
        ]
    )
    for step in range(40):
        fresh_from = int(now - SETTLE_SECONDS) // STEP * STEP
        store.write(
            [
                bucket(s, signal, key, t, rng.randint(1, 5), rng.randint(0, 1), rng.randint(40, 60))
                for s in sites
                for signal, ks in keys.items()
                for key in ks
                for t in range(fresh_from, int(now) + STEP, STEP)
                if rng.random() < 0.3
            ]
        )
        span = spans(sites, now)
        got = cache.get(span, now)
        start, end, _ = span["a"]
        expected = store.sums(sites, start, end)
        with_hist = step % 3 == 0
        assert flat(got, with_hist) == flat(expected, with_hist), f"pass {step}"
        now += 15


def test_a_late_write_is_counted_after_the_next_refresh(store: Store) -> None:
    cache = BucketCache(store, refresh=REFRESH_SECONDS)
    now = float(T0 + 600)
    store.write([bucket("a", LOGIN, "", T0 + 500, 1)])
    cache.get(spans(["a"], now), now)
    store.write([bucket("a", LOGIN, "", T0 + 500, 4)])  # long settled: a worker that could not flush
    now += 15
    [stale] = cache.get(spans(["a"], now), now)["a"][LOGIN].values()
    assert stale.total == 1
    now += 2 * REFRESH_SECONDS
    store.write([bucket("a", LOGIN, "", int(now) - int(now) % STEP - 200, 1)])
    [fresh] = cache.get(spans(["a"], now), now)["a"][LOGIN].values()
    assert fresh.total == 1, "a refresh rereads the window whole; the late bucket has left it"
    now += 15
    store.write([bucket("a", LOGIN, "", int(now) - int(now) % STEP - 250, 3)])  # late, inside the span
    cache.forget(["a"])
    [again] = cache.get(spans(["a"], now), now)["a"][LOGIN].values()
    assert again.total == 4, "a forgotten site is read whole"


def test_a_failed_read_forgets_the_sites_and_raises(tmp_path: Path) -> None:
    class Flaky(SQLiteStore):
        fail = False

        def read_rows(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
            if self.fail:
                raise ConnectionError("store down")
            return super().read_rows(*args, **kwargs)  # type: ignore[arg-type]

    with Flaky(f"sqlite:///{tmp_path}/flaky.db") as store:
        cache = BucketCache(store)
        now = float(T0 + 600)
        store.write([bucket("a", LOGIN, "", T0 + 590, 1)])
        cache.get(spans(["a"], now), now)
        store.fail = True
        with pytest.raises(ConnectionError):
            cache.get(spans(["a"], now + 15), now + 15)
        store.fail = False
        store.write([bucket("a", LOGIN, "", T0 + 400, 5)])  # settled: seen only by a whole read
        [got] = cache.get(spans(["a"], now + 30), now + 30)["a"][LOGIN].values()
        assert got.total == 6
