"""Tests for the exact-then-HyperLogLog distinct user counter."""

from __future__ import annotations

import gc
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import pytest

from nextmonth_health.sketch import EXACT_LIMIT, DistinctCounter, user_hash


def hashes(start: int, stop: int) -> Iterator[int]:
    return (user_hash(f"u{i}") for i in range(start, stop))


def counter(start: int, stop: int) -> DistinctCounter:
    c = DistinctCounter()
    c.update(hashes(start, stop))
    return c


@pytest.fixture(scope="module")
def million() -> DistinctCounter:
    return counter(0, 1_000_000)


class TestUserHash:
    def test_known_values(self) -> None:
        assert user_hash("alice") == 5614559425216174729
        assert user_hash("u0") == 13824888461268425442
        assert user_hash("") == 16476032584258269876
        assert user_hash("ünïcode") == 2566653803910001293

    def test_lone_surrogates_do_not_raise(self) -> None:
        assert user_hash("\udcff") == 14852696944405235362

    def test_range(self) -> None:
        for i in range(1000):
            assert 0 <= user_hash(f"u{i}") < 2**64

    def test_stable_across_processes(self) -> None:
        code = "from nextmonth_health.sketch import user_hash; print(user_hash('alice'))"
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
        )
        assert int(out.stdout) == user_hash("alice")


class TestExact:
    def test_empty(self) -> None:
        c = DistinctCounter()
        assert len(c) == 0
        assert c.is_exact
        assert c.estimate() == 0.0

    def test_exact_up_to_limit(self) -> None:
        c = DistinctCounter()
        for i, h in enumerate(hashes(0, EXACT_LIMIT), start=1):
            c.add(h)
            c.add(h)
            assert len(c) == i
        assert c.is_exact
        c.add(user_hash("u0"))
        assert c.is_exact and len(c) == EXACT_LIMIT

    def test_converts_past_limit(self) -> None:
        c = counter(0, EXACT_LIMIT + 1)
        assert not c.is_exact
        assert abs(len(c) - (EXACT_LIMIT + 1)) <= 0.03 * (EXACT_LIMIT + 1)

    def test_update_and_add_agree(self) -> None:
        a = counter(0, 300)
        b = DistinctCounter()
        for h in hashes(0, 300):
            b.add(h)
        assert a.to_bytes() == b.to_bytes()
        big_a = counter(0, 5000)
        big_b = DistinctCounter()
        for h in hashes(0, 5000):
            big_b.add(h)
        assert big_a.to_bytes() == big_b.to_bytes()

    def test_duplicates_do_not_count(self) -> None:
        c = DistinctCounter()
        c.update([7, 7, 7, 8, 8, 2**64 - 1])
        assert len(c) == 3


class TestAccuracy:
    @pytest.mark.parametrize("n", [600, 2_000, 10_000, 100_000])
    def test_error_below_3_percent(self, n: int) -> None:
        c = counter(0, n)
        assert not c.is_exact
        assert abs(len(c) - n) / n < 0.03

    def test_error_below_3_percent_at_one_million(self, million: DistinctCounter) -> None:
        assert abs(len(million) - 1_000_000) / 1_000_000 < 0.03

    def test_repeats_do_not_inflate(self) -> None:
        c = counter(0, 20_000)
        before = c.to_bytes()
        c.update(hashes(0, 20_000))
        assert c.to_bytes() == before


class TestMerge:
    def test_exact_exact_small(self) -> None:
        a = counter(0, 100)
        b = counter(50, 200)
        a.merge(b)
        assert a.is_exact and len(a) == 200
        assert len(b) == 150

    def test_exact_exact_converts(self) -> None:
        a = counter(0, 400)
        b = counter(300, 700)
        a.merge(b)
        assert not a.is_exact
        assert abs(len(a) - 700) / 700 < 0.03
        assert a.to_bytes() == counter(0, 700).to_bytes()

    def test_exact_hll(self) -> None:
        a = counter(0, 100)
        b = counter(50, 5_000)
        a.merge(b)
        assert not a.is_exact
        assert a.to_bytes() == counter(0, 5_000).to_bytes()
        assert len(counter(0, 100)) == 100

    def test_hll_exact(self) -> None:
        a = counter(0, 5_000)
        b = counter(4_900, 5_100)
        a.merge(b)
        assert a.to_bytes() == counter(0, 5_100).to_bytes()
        assert b.is_exact and len(b) == 200

    def test_hll_hll(self) -> None:
        a = counter(0, 30_000)
        b = counter(20_000, 60_000)
        a.merge(b)
        assert a.to_bytes() == counter(0, 60_000).to_bytes()
        assert abs(len(a) - 60_000) / 60_000 < 0.03

    def test_merge_is_commutative_and_idempotent(self) -> None:
        a, b = counter(0, 3_000), counter(2_000, 4_000)
        ab, ba = a.copy(), b.copy()
        ab.merge(b)
        ba.merge(a)
        assert ab.to_bytes() == ba.to_bytes()
        again = ab.copy()
        again.merge(b)
        again.merge(again)
        assert again.to_bytes() == ab.to_bytes()

    def test_merge_does_not_alias(self) -> None:
        a, b = counter(0, 10), counter(10, 20)
        a.merge(b)
        b.add(user_hash("new"))
        assert len(a) == 20
        big_a, big_b = counter(0, 2_000), counter(2_000, 4_000)
        big_a.merge(big_b)
        snapshot = big_a.to_bytes()
        big_b.update(hashes(4_000, 8_000))
        assert big_a.to_bytes() == snapshot


