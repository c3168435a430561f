"""What the evaluator keeps of each site's buckets between passes, so a pass reads only
what can still change.

A window of five minutes holds thirty ten-second buckets per series, but from one pass to
the next (fifteen seconds) only the newest few change: every process flushes each second,
so once a bucket ended ``settle`` seconds ago nothing more arrives for it. Each pass reads
from the store only the buckets that were not yet settled at the previous read, plus the
new ones, and keeps the settled ones until they leave the span. A site is read whole again
every ``refresh`` seconds (staggered across sites), so a pass never spends more than a
``refresh``'s share of sites on whole reads; and at once, on the next pass, when the store
counted a late write for it (:meth:`Store.write_marks
<nextmonth_health.store.base.Store.write_marks>`): a worker that could not flush for a
while writes into buckets already settled here. And a bucket is taken as settled only
``settle`` seconds before the newest the store holds for the site, when that is earlier
than the evaluator's now: a leader whose clock runs ahead of the writers' does not settle
the buckets they are still writing.

Used for stores that do I/O (SQLite, Redis); ``memory://`` answers from running sums of
its own and has nothing to save.
"""

from __future__ import annotations

import bisect
import math
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from ..signals import SIGNALS, Bucket, hist_add
from ..store.base import Lookup, Row, SiteSums, Store, StoredBucket

__all__ = ["REFRESH_SECONDS", "SETTLE_SECONDS", "BucketCache", "Span"]

#: A bucket that ended this long ago is not re-read: fifteen flushes of every process
#: (and clocks that agree within a few seconds) have landed by then.
SETTLE_SECONDS: Final = 15.0
#: Each site is read whole at least this often, to pick up late writes.
REFRESH_SECONDS: Final = 300.0

#: The span a pass needs for a site: start, end (exclusive), and the width of one bucket.
Span = tuple[float, float, int]


class _Run:
    """One (signal, key)'s buckets in the span, ordered by start, as plain arrays, with
    running counts — and a running histogram once one was asked for.

    Arrays and bytes, not an object per bucket: the cache outlives passes, and thousands of
    long-lived objects would make every garbage collection of the host process slower.
    """

    __slots__ = ("bad", "bads", "hist", "hists", "starts", "total", "totals")

    def __init__(self) -> None:
        self.starts = array("q")
        self.totals = array("q")
        self.bads = array("q")
        self.hists: list[Any] = []
        self.total = 0
        self.bad = 0
        self.hist: Counter[int] | None = None

    def keep(self, start: float, end: float, decode: Callable[[Any], Counter[int]]) -> None:
        """Forget the buckets starting before ``start`` or from ``end`` on, and their counts.

        One call for both ends: a pass drops the bucket or two that left the window and
        the unsettled ones it reads again, for every series of every site.
        """
        starts = self.starts
        n = len(starts)
        if not n:
            return
        lo = 0 if starts[0] >= start else bisect.bisect_left(starts, start)
        hi = n if starts[n - 1] < end else bisect.bisect_left(starts, end, lo)
        if lo == 0 and hi == n:
            return
        totals, bads, hists = self.totals, self.bads, self.hists
        self.total -= sum(totals[:lo]) + sum(totals[hi:])
        self.bad -= sum(bads[:lo]) + sum(bads[hi:])
        if self.hist is not None:
            hist = self.hist
            for blob in hists[:lo] + hists[hi:]:
                for slot, count in decode(blob).items():
                    left = hist[slot] - count
                    if left > 0:
                        hist[slot] = left
                    else:
                        hist.pop(slot, None)
        del starts[hi:], totals[hi:], bads[hi:], hists[hi:]
        del starts[:lo], totals[:lo], bads[:lo], hists[:lo]

    def merged_hist(self, decode: Callable[[Any], Counter[int]]) -> Counter[int]:
        """The histogram of the run, kept up to date from now on."""
        if self.hist is None:
            self.hist = Counter()
            for blob in self.hists:
                if blob:
                    hist_add(self.hist, decode(blob))
        return Counter(self.hist)


class _RunSum(StoredBucket):
    """A run's counts as one bucket; its histogram comes from the run on first use."""

    __slots__ = ()

    @staticmethod
    def decode_hist(source: tuple[_Run, Callable[[Any], Counter[int]]]) -> Counter[int]:
        run, decode = source
        return run.merged_hist(decode)


