import random
from collections import Counter
from pathlib import Path

import pytest

from nextmonth_health.errors import ConfigError
from nextmonth_health.signals import PAGE_LOAD, Bucket
from nextmonth_health.store import MemoryStore, SQLiteStore, Store, open_store
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
