"""One (site, signal, key)'s buckets over time, as ``memory://`` keeps them: packed into
arrays and bytes rather than held as an object per bucket.

A thousand sites hold half a million buckets. As objects — each with a histogram Counter
and two user sketches — they were three million objects for the host's garbage collector
to walk (a full collection took seconds) and a heap that scattered a pass's reads. Packed,
a series is a handful of objects however long it is: a few arrays and lists, holding bytes,
bytearrays and ints, which the collector does not track. Only the newest bucket stays
unpacked, since every flush adds to it.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import chain

from ..signals import Bucket, hist_add
from ..sketch import DistinctCounter, Packed

__all__ = ["Series"]

#: A bucket's histogram: a Counter while the bucket is its series' newest, else bytes
#: of native 64-bit (slot, count) pairs, or None when empty.
Hist = Counter[int] | bytes | None
#: A bucket's users: a DistinctCounter while the bucket is its series' newest, else packed.
Users = DistinctCounter | Packed


#: A histogram slot and its count, packed.
_PAIR = struct.Struct("=qq")


def _pack_hist(hist: Mapping[int, int] | None) -> bytes | None:
    return array("q", chain.from_iterable(hist.items())).tobytes() if hist else None


def _add_hist(hist: Counter[int], part: Hist, sign: int = 1) -> None:
    """Add a kept histogram into ``hist`` (``sign`` -1: take it away; slots left empty go)."""
    if not part:
        return
    if type(part) is bytes:
        pairs: Iterable[tuple[int, int]] = _PAIR.iter_unpack(part)
    else:
        pairs = part.items()  # type: ignore[union-attr]
    get = hist.get
    if sign > 0:
        for slot, n in pairs:
            hist[slot] = get(slot, 0) + n
        return
    pop = hist.pop  # not ``del``: Counter's __delitem__ is Python, pop is the dict's own
    for slot, n in pairs:
        left = get(slot, 0) - n
        if left > 0:
            hist[slot] = left
        else:
            pop(slot, None)


def _unpack_hist(part: Hist) -> Counter[int]:
    hist: Counter[int] = Counter()
    _add_hist(hist, part)
    return hist


def _pack_newest_hist(hist: Hist) -> bytes | None:
    return hist if hist is None or isinstance(hist, bytes) else _pack_hist(hist)


def _pack_users(users: Users) -> Packed:
    return users.pack() if isinstance(users, DistinctCounter) else users


class Series:
    """Buckets ordered by start, with running sums of their counts, so the counts of any
    range cost two bisections however long it is; their histograms and (raw buckets only:
    roll-ups keep none) users, one entry per bucket, packed.

    The histogram of the range last asked for is kept too, and kept up to date by writes:
    a pass later moves it by the few buckets that entered or left its range, instead of
    merging thirty histograms again. So are the counts of the range last summed (``memo``:
    the range, ``memo_total`` and ``memo_bad``), until a write or a trim touches the range:
    a baseline's range stays the same for five minutes. Plain ints, not an object: what
    outlives a pass costs the garbage collector.
    """

    __slots__ = ("bad_users", "hist", "hist_span", "hists", "memo", "memo_bad", "memo_total", "starts", "sums", "users")

    def __init__(self, *, users: bool) -> None:
        # Machine integers, not int objects: a bisection then reads one block of memory
        # instead of chasing a pointer per step (a pass bisects thousands of series).
        self.starts = array("q")
        # sums[2i], sums[2i + 1]: the events and bad ones every bucket before the i-th
        # counted (trimmed ones included). One array, not two: one fewer cache miss for
        # each series a pass sums.
        self.sums = array("q", [0, 0])
        self.hists: list[Hist] = []
        self.users: list[Users] | None = [] if users else None
        self.bad_users: list[Users] | None = [] if users else None
        self.hist: Counter[int] | None = None
        self.hist_span = (0.0, 0.0)
        self.memo: tuple[float, float] | None = None
        self.memo_total = self.memo_bad = 0

    def add(self, delta: Bucket, start: int, *, keep: bool = False) -> None:
        """Add a delta (counts, histogram, users) to the bucket starting at ``start``.

        ``keep``: the series may keep the delta's parts instead of copying them (no one
        changes or adds from the delta afterwards).
        """
        starts = self.starts
        i = len(starts) - 1
        if i < 0 or start > starts[i]:
            i += 1
        elif starts[i] != start:  # a late write, before the newest bucket
            i = bisect.bisect_left(starts, start)
        if i == len(starts) or starts[i] != start:
            self._insert(i, start, delta, keep)
        elif i == len(starts) - 1:
            self._add_newest(delta)
        else:
            self._add_packed(i, delta)
        sums, total, bad = self.sums, delta.total, delta.bad
        for j in range(2 * i + 2, len(sums), 2):
            sums[j] += total
            sums[j + 1] += bad
        if self.hist is not None and delta.hist and self.hist_span[0] <= start < self.hist_span[1]:
            hist_add(self.hist, delta.hist)
        if self.memo is not None and self.memo[0] <= start < self.memo[1]:
            self.memo = None

    def _insert(self, i: int, start: int, delta: Bucket, keep: bool) -> None:
        newest = i == len(self.starts)
        hists, users, bad_users = self.hists, self.users, self.bad_users
        if newest and hists:  # the newest until now: no flush adds to it anymore
            hists[-1] = _pack_newest_hist(hists[-1])
            if users is not None and bad_users is not None:
                users[-1] = _pack_users(users[-1])
                bad_users[-1] = _pack_users(bad_users[-1])
        self.starts.insert(i, start)
        self.sums[2 * i + 2 : 2 * i + 2] = self.sums[2 * i : 2 * i + 2]
        if newest:
            hists.append((delta.hist if keep else _unpack_hist(delta.hist)) if delta.hist else None)
            if users is not None and bad_users is not None:
                delta.compact()
                users.append(delta.users if keep else delta.users.copy())
                bad_users.append(delta.bad_users if keep else delta.bad_users.copy())
        else:
            hists.insert(i, _pack_hist(delta.hist))
            if users is not None and bad_users is not None:
                delta.compact()
                users.insert(i, delta.users.pack())
                bad_users.insert(i, delta.bad_users.pack())

    def _add_newest(self, delta: Bucket) -> None:
        hists = self.hists
        if delta.hist:
            hist = hists[-1]
            if type(hist) is not Counter:
                hist = hists[-1] = _unpack_hist(hist)
            hist_add(hist, delta.hist)
        if self.users is not None and self.bad_users is not None:
            for kept, more in ((self.users, delta.users), (self.bad_users, delta.bad_users)):
                users = kept[-1]
                if not isinstance(users, DistinctCounter):
                    users = kept[-1] = DistinctCounter.unpack(users)
                users.merge(more)

    def _add_packed(self, i: int, delta: Bucket) -> None:
        if delta.hist:
            hist = _unpack_hist(self.hists[i])
            hist_add(hist, delta.hist)
            self.hists[i] = _pack_hist(hist)
        if self.users is not None and self.bad_users is not None:
            for kept, more in ((self.users, delta.users), (self.bad_users, delta.bad_users)):
                users = DistinctCounter.unpack(kept[i])  # type: ignore[arg-type]
                users.merge(more)
                kept[i] = users.pack()

    def span(self, start: float, end: float) -> tuple[int, int]:
        return bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)

    def holds(self, start: float, end: float) -> bool:
        """Whether any bucket starts in ``[start, end)``."""
        lo, hi = self.span(start, end)
        return lo < hi

    def buckets(self, site: str, signal: str, key: str, start: float, end: float) -> list[Bucket]:
        """The buckets starting in ``[start, end)``, as new objects of their own."""
        lo, hi = self.span(start, end)
        starts, sums, hists, users, bad_users = self.starts, self.sums, self.hists, self.users, self.bad_users
        found = []
        for i in range(lo, hi):
            bucket = Bucket(site, signal, key, starts[i])
            bucket.total = sums[2 * i + 2] - sums[2 * i]
            bucket.bad = sums[2 * i + 3] - sums[2 * i + 1]
            _add_hist(bucket.hist, hists[i])
            if users is not None and bad_users is not None:
                _merge_users(bucket.users, users[i])
                _merge_users(bucket.bad_users, bad_users[i])
            found.append(bucket)
        return found

    def merge_users(self, into: DistinctCounter, start: float, end: float, *, bad: bool) -> None:
        """Fold the users (``bad``: the bad ones) of the buckets starting in ``[start, end)`` into ``into``."""
        kept = self.bad_users if bad else self.users
        if kept is None:
            return
        lo, hi = self.span(start, end)
        for users in kept[lo:hi]:
            _merge_users(into, users)

    def merged_hist(self, start: float, end: float) -> Counter[int]:
        """A copy of the histogram of the buckets starting in ``[start, end)``."""
        hist, (was_start, was_end) = self.hist, self.hist_span
        if hist is None or start >= was_end or end <= was_start:
            hist = self.hist = Counter()
            self._move(hist, start, end, 1)
        else:
            if start < was_start:
                self._move(hist, start, was_start, 1)
            elif start > was_start:
                self._move(hist, was_start, start, -1)
            if end > was_end:
                self._move(hist, was_end, end, 1)
            elif end < was_end:
                self._move(hist, end, was_end, -1)
        self.hist_span = (start, end)
        return _copy(hist)

    def _move(self, hist: Counter[int], start: float, end: float, sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) the histograms of buckets starting in ``[start, end)``."""
        starts = self.starts
        lo = bisect.bisect_left(starts, start)
        hi = len(starts) if starts and end > starts[-1] else bisect.bisect_left(starts, end, lo)  # often: to the newest
        for part in self.hists[lo:hi]:
            _add_hist(hist, part, sign)

    def forget_before(self, before: float) -> None:
        cut = bisect.bisect_left(self.starts, before)
        del self.starts[:cut], self.sums[: 2 * cut], self.hists[:cut]
        if self.users is not None and self.bad_users is not None:
            del self.users[:cut], self.bad_users[:cut]
        if self.hist_span[0] < before:
            self.hist = None
        if self.memo is not None and self.memo[0] < before:
            self.memo = None


def _copy(hist: Counter[int]) -> Counter[int]:
    """``Counter(hist)`` at half the cost: without its generic ``update`` (an ABC check
    and a Python call), which a pass paid for every window it read values of."""
    copy: Counter[int] = Counter.__new__(Counter)
    dict.update(copy, hist)
    return copy


def _merge_users(into: DistinctCounter, users: Users) -> None:
    if isinstance(users, DistinctCounter):
        into.merge(users)
    else:
        into.merge_packed(users)