class _TailSum(StoredBucket):
    """The newest buckets of a run as one bucket; its histogram is merged from their blobs on use."""

    __slots__ = ()

    @staticmethod
    def decode_hist(source: tuple[list[Any], Callable[[Any], Counter[int]]]) -> Counter[int]:
        blobs, decode = source
        hist: Counter[int] = Counter()
        for blob in blobs:
            if blob:
                hist_add(hist, decode(blob))
        return hist


class _KeySums(Lookup[Bucket]):
    """One signal's runs as one summed bucket per key, made when a check asks: they die
    young, so the garbage collector never has to promote and re-scan them. With ``since``
    set, only each run's buckets starting from then are summed (a window's recent part)."""

    __slots__ = ("decode", "runs", "signal", "since", "site", "start")

    def __init__(
        self,
        site: str,
        signal: str,
        start: int,
        runs: dict[str, _Run],
        decode: Callable[[Any], Counter[int]],
        since: float | None = None,
    ) -> None:
        self.site = site
        self.signal = signal
        self.start = start
        self.runs = runs
        self.decode = decode
        self.since = since

    def get(self, key: str, default: Any = None) -> Any:
        run = self.runs.get(key)
        if run is None or not run.starts:
            return default
        if self.since is None:
            return _RunSum.of(
                self.site, self.signal, key, self.start, run.total, run.bad, ((run, self.decode), None, None)
            )
        i = bisect.bisect_left(run.starts, self.since)
        if i == len(run.starts):
            return default
        return _TailSum.of(
            self.site,
            self.signal,
            key,
            self.start,
            sum(run.totals[i:]),
            sum(run.bads[i:]),
            ((run.hists[i:], self.decode), None, None),
        )

    def values(self) -> list[Bucket]:  # type: ignore[override]
        """Every key's sum, in one go (a view would look each key up twice)."""
        return [b for key in self.runs if (b := self.get(key)) is not None]

    def __iter__(self) -> Iterator[str]:
        return (key for key, run in self.runs.items() if run.starts)


class _Sums(Lookup[Mapping[str, Bucket]]):
    """A site's runs, by signal and key (:data:`~nextmonth_health.store.base.SiteSums`);
    with ``since`` set, only their buckets starting from then."""

    __slots__ = ("decode", "runs", "since", "site", "start")

    def __init__(
        self,
        site: str,
        start: int,
        runs: dict[str, dict[str, _Run]],
        decode: Callable[[Any], Counter[int]],
        since: float | None = None,
    ) -> None:
        self.site = site
        self.start = start
        self.runs = runs
        self.decode = decode
        self.since = since

    def get(self, signal: str, default: Any = None) -> Any:
        runs = self.runs.get(signal)
        if runs is None:
            return default
        return _KeySums(self.site, signal, self.start, runs, self.decode, self.since)

    def __iter__(self) -> Iterator[str]:
        since = self.since
        return (
            signal
            for signal, runs in self.runs.items()
            if any(run.starts and (since is None or run.starts[-1] >= since) for run in runs.values())
        )


class _Entry:
    __slots__ = ("late", "refresh_at", "runs", "settled", "start")

    def __init__(self, start: float, refresh_at: float, late: int) -> None:
        self.start = start  # complete from here on
        self.settled = start  # buckets starting before this are final
        self.refresh_at = refresh_at
        self.late = late  # the store's count of late writes when this was read whole
        self.runs: dict[str, dict[str, _Run]] = {}