class TestCopyAndSerialisation:
    @pytest.mark.parametrize("n", [0, 1, 100, EXACT_LIMIT, EXACT_LIMIT + 1, 50_000])
    def test_round_trip(self, n: int) -> None:
        c = counter(0, n)
        data = c.to_bytes()
        back = DistinctCounter.from_bytes(data)
        assert back.is_exact == c.is_exact
        assert len(back) == len(c)
        assert back.to_bytes() == data
        back.update(hashes(n, n + 10))
        assert c.to_bytes() == data

    def test_compact_sizes(self) -> None:
        assert len(counter(0, 10).to_bytes()) == 1 + 8 * 10
        assert len(counter(0, 10_000).to_bytes()) == 1 + 4096
        assert counter(0, 10).to_bytes()[0] != counter(0, 10_000).to_bytes()[0]

    def test_from_bytes_accepts_memoryview(self) -> None:
        data = counter(0, 10).to_bytes()
        assert len(DistinctCounter.from_bytes(memoryview(data))) == 10

    def test_serialisation_is_order_independent(self) -> None:
        a = DistinctCounter()
        a.update([3, 1, 2])
        b = DistinctCounter()
        b.update([2, 3, 1])
        assert a.to_bytes() == b.to_bytes()

    @pytest.mark.parametrize(
        "data",
        [b"", b"\x00\x01\x02", b"\x01" + bytes(10), b"\x01" + bytes([60]) * 4096, b"\x07"],
    )
    def test_corrupt_input_raises_value_error(self, data: bytes) -> None:
        with pytest.raises(ValueError):
            DistinctCounter.from_bytes(data)

    @pytest.mark.parametrize("n", [0, 1, 100, EXACT_LIMIT, EXACT_LIMIT + 1, 50_000])
    def test_packed_counters_are_untracked_and_count_the_same(self, n: int) -> None:
        c = counter(0, n)
        packed = c.pack()
        assert (packed is None) == (n == 0)
        assert not gc.is_tracked(packed), "what a store keeps by the thousand is no work for the collector"
        back = DistinctCounter.unpack(packed)
        assert back.is_exact == c.is_exact and back.to_bytes() == c.to_bytes()
        back.update(hashes(n, n + 10))
        assert DistinctCounter.unpack(packed).to_bytes() == c.to_bytes(), "unpacking copies"

    @pytest.mark.parametrize(("a", "b"), [(10, 10), (400, 200), (10, 5_000), (5_000, 10), (5_000, 3_000)])
    def test_merging_packed_is_merging(self, a: int, b: int) -> None:
        left, right = counter(0, a), counter(a // 2, a // 2 + b)
        expected = left.copy()
        expected.merge(right)
        left.merge_packed(right.pack())
        assert left.is_exact == expected.is_exact and left.to_bytes() == expected.to_bytes()

    def test_copy_is_independent(self) -> None:
        for n in (10, 5_000):
            c = counter(0, n)
            d = c.copy()
            d.update(hashes(n, n + 3_000))
            assert len(c) == len(counter(0, n))
            assert len(d) > len(c)

    def test_slots(self) -> None:
        c = DistinctCounter()
        assert not hasattr(c, "__dict__")
        with pytest.raises(AttributeError):
            c.extra = 1  # type: ignore[attr-defined]


class TestMemory:
    def test_hll_is_small(self, million: DistinctCounter) -> None:
        c = counter(0, 100_000)
        internals = [getattr(c, name) for name in DistinctCounter.__slots__]
        size = sys.getsizeof(c) + sum(sys.getsizeof(x) for x in internals if x is not None)
        assert size < 10_000
        assert len(million.to_bytes()) == 4097

    def test_tracemalloc_100k_users(self) -> None:
        gc.collect()
        tracemalloc.start()
        try:
            c = DistinctCounter()
            c.update(hashes(0, 100_000))
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(c) > 90_000
        assert current < 100_000
        assert peak < 200_000

    def test_add_one_by_one_stays_bounded(self) -> None:
        gc.collect()
        tracemalloc.start()
        try:
            c = DistinctCounter()
            for h in hashes(0, 100_000):
                c.add(h)
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert not c.is_exact
        assert current < 100_000


def test_an_unbounded_counter_stays_exact_until_compacted():
    from nextmonth_health.sketch import EXACT_LIMIT

    counter = DistinctCounter(limit=None)
    counter.update(user_hash(f"u{i}") for i in range(EXACT_LIMIT * 4))
    assert counter.is_exact and len(counter) == EXACT_LIMIT * 4
    assert counter.exact_items() == {user_hash(f"u{i}") for i in range(EXACT_LIMIT * 4)}
    bounded = DistinctCounter()
    bounded.merge(counter)
    assert not bounded.is_exact
    assert counter.compact() is counter and not counter.is_exact and counter.exact_items() is None
    assert abs(len(counter) - EXACT_LIMIT * 4) < EXACT_LIMIT * 4 * 0.03
