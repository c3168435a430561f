"""Timing helper shared by the benchmarks: timeit-style batches, measured honestly.

A statement is timed exactly as a user would write it (``monitor.record_request(route,
status, duration, user=user)``), inside a loop compiled from a template the way
:mod:`timeit` does it, over a pre-built list of inputs. What is measured:

* **batches** — the loop runs once over the inputs (10 000 calls); the per-call cost of
  a batch is its time divided by the number of calls, minus the cost of the same loop
  with an empty body (iteration and tuple unpacking). We report the median and minimum
  of those per-batch means, after a few untimed warm-up batches.

  Each batch is timed on two clocks. *CPU time* of the calling thread
  (``time.thread_time_ns``) is what the call costs the host; it does not count the
  moments the OS gave the CPU to another process, so it is what the goals are judged
  on. *Wall time* (``time.perf_counter_ns``) is reported next to it; on a quiet
  machine the two agree, and their ratio (``cpu_share``) says how busy the machine was.
* **single calls** — each call timed on its own with ``perf_counter_ns`` to get a tail
  (p99); the median cost of timing an empty body is subtracted. Timer resolution is
  tens of nanoseconds, so treat this as the shape of the tail, not a precise figure.

The garbage collector is disabled inside timed regions (as :mod:`timeit` does) and a
``between`` callback (e.g. ``monitor.flush``) runs outside them, followed by a
``gc.collect()``. Subjects compared with each other run over the same inputs in the same
process, **interleaved batch by batch** (round 1: ours, peer A, peer B; round 2: ...),
so load that comes and goes on the machine hits them alike and their ratio stays fair.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Subject", "Timing", "compare", "percentile", "time_callable"]

_BATCH = """
def _batch(_data, _wall, _cpu, {params}):
    _w0 = _wall()
    _c0 = _cpu()
    for {unpack} in _data:
{body}
    _c1 = _cpu()
    return _wall() - _w0, _c1 - _c0
"""

_SAMPLED = """
def _sampled(_data, _timer, _out, {params}):
    _append = _out.append
    for {unpack} in _data:
        _t0 = _timer()
{body}
        _append(_timer() - _t0)
