"""The five built-in signals, how a plugin's own signal may be named, and what one time
bucket of a signal holds.

A plugin declares signals of its own (the ``register_signals`` hook) and records them with
``Monitor.record``; they land in the same buckets as the built-in ones, so every store
keeps them, and checks read them the same way. A bucket is the unit every store keeps: per (site, signal, key, start) it counts events,
the bad ones among them, a log-scale histogram of values (durations, load times) and the
distinct users behind all events and behind the bad ones. All parts merge by addition
(or union), so buckets written by many processes add up to the truth.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Final

from .sketch import EXACT_LIMIT, DistinctCounter

__all__ = [
    "LOGIN",
    "PAGE_LOAD",
    "REQUEST",
    "SESSION_EXPIRED",
    "SIGNALS",
    "UPLOAD",
    "Bucket",
    "hist_add",
    "hist_index",
    "hist_quantile",
    "hist_value",
    "signal_name_error",
]

REQUEST: Final = "request"
LOGIN: Final = "login"
SESSION_EXPIRED: Final = "session_expired"
UPLOAD: Final = "upload"
PAGE_LOAD: Final = "page_load"
SIGNALS: Final = (REQUEST, LOGIN, SESSION_EXPIRED, UPLOAD, PAGE_LOAD)

OTHER: Final = "other"

#: A plugin signal's name: stored in every store's keys (a Redis key part, an SQLite
#: column), written in checks and logs, so plain and short.
_SIGNAL_NAME: Final = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


def signal_name_error(name: object) -> str | None:
    """Why ``name`` cannot be a plugin's signal, said of the plugin declaring it; None when it can.

    A plugin's signal shares every store with the built-in ones, keyed by its name alone:
    a name that clashes with a built-in one would mix two meanings in one series, so it is
    refused when the monitor is built, not found out in a chart.
    """
    if name in SIGNALS:
        return (
            f"declared the signal {name!r}, which is built in (one of {', '.join(SIGNALS)}): "
            f"name yours after your plugin, e.g. 'acme.{name}'"
        )
    if type(name) is not str:
        return (
            f"declared a signal named {name!r}: a signal's name is a plain str (of an Enum, its .value), "
            "recorded and stored as it is"
        )
    if not _SIGNAL_NAME.fullmatch(name):
        return (
            f"declared a signal named {name!r}: a signal's name is a lowercase letter, then lowercase "
            "letters, digits, '_', '.' or '-', 64 characters at most, e.g. 'acme.queue_wait'"
        )
    return None


_HIST_BASE: Final = 0.001
_HIST_GAMMA: Final = 1.05
_HIST_LOG_GAMMA: Final = math.log(_HIST_GAMMA)
HIST_MAX_INDEX: Final = 400


def hist_index(value: float) -> int:
    """The histogram slot of a value: ~5 % wide slots from 1 ms up to about 5 hours."""
    if value <= _HIST_BASE:
        return 0
    return min(HIST_MAX_INDEX, int(math.log(value / _HIST_BASE) / _HIST_LOG_GAMMA) + 1)


def hist_value(index: int) -> float:
    """A representative value of a slot (its geometric midpoint)."""
    if index <= 0:
        return _HIST_BASE
    step: float = _HIST_GAMMA ** (index - 0.5)  # float ** float is typed Any
    return _HIST_BASE * step


def hist_add(hist: Counter[int], other: Mapping[int, int]) -> None:
    """Add ``other``'s counts into ``hist``: ``Counter.update`` without its slow type check
    (an ABC ``isinstance`` per call, the larger part of merging a small histogram)."""
    get = hist.get
    for slot, n in other.items():
        hist[slot] = get(slot, 0) + n


def hist_quantile(hist: Counter[int], q: float) -> float | None:
    """The q-quantile of a histogram's values, within ~2.5 %, or None when it is empty."""
    n = sum(hist.values())
    if not n:
        return None
    rank = q * n
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return hist_value(index)
    return hist_value(max(hist))


class Bucket:
    """Counts for one (site, signal, key) over one bucket of time, or over a merged window."""

    __slots__ = ("bad", "bad_users", "hist", "key", "signal", "site", "start", "total", "users")

    def __init__(self, site: str, signal: str, key: str, start: int, *, exact_users: bool = False) -> None:
        self.site = site
        self.signal = signal
        self.key = key
        self.start = start
        self.total = 0
        self.bad = 0
        self.hist: Counter[int] = Counter()
        limit = None if exact_users else EXACT_LIMIT
        self.users = DistinctCounter(limit)
        self.bad_users = DistinctCounter(limit)

    def compact(self) -> Bucket:
        """Bound the user sketches of a delta built with ``exact_users`` before keeping it."""
        self.users.compact()
        self.bad_users.compact()
        return self

    def add_counts(self, other: Bucket) -> None:
        """Add another bucket's counts and values, leaving the user sketches alone."""
        self.total += other.total
        self.bad += other.bad
        if other.hist:
            hist_add(self.hist, other.hist)

    def merge(self, other: Bucket) -> None:
        self.add_counts(other)
        self.users.merge(other.users)
        self.bad_users.merge(other.bad_users)

    def copy(self) -> Bucket:
        clone = Bucket(self.site, self.signal, self.key, self.start)
        clone.merge(self)
        return clone

    @property
    def ratio(self) -> float:
        """Bad events over all events (0 when there were none)."""
        return self.bad / self.total if self.total else 0.0

    @property
    def samples(self) -> int:
        return sum(self.hist.values())

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the recorded values, within ~2.5 %, or None with no samples."""
        return hist_quantile(self.hist, q)

    def __repr__(self) -> str:
        return (
            f"Bucket({self.site!r}, {self.signal!r}, {self.key!r}, start={self.start}, "
            f"total={self.total}, bad={self.bad}, users={len(self.users)}, bad_users={len(self.bad_users)})"
        )
