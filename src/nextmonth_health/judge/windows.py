"""What a check sees of one site: windows of recorded signals, and who was behind them.

Checks never talk to the store. They ask a :class:`SiteView` for a :class:`Window` ("the
last five minutes of requests on /media-upload", read from the raw buckets), the recent
part of it ("the last minute", where a sharp outage shows first and a recovery shows
soonest), or a baseline ("the hour before the window", read from five-minute roll-ups, so
an hour costs twelve rows, not 360 buckets), and for the distinct users behind a window
(:meth:`SiteView.users`) or an incident (:meth:`SiteView.affected`), which the store
counts in whatever way suits it. A view reads each series at most once per pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple

from ..settings import Settings
from ..signals import Bucket, hist_add, hist_index, hist_quantile
from ..store.base import SiteSums, Store
from ..values import Health, Incident

__all__ = ["AHEAD_SECONDS", "BASELINE_ROLLUP", "Keys", "SiteView", "Spans", "Window"]

#: One key (``"/bookings"``), several, or ``None`` for every key of a signal.
Keys = str | Iterable[str] | None

#: Roll-up width baselines are read from; a baseline starts and ends on its edges.
BASELINE_ROLLUP = 300


def _health(value: Health | str) -> Health:
    """A :class:`Health` from a member or its string, as :class:`Reading` takes either: a
    check can pass the status it is about to read out (``"degraded"``) to the view."""
    return value if value.__class__ is Health else Health(value)


def _wanted(keys: Keys) -> set[str] | None:
    return {keys} if isinstance(keys, str) else (None if keys is None else set(keys))


#: Key collections a one-key window is often asked with (``dashboard_pages``).
_ONE_OF = (tuple, list)


def _pick(sums: SiteSums, signal: str, keys: Keys) -> Sequence[Bucket]:
    """The summed buckets of ``keys`` (each once) among what a pass read for a signal."""
    by_key = sums.get(signal)
    if by_key is None:
        return ()
    if type(keys) in _ONE_OF and len(keys) == 1:  # type: ignore[arg-type]
        keys = keys[0]  # type: ignore[index]
    if isinstance(keys, str):
        bucket = by_key.get(keys)
        return () if bucket is None else (bucket,)
    if keys is None:
        found = by_key.values()
        return found if isinstance(found, list) else list(found)
    return [b for key in dict.fromkeys(keys) if (b := by_key.get(key)) is not None]


class Window:
    """Counts and values of one signal over a span, merged over keys.

    Totals are summed when the window is made; the histogram of values is merged only
    if a quantile is asked for, since most checks need ratios alone.
    """

    __slots__ = ("_buckets", "_hist", "_samples", "bad", "end", "signal", "start", "total")

    def __init__(self, signal: str, start: float, end: float, buckets: Sequence[Bucket]) -> None:
        self.signal = signal
        self.start = start
        self.end = end
        if len(buckets) == 1:  # the usual case: one key, read as its sum over the window
            self.total = buckets[0].total
            self.bad = buckets[0].bad
        else:
            self.total = sum(b.total for b in buckets)
            self.bad = sum(b.bad for b in buckets)
        self._buckets = buckets
        self._hist: Counter[int] | None = None
        self._samples: int | None = None

    @property
    def ratio(self) -> float:
        """Bad events over all events (0 when there were none)."""
        return self.bad / self.total if self.total else 0.0

    @property
    def hist(self) -> Counter[int]:
        """The window's values by histogram slot (read-only: it may be a bucket's own)."""
        if self._hist is None:
            buckets = self._buckets
            if len(buckets) == 1:  # one key's sum: its histogram is already the window's
                self._hist = buckets[0].hist
            else:
                self._hist = Counter()
                for bucket in buckets:
                    if bucket.hist:
                        hist_add(self._hist, bucket.hist)
        return self._hist

    @property
    def samples(self) -> int:
        """How many values (durations, load times) the window holds."""
        if self._samples is None:
            self._samples = sum(self.hist.values())
        return self._samples

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the window's values, within ~2.5 %, or None with no samples."""
        return hist_quantile(self.hist, q)

    def above(self, value: float) -> int:
        """How many of the window's values are surely above ``value``: those in histogram
        slots wholly above it (the slot holding ``value`` itself is left out)."""
        slot = hist_index(value)
        return sum(n for index, n in self.hist.items() if index > slot)

    def __repr__(self) -> str:
        return f"Window({self.signal!r}, {self.start}..{self.end}, total={self.total}, bad={self.bad})"


#: A writer's clock may run ahead of the evaluator's (hosts drift; a VM resumes behind):
#: windows also hold the buckets of this many seconds past the end of the one ``now`` is
#: in, so such a writer's counts are judged at once rather than when the evaluator's clock
#: catches up. While clocks agree there are no such buckets, and nothing changes.
AHEAD_SECONDS: Final = 60