class BucketCache:
    """Buckets (``width`` None) or roll-ups of one width, per site, read through ``store``:
    those of ``signals`` (a monitor's, plugins' own included)."""

    def __init__(
        self,
        store: Store,
        width: int | None = None,
        *,
        settle: float = SETTLE_SECONDS,
        refresh: float = REFRESH_SECONDS,
        signals: Sequence[str] = SIGNALS,
    ) -> None:
        self.store = store
        self.width = width
        #: What read_rows is told beyond the span: nothing without plugin signals, so a
        #: store written before them is called exactly as it always was.
        self._which: dict[str, Any] = {} if tuple(signals) == SIGNALS else {"signals": tuple(signals)}
        self.settle = settle
        self.refresh = refresh
        self._entries: dict[str, _Entry] = {}
        #: Buckets read from the store, in all: what the cache saves shows here.
        self.rows_read = 0

    def get(
        self, spans: Mapping[str, Span], now: float, marks: Mapping[str, tuple[int, int]] | None = None
    ) -> dict[str, SiteSums]:
        """Each site's buckets starting in its span, summed per signal and key (as
        :meth:`Store.sums` answers). The sums are valid during the pass they were
        read for: their histograms come from the cache on first use.

        ``marks``: the store's newest bucket and count of late writes per site
        (:meth:`Store.write_marks`): buckets settle only before the newest, and a site
        whose count moved since it was read whole is read whole again.

        Sites that need the same range read share one :meth:`Store.read_rows` call.
        Raises what the store raises; the sites of a failed call are forgotten.
        """
        reads: dict[tuple[float, float], list[str]] = defaultdict(list)
        entries = self._entries
        decode = self.store.decode_hist
        marks = marks or {}
        for site, (start, end, step) in spans.items():
            entry = entries.get(site)
            newest, writes = marks.get(site, (None, 0))
            if entry is None or start < entry.start or now >= entry.refresh_at or writes != entry.late:
                entry = entries[site] = _Entry(start, now + self._next_refresh(site, first=entry is None), writes)
                read_from = start
            else:
                read_from = max(start, entry.settled)
                # What left the span, and what is read again (not yet settled).
                if read_from < end or entry.start < start:
                    until = read_from if read_from < end else math.inf
                    for runs in entry.runs.values():
                        for run in runs.values():
                            run.keep(start, until, decode)
                    entry.start = start
            if read_from < end:
                reads[(read_from, end)].append(site)
            # Buckets that ended `settle` ago are final, but only up to what was read, and
            # only before the newest bucket written (writers' clocks may lag this one's).
            written = now if newest is None else min(now, newest + step)
            entry.settled = min(end, (written - self.settle) // step * step)
        for (start, end), sites in reads.items():
            try:
                rows = self.store.read_rows(sites, start, end, width=self.width, **self._which)
            except BaseException:
                self.forget(sites)
                raise
            self._add(rows, decode)
        result: dict[str, SiteSums] = {}
        for site, (start, _, _) in spans.items():
            result[site] = _Sums(site, int(start), entries[site].runs, decode)
        return result

    def recent(self, spans: Mapping[str, Span]) -> dict[str, SiteSums]:
        """The newest part of what :meth:`get` last returned for each site: its buckets
        starting in ``spans[site]`` (a window's last minute, ending where the window
        ends), summed from what is kept, with no store read. Valid during the same pass
        as that ``get``."""
        decode = self.store.decode_hist
        entries = self._entries
        return {
            site: _Sums(site, int(start), entries[site].runs, decode, start)
            for site, (start, _, _) in spans.items()
            if site in entries
        }

    def _add(self, rows: Iterable[Row], decode: Callable[[Any], Counter[int]]) -> None:
        entries = self._entries
        last_site = last_signal = None
        runs: dict[str, _Run] = {}
        n = 0
        for site, signal, key, start, total, bad, blob in rows:
            if signal != last_signal or site != last_site:
                last_site, last_signal = site, signal
                found = entries[site].runs
                runs = found.get(signal) or found.setdefault(signal, {})
            run = runs.get(key)
            if run is None:
                run = runs[key] = _Run()
            run.starts.append(start)
            run.totals.append(total)
            run.bads.append(bad)
            run.hists.append(blob)
            run.total += total
            run.bad += bad
            if run.hist is not None and blob:
                hist_add(run.hist, decode(blob))
            n += 1
        self.rows_read += n

    def _next_refresh(self, site: str, *, first: bool) -> float:
        """Seconds until a site is read whole again: ``refresh``, stretched by a per-site
        fraction the first time, so that sites do not all refresh on the same pass."""
        if first:
            return self.refresh * (1 + zlib.crc32(site.encode("utf-8", "surrogatepass")) % 1000 / 1000)
        return self.refresh

    def forget(self, sites: list[str] | None = None) -> None:
        """Drop what is kept of these sites (all of them by default); they are read whole next."""
        if sites is None:
            self._entries.clear()
        else:
            for site in sites:
                self._entries.pop(site, None)
