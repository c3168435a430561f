import gc
import random
from collections import Counter
from pathlib import Path

import pytest

from nextmonth_health.errors import ConfigError
from nextmonth_health.signals import LOGIN, PAGE_LOAD, REQUEST, Bucket
from nextmonth_health.sketch import user_hash
from nextmonth_health.store import MemoryStore, SQLiteStore, Store, open_store
from nextmonth_health.store.base import SumBucket
from nextmonth_health.testing import START
from nextmonth_health.values import timestamp

from .store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return open_store("memory://")


def test_the_default_store_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXTMONTH_HEALTH_STORE")
    store = open_store(None)
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "nextmonth-health.db").exists()
    finally:
        store.close()
    monkeypatch.setenv("NEXTMONTH_HEALTH_STORE", "memory://")
    assert isinstance(open_store(None), MemoryStore)


def test_stores_are_chosen_by_url_or_object() -> None:
    given = MemoryStore()
    assert open_store(given) is given
    with pytest.raises(ConfigError, match="unknown store URL 'postgres://x'"):
        open_store("postgres://x")
    with pytest.raises(ConfigError, match="store must be a URL string"):
        open_store(42)  # type: ignore[arg-type]


def test_window_histograms_follow_writes_moving_spans_and_trims() -> None:
    """memory:// keeps the histogram of the span last asked for and moves it as passes go
    by; whatever the order of writes, spans and trims, it equals merging the buckets."""
    rng = random.Random(11)
    store = MemoryStore()
    t0 = int(START)
    now = t0 + 300

    def write(start: int) -> None:
        b = Bucket("s", PAGE_LOAD, "/dashboard", start)
        for _ in range(rng.randint(1, 4)):
            b.total += 1
            b.hist[rng.randint(10, 30)] += 1
        store.write([b])

    for start in range(t0, now, 10):
        write(start)
    for step in range(60):
        for _ in range(rng.randint(0, 3)):  # late or current buckets, as flushes bring them
            write(now - now % 10 - 10 * rng.randint(0, 40))
        span = rng.choice([300, 300, 300, 120]) if step % 7 else 600
        end = now - now % 10 + 10
        if step % 13 == 12:
            store.trim(buckets_before=end - 200, hourly_before=0, resolved_before=timestamp(0))
        got = store.sums(["s"], end - span, end)["s"][PAGE_LOAD]["/dashboard"]
        expected: Counter[int] = Counter()
        for b in store.read("s", PAGE_LOAD, end - span, end):
            expected.update(b.hist)
        assert got.hist == expected, f"step {step}"
        got.hist[99] = 1  # a caller's copy: changing it changes nothing kept
        now += rng.choice([10, 15, 15, 20])


def test_sums_asked_again_follow_writes_and_trims() -> None:
    """memory:// remembers each series' last sum until a write or a trim touches its range
    (a baseline is asked for the same range pass after pass); a remembered sum is never
    stale, for raw buckets and roll-ups alike."""
    rng = random.Random(5)
    store = MemoryStore()
    t0 = int(START) - int(START) % 3600
    spans = [(t0 + 600, t0 + 1800), (t0 + 1200, t0 + 2400)]
    for step in range(300):
        batch = []
        for _ in range(rng.randint(0, 3)):
            b = Bucket("s", REQUEST, rng.choice(["/x", "/y"]), t0 + 10 * rng.randint(0, 300))
            b.total = rng.randint(1, 5)
            b.bad = rng.randint(0, b.total)
            batch.append(b)
        store.write(batch)
        if step % 40 == 39:
            store.trim(buckets_before=t0 + 10 * step, hourly_before=0, resolved_before=timestamp(0))
        start, end = spans[0] if step % 9 else spans[1]  # mostly the same range, now and then another
        for width in (None, 300):
            rows = (
                store.read("s", REQUEST, start, end)
                if width is None
                else store.read_rollup("s", REQUEST, width, start, end)
            )
            sums = store.sums(["s"], start, end, width=width)["s"].get(REQUEST) or {}
            for key in ("/x", "/y"):
                parts = [b for b in rows if b.key == key]
                got = sums.get(key)
                expected = None if not parts else (sum(b.total for b in parts), sum(b.bad for b in parts))
                assert (None if got is None else (got.total, got.bad)) == expected, (step, width, key)


class _Reference:
    """What memory:// must answer, kept the plain way: one merged Bucket per stored bucket."""

    def __init__(self) -> None:
        self.raw: dict[tuple[str, str, str, int], Bucket] = {}
        self.rollups: dict[int, dict[tuple[str, str, str, int], Bucket]] = {300: {}, 3600: {}}

    def write(self, delta: Bucket) -> None:
        site, signal, key, start = delta.site, delta.signal, delta.key, delta.start
        self.raw.setdefault((site, signal, key, start), Bucket(site, signal, key, start)).merge(delta)
        for width, rollups in self.rollups.items():
            at = start - start % width
            rollups.setdefault((site, signal, key, at), Bucket(site, signal, key, at)).add_counts(delta)

    def trim(self, raw_before: int, hourly_before: int) -> None:
        for table, before in (
            (self.raw, raw_before),
            (self.rollups[300], raw_before),
            (self.rollups[3600], hourly_before),
        ):
            for name in [name for name in table if name[3] < before]:
                del table[name]

    def rows(self, site: str, signal: str, start: float, end: float, width: int | None = None) -> list[Bucket]:
        table = self.raw if width is None else self.rollups[width]
        return [b for (s, g, _, at), b in table.items() if (s, g) == (site, signal) and start <= at < end]