"""

_WALL = time.perf_counter_ns
_CPU = time.thread_time_ns


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _r(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 1)


@dataclass
class Timing:
    """Per-call costs of one statement in nanoseconds, loop overhead already removed.

    ``median``/``min`` are CPU time of the calling thread; ``wall_*`` are wall-clock.
    """

    name: str
    cpu_means_ns: list[float]
    wall_means_ns: list[float]
    batch_size: int
    loop_overhead_ns: float = 0.0
    single_call_ns: list[float] = field(default_factory=list, repr=False)
    timer_overhead_ns: float = 0.0
    rounds: list[int] = field(default_factory=list, repr=False)  # the round of each batch

    @property
    def median(self) -> float:
        return _median(self.cpu_means_ns)

    @property
    def min(self) -> float:
        return min(self.cpu_means_ns)

    @property
    def max(self) -> float:
        return max(self.cpu_means_ns)

    @property
    def wall_median(self) -> float:
        return _median(self.wall_means_ns)

    @property
    def wall_min(self) -> float:
        return min(self.wall_means_ns)

    @property
    def cpu_share(self) -> float:
        """CPU time over wall time across the timed batches (1.0 = never descheduled)."""
        wall = sum(self.wall_means_ns)
        return sum(self.cpu_means_ns) / wall if wall > 0 else math.nan

    @property
    def p99(self) -> float:
        """p99 of individually timed calls (wall clock, timer cost removed); NaN if none."""
        return percentile(self.single_call_ns, 99) if self.single_call_ns else math.nan

    @property
    def p50_single(self) -> float:
        return percentile(self.single_call_ns, 50) if self.single_call_ns else math.nan

    def paired_ratio(self, baseline: Timing) -> float:
        """Median over shared rounds of (this batch / baseline batch), CPU time.

        Batches of the same round ran moments apart, so this ratio shrugs off load that
        comes and goes on the machine even better than a ratio of two medians.
        """
        theirs = dict(zip(baseline.rounds, baseline.cpu_means_ns, strict=True))
        ratios = [m / theirs[r] for r, m in zip(self.rounds, self.cpu_means_ns, strict=True) if r in theirs]
        return _median(ratios)

    def to_json(self) -> dict[str, Any]:
        return {
            "median_ns": _r(self.median),
            "min_ns": _r(self.min),
            "max_batch_ns": _r(self.max),
            "wall_median_ns": _r(self.wall_median),
            "wall_min_ns": _r(self.wall_min),
            "cpu_share": round(self.cpu_share, 3),
            "p99_ns": _r(self.p99),
            "p50_single_call_ns": _r(self.p50_single),
            "batches": len(self.cpu_means_ns),
            "batch_size": self.batch_size,
            "loop_overhead_ns": _r(self.loop_overhead_ns),
            "timer_overhead_ns": _r(self.timer_overhead_ns),
            "single_call_samples": len(self.single_call_ns),
            "cpu_batch_means_ns": [round(x, 1) for x in self.cpu_means_ns],
        }


def _compile(template: str, name: str, unpack: str, body: Sequence[str], env: Mapping[str, Any]) -> Callable[..., Any]:
    indent = " " * 8  # both templates put the statement inside a `for` inside a `def`
    source = template.format(
        params=", ".join(env) or "_unused=None",
        unpack=unpack,
        body="\n".join(indent + line for line in body),
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<benchmark {name}>", "exec"), namespace)  # noqa: S102 - our own template
    return namespace[name]


def _quiet(gc_enabled: bool, run: Callable[..., Any], *args: Any) -> Any:
    """Run ``run(*args)`` with the collector off (unless asked otherwise), then restore it."""
    was_enabled = gc.isenabled()
    if not gc_enabled:
        gc.disable()
    try:
        return run(*args)
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Subject:
    """One statement to time: what a user writes, the objects it names, and its upkeep."""

    name: str
    stmt: str | Sequence[str]
    env: Mapping[str, Any]
    between: Callable[[], Any] | None = None  # runs after each batch, untimed (e.g. flush)
    every: int = 1  # take part in one round out of ``every`` (for slow peers)
    warmup: int = 3  # untimed batches before timing starts
    single_samples: int = 0  # individually timed calls for the p99; 0 = none


def compare(
    subjects: Sequence[Subject],
    *,
    unpack: str,
    data: Sequence[Any],
    rounds: int = 30,
    gc_enabled: bool = False,
) -> dict[str, Timing]:
    """Time every subject over the same ``data``, interleaved round by round.

    In each round every subject runs one batch (one pass over ``data``), so a burst of
    load from elsewhere on the machine hits all of them alike and their ratio stays
    fair. A subject with ``every=k`` runs in one round out of k (fewer, spread batches).
    """
    n = len(data)
    compiled = []
    for subject in subjects:
        body = [subject.stmt] if isinstance(subject.stmt, str) else list(subject.stmt)
        args = tuple(subject.env.values())
        batch = _compile(_BATCH, "_batch", unpack, body, subject.env)
        empty = _compile(_BATCH, "_batch", unpack, ["pass"], subject.env)
        compiled.append((subject, body, args, batch, empty))

    def settle(subject: Subject) -> None:
        if subject.between is not None:
            subject.between()
        gc.collect()

    overhead: dict[str, tuple[float, float]] = {}
    for subject, _, args, batch, empty in compiled:
        for _ in range(subject.warmup):
            _quiet(gc_enabled, batch, data, _WALL, _CPU, *args)
            settle(subject)
        loops = [_quiet(gc_enabled, empty, data, _WALL, _CPU, *args) for _ in range(5)]
        overhead[subject.name] = (
            _median([w for w, _ in loops]) / n,
            _median([c for _, c in loops]) / n,
        )

    wall: dict[str, list[float]] = {s.name: [] for s in subjects}
    cpu: dict[str, list[float]] = {s.name: [] for s in subjects}
    taken: dict[str, list[int]] = {s.name: [] for s in subjects}
    for r in range(rounds):
        for subject, _, args, batch, _ in compiled:
            if r % subject.every:
                continue
            settle(subject)
            w, c = _quiet(gc_enabled, batch, data, _WALL, _CPU, *args)
            wall_loop, cpu_loop = overhead[subject.name]
            wall[subject.name].append(w / n - wall_loop)
            cpu[subject.name].append(c / n - cpu_loop)
            taken[subject.name].append(r)
    timings = {}
    for subject, body, args, _, _ in compiled:
        settle(subject)
        timing = Timing(
            subject.name,
            cpu[subject.name],
            wall[subject.name],
            n,
            loop_overhead_ns=overhead[subject.name][1],
            rounds=taken[subject.name],
        )
        if subject.single_samples:
            _sample_single(timing, subject, body, args, unpack, data, gc_enabled, settle)
        timings[subject.name] = timing
    return timings


def _sample_single(
    timing: Timing,
    subject: Subject,
    body: list[str],
    args: tuple[Any, ...],
    unpack: str,
    data: Sequence[Any],
    gc_enabled: bool,
    settle: Callable[[Subject], None],
) -> None:
    sampled = _compile(_SAMPLED, "_sampled", unpack, body, subject.env)
    empty = _compile(_SAMPLED, "_sampled", unpack, ["pass"], subject.env)
    zero: list[int] = []
    raw: list[int] = []
    _quiet(gc_enabled, empty, data, _WALL, zero, *args)
    while len(raw) < subject.single_samples:
        settle(subject)
        _quiet(gc_enabled, sampled, data, _WALL, raw, *args)
    settle(subject)
    timing.timer_overhead_ns = _median(zero)
    timing.single_call_ns = [t - timing.timer_overhead_ns for t in raw[: subject.single_samples]]


def time_callable(
    name: str,
    setup: Callable[[], Any],
    run: Callable[[Any], Any],
    *,
    per: int,
    repeats: int = 5,
    warmup: int = 1,
    gc_enabled: bool = False,
) -> Timing:
    """Time ``run(setup())`` ``repeats`` times; report the cost per one of ``per`` items.

    ``setup`` is not timed (e.g. filling a buffer); ``run`` is (e.g. flushing it).
    """
    for _ in range(warmup):
        state = setup()
        _quiet(gc_enabled, run, state)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeats):
        state = setup()
        gc.collect()
        w, c = _quiet(gc_enabled, _timed, run, state)
        wall.append(w / per)
        cpu.append(c / per)
        state = None  # let what the run left behind go before the next setup
    return Timing(name, cpu, wall, per)


def _timed(run: Callable[[Any], Any], state: Any) -> tuple[int, int]:
    w0, c0 = _WALL(), _CPU()
    run(state)
    c1 = _CPU()
    return _WALL() - w0, c1 - c0