class UsersOf(NamedTuple):
    """One part of "who was hurt": the users behind a signal (and keys), or only those whose
    event went wrong (``bad_only``). ``view.users(UsersOf(REQUEST, "/media-upload",
    bad_only=True))`` counts the people who got a 5xx there; a plain ``(signal, keys,
    bad_only)`` tuple is read the same way."""

    signal: str
    keys: Keys = None
    bad_only: bool = False


class Spans(NamedTuple):
    """The ranges a view of one moment reads, each as ``(start, end)``."""

    #: The window's raw buckets: ``window_seconds`` up to the end of the bucket now is in,
    #: and the ``AHEAD_SECONDS`` after it.
    window: tuple[float, float]
    #: Its last ``fast_window_seconds``.
    recent: tuple[float, float]
    #: The baseline's five-minute roll-ups: ``baseline_seconds`` before the window.
    baseline: tuple[float, float]


class SiteView:
    """One site's recorded signals as of ``now``, for one evaluation pass."""

    def __init__(
        self,
        site: str,
        now: float,
        settings: Settings,
        store: Store,
        incidents: Mapping[tuple[str, str], Incident] | None = None,
        *,
        window: SiteSums | None = None,
        baseline: SiteSums | None = None,
        recent: SiteSums | None = None,
    ) -> None:
        self.site = site
        self.now = now
        self.settings = settings
        self._store = store
        self._incidents = incidents or {}
        spans = self.spans(now, settings)
        self._window_start, self._until = spans.window
        self._recent_start = spans.recent[0]
        self._baseline_span = spans.baseline
        #: The end of the bucket now is in: the freshest counts are judged too. Windows
        #: also hold the buckets of the next ``AHEAD_SECONDS`` (see :data:`AHEAD_SECONDS`).
        self.end = self._until - AHEAD_SECONDS
        self._read_window = window
        self._read_baseline = baseline
        self._read_recent = recent
        # What the view reads from the store itself (spans other than the pass's) and the
        # windows it made, kept for the checks that ask again.
        self._fine: dict[tuple[str, float], Sequence[Bucket]] = {}
        self._by_key: dict[tuple[str, float, str], list[Bucket]] = {}
        self._grouped: set[tuple[str, float]] = set()
        self._coarse: dict[str, Sequence[Bucket]] = {}
        self._wholes: dict[tuple[str, float], Window] = {}

    @staticmethod
    def spans(now: float, settings: Settings) -> Spans:
        """The ranges a view of ``now`` reads: its window's buckets, their recent part, and
        its baseline's roll-ups.

        The evaluator reads them for many sites at once and hands them in as ``window``,
        ``recent`` and ``baseline``: each series summed over its range, by signal and key
        (:meth:`Store.sums <nextmonth_health.store.base.Store.sums>`).
        """
        step = settings.bucket_seconds
        end = (int(now) // step) * step + step
        window_start = end - settings.window_seconds
        baseline_end = window_start - window_start % BASELINE_ROLLUP
        until = end + AHEAD_SECONDS
        return Spans(
            (window_start, until),
            (end - settings.fast_window_seconds, until),
            (baseline_end - settings.baseline_seconds, baseline_end),
        )

    def incident(self, check: str, key: str) -> Incident | None:
        """The open incident of a check and key, if any.

        Checks judge recovery against the reference they had when the incident opened
        (its ``threshold``), because the trailing baseline fills up with the incident.
        """
        return self._incidents.get((check, key))

    def _series(self, signal: str, start: float) -> Sequence[Bucket]:
        """A signal's buckets starting in ``[start, end)``: for the window, what the pass
        handed in (one summed bucket per key); for any other span, read from the store."""
        rows = self._fine.get((signal, start))
        if rows is None:
            if self._read_window is not None and start == self._window_start:
                rows = _pick(self._read_window, signal, None)
            else:
                rows = self._store.read(self.site, signal, start, self._until)
            self._fine[(signal, start)] = rows
        return rows

    def _cells(self, signal: str, keys: Keys, start: float) -> Sequence[Bucket]:
        if self._read_window is not None and start == self._window_start:
            return _pick(self._read_window, signal, keys)
        series = self._series(signal, start)
        if isinstance(keys, str):
            if (signal, start) not in self._grouped:
                self._group(signal, start, series)
            return self._by_key.get((signal, start, keys), ())
        if keys is not None:
            wanted = set(keys)
            return [b for b in series if b.key in wanted]
        return series

    def _group(self, signal: str, start: float, series: Sequence[Bucket]) -> None:
        """Split a signal's buckets by key in one go: checks ask for several keys of one signal."""
        self._grouped.add((signal, start))
        by_key = self._by_key
        for bucket in series:
            rows = by_key.get((signal, start, bucket.key))
            if rows is None:
                rows = by_key[(signal, start, bucket.key)] = []
            rows.append(bucket)

    def keys(self, signal: str) -> set[str]:
        """Keys (routes, pages) with anything recorded in the window."""
        return {b.key for b in self._series(signal, self._window_start)}

    def window(self, signal: str, keys: Keys = None, *, seconds: float | None = None) -> Window:
        """The last ``seconds`` (default: ``window_seconds``) of a signal, from raw buckets.

        A signal's whole window (``keys`` None) is summed once per view: several checks ask
        for it (the site-wide key, the traffic a baseline is measured against).
        """
        if keys is None:
            memo = (signal, -1.0 if seconds is None else seconds)
            found = self._wholes.get(memo)
            if found is None:
                found = self._wholes[memo] = self._window(signal, None, seconds)
            return found
        return self._window(signal, keys, seconds)

    def _window(self, signal: str, keys: Keys, seconds: float | None) -> Window:
        if seconds is None and self._read_window is not None:  # what checks ask most
            return Window(signal, self._window_start, self.end, _pick(self._read_window, signal, keys))
        span = self.settings.window_seconds if seconds is None else seconds
        start = self.end - span
        if start == self._recent_start and self._read_recent is not None:
            return Window(signal, start, self.end, _pick(self._read_recent, signal, keys))
        return Window(signal, start, self.end, self._cells(signal, keys, start))

    def recent(self, signal: str, keys: Keys = None) -> Window:
        """The window's last ``fast_window_seconds`` (a minute): where a sharp outage shows
        first, and where a recovery shows soonest."""
        return self.window(signal, keys, seconds=self.settings.fast_window_seconds)

    def learning(self, signal: str, keys: Keys = None) -> bool:
        """True while the baseline of a signal (and keys) is still being learned.

        That is when it holds less than ``baseline_min_share`` of what the window's traffic
        would fill it with: a site (or route) that just started recording, that came back
        after a quiet spell, or whose traffic jumped. Relative checks then have no usual
        level worth comparing with, and judge on fixed lines only. The baseline lives in
        the store, so a restart with SQLite or Redis is not a cold start.
        """
        s = self.settings
        window = self.window(signal, keys).total
        expected = window * s.baseline_seconds / s.window_seconds
        return window > 0 and self.baseline(signal, keys).total < s.baseline_min_share * expected

    def baseline(self, signal: str, keys: Keys = None) -> Window:
        """The ``baseline_seconds`` before the window, on five-minute edges: what normal looked like."""
        if keys is None:
            found = self._wholes.get((signal, 0.0))
            if found is None:
                found = self._wholes[(signal, 0.0)] = self._baseline(signal, None)
            return found
        return self._baseline(signal, keys)

    def _baseline(self, signal: str, keys: Keys) -> Window:
        start, end = self._baseline_span
        if self._read_baseline is not None:
            return Window(signal, start, end, _pick(self._read_baseline, signal, keys))
        rows = self._coarse.get(signal)
        if rows is None:
            rows = self._coarse[signal] = self._store.read_rollup(self.site, signal, BASELINE_ROLLUP, start, end)
        wanted = _wanted(keys)
        return Window(signal, start, end, [b for b in rows if wanted is None or b.key in wanted])

    def affected(self, health: Health | str, check: str, key: str, *parts: UsersOf | tuple[str, Keys, bool]) -> int:
        """The distinct users to report with a reading of ``health``: those behind the parts
        since the check's incident for ``key`` opened (the union over its life, from the
        window before it opened), or in the window when none is open; 0 when they cannot
        change anything.

        They matter for a problem reading (they open or update an incident) and for an
        elevated one while the incident is open (a rise updates it); counting them is a
        store read, skipped for every other reading. The raw buckets users are counted
        from are kept ``history_seconds``: an incident older than that counts the people
        of its last ``history_seconds``, and its stored count never goes down.
        """
        health = _health(health)
        incident = self._incidents.get((check, key))
        if incident is None:
            return self.users(*parts) if health.is_problem else 0
        if health.is_problem or health is Health.ELEVATED:
            s = self.settings
            since = max(incident.opened_at.timestamp() - s.window_seconds, self.end - s.history_seconds)
            return self.users(*parts, seconds=self.end - since)
        return 0

    def affected_now(
        self, health: Health | str, check: str, key: str, *parts: UsersOf | tuple[str, Keys, bool]
    ) -> int | None:
        """The people hurt in the window now, for a reading that keeps the check's open
        incident for ``key`` going (a reading's ``affected_now``); None with no incident
        open or a healthy reading: nothing to count, no store read.
        """
        if _health(health) is Health.OK or (check, key) not in self._incidents:
            return None
        return self.users(*parts)

    def users(self, *parts: UsersOf | tuple[str, Keys, bool], seconds: float | None = None) -> int:
        """Distinct users behind the window of one or more :class:`UsersOf` parts.

        ``view.users(UsersOf(REQUEST, "/media-upload", bad_only=True))`` counts the users who
        got a 5xx there; several parts count their union, e.g. users who failed to sign in *or*
        lost their session. Exact up to 512 users, estimated within a few percent beyond.
        """
        span = self.settings.window_seconds if seconds is None else seconds
        wanted = [(signal, None if keys is None else sorted(_wanted(keys) or ()), bad) for signal, keys, bad in parts]
        start = self.end - span
        start -= start % self.settings.bucket_seconds
        return self._store.window_users(self.site, wanted, start, self._until)