def _described(buckets: list[Bucket]) -> list[tuple[object, ...]]:
    return sorted(
        (b.key, b.start, b.total, b.bad, sorted(b.hist.items()), b.users.to_bytes(), b.bad_users.to_bytes())
        for b in buckets
    )


def test_packed_series_answer_as_plain_buckets_would() -> None:
    """memory:// packs its buckets; whatever the writes (late ones, users past the exact
    limit), spans and trims, it answers every read as merged Bucket objects would."""
    rng = random.Random(7)
    store, reference = MemoryStore(), _Reference()
    sites, keys, users = ("a", "b"), ("/x", "/y", "/z"), [user_hash(f"u{i}") for i in range(2000)]
    now = int(START) - int(START) % 3600

    def delta(site: str, signal: str, key: str, start: int) -> Bucket:
        b = Bucket(site, signal, key, start, exact_users=True)
        for _ in range(rng.choice([1, 2, 5])):
            b.total += 1
            b.bad += rng.random() < 0.3
            if signal == PAGE_LOAD:
                b.hist[rng.randint(0, 400)] += 1
        crowd = rng.sample(users, rng.choice([1, 3, 40, 600]) if rng.random() < 0.1 else rng.randint(0, 3))
        b.users.update(crowd)
        b.bad_users.update(crowd[: len(crowd) // 3])
        return b

    for step in range(400):
        batch = []
        for _ in range(rng.randint(1, 6)):
            start = now - now % 10 - 10 * (rng.randint(0, 30) if rng.random() < 0.2 else rng.randint(0, 1))
            b = delta(rng.choice(sites), rng.choice((REQUEST, PAGE_LOAD, LOGIN)), rng.choice(keys), start)
            reference.write(b)  # merged from, before the store may keep it
            batch.append(b)
        store.write(batch)
        if step % 50 == 49:
            raw_before, hourly_before = now - 900, now - 3 * 3600
            store.trim(buckets_before=raw_before, hourly_before=hourly_before, resolved_before=timestamp(0))
            reference.trim(raw_before, hourly_before)
        now += rng.choice([1, 3, 7, 10])
        if step % 5:
            continue
        end = now - now % 10 + 10
        start = end - rng.choice([60, 300, 900, 10_000])
        for site in (*sites, "nobody"):
            for signal in (REQUEST, PAGE_LOAD, LOGIN):
                expected = reference.rows(site, signal, start, end)
                assert _described(store.read(site, signal, start, end)) == _described(expected), step
                for width in (300, 3600):
                    assert _described(store.read_rollup(site, signal, width, start, end)) == _described(
                        reference.rows(site, signal, start, end, width)
                    ), (step, width)
                sums = store.sums([site], start, end)[site].get(signal) or {}
                for key in keys:
                    parts = [b for b in expected if b.key == key]
                    got = sums.get(key)
                    if not parts:
                        assert got is None, (step, key)
                        continue
                    summed = SumBucket.over(site, signal, key, int(start), parts)
                    assert (got.total, got.bad, got.hist) == (summed.total, summed.bad, summed.hist), (step, key)
            wanted = [(REQUEST, rng.choice([None, ["/x"], ["/y", "/z", "/y"], []]), rng.random() < 0.5)]
            if rng.random() < 0.5:
                wanted.append((LOGIN, None, rng.random() < 0.5))
            cells = [
                (b, bad)
                for signal, chosen, bad in wanted
                for b in reference.rows(site, signal, start, end)
                if chosen is None or b.key in chosen
            ]
            counted = MemoryStore().count_users(cells) if cells else 0
            assert store.window_users(site, wanted, start, end) == counted, step


def test_stored_buckets_are_no_work_for_the_garbage_collector() -> None:
    """A series keeps only its newest bucket as objects (flushes add to it): the rest are
    packed, so what the collector walks grows with series, not with buckets kept."""
    store = MemoryStore()
    t0 = int(START)

    def write(start: int) -> None:
        batch = []
        for key in range(20):
            b = Bucket("s", PAGE_LOAD, f"/{key}", start, exact_users=True)
            b.total, b.bad, b.hist[start % 50] = 3, 1, 3
            b.users.update([start, start + 1, key])
            b.bad_users.add(start)
            batch.append(b)
        store.write(batch)

    def fill(buckets_per_series: int) -> int:
        nonlocal t0
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(buckets_per_series):
            write(t0)
            t0 += 10
        gc.collect()
        return len(gc.get_objects()) - before

    first = fill(2)
    assert 0 < first < 20 * 40, "a few dozen objects per series, in all three tables"
    assert fill(300) < 20, "three hundred more buckets in each of 20 series, no more objects"
