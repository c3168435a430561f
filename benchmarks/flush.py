"""Flush throughput: events/s one process records while its flusher writes to each store.

For each store (``memory://``, a fresh ``sqlite:///<tmp>/bench.db``, ``redis://`` on a
private ``redis-server``) a :class:`~nextmonth_health.Monitor` runs its real background
machinery — ``monitor.start()``: the runner thread, the real ``SystemClock``, a flush
every ``flush_seconds=1`` (in a worker thread for a blocking store) — while the main
thread calls ``record_request`` / ``record_page_load`` / ``record_login`` /
``record_upload`` over pre-built mixed events, paced at 100 k events/s (the goal's rate;
unpaced, ``record_*`` outruns any flush ~10 to 1 and the run would only measure drops —
one unpaced row shows that). Two shapes of traffic:

* **1 site** — what one app embeds: five routes, 1,000 users. Each flush folds a second
  of events into a few dozen buckets: the fold (Python, holding the GIL) is the work,
  the store write is small.
* **1,000 sites** — a multi-tenant host: the same events spread round-robin over 1,000
  sites, so a flush writes ~10,000 buckets: the store write is a large part of the work.

Measured: events recorded and flushed per second, each flush (wall and CPU time, and the
part spent in ``store.write``, by wrapping the two methods on the instances), the
buffer's high-water mark (what a flush found waiting), drops, and the wall time of each
chunk of 500 ``record_*`` calls (a flush holding the GIL stalls them). ``tick_seconds``
is an hour so the runner's first evaluation (at start, of an empty store) is the only one.

The flusher drains the whole buffer every time, so it cannot fall behind by a count: a
flusher slower than the traffic shows as flushes growing each time until the buffer is
full, then drops. Hence the goals: the flush's capacity (events per second of flushing)
at least the producer's rate, no drops, and ``store.write`` alone absorbing at least
100 k events/s at the batch shape seen.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import workload
from _report import Goal, Row, Section, fmt_ns
from tick import StoreSpec, machine_note, machine_reference_us, process_cpu_seconds, quiet_logs, stores

import nextmonth_health as nmh

__all__ = ["run"]

GOAL_EVENTS_PER_S = 100_000
SHAPES = (("1 site", 1), ("1,000 sites", 1000))
EVENTS = 50_000  # pre-built events, replayed in a loop


@dataclass
class Batch:
    started: float  # perf_counter
    wall: float  # seconds
    cpu: float  # thread CPU seconds (the flushing thread)
    events: int
    waiting: int  # events in the buffer when the flush began
    store_wall: float = 0.0
    store_cpu: float = 0.0
    buckets: int = 0


@dataclass
class Result:
    store: str
    shape: str
    sites: int
    rate: float = math.inf  # the producer's pace, events/s
    seconds: float = 0.0
    recorded: int = 0
    alone_per_s: float = math.nan
    batches: list[Batch] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    drained_s: float = math.nan  # after the producer stopped, until the flush in progress ended
    server_cpu_s: float = math.nan
    process_cpu_s: float = math.nan
    chunk_times: list[float] = field(default_factory=list)  # seconds per 500 record_* calls
    leftover: int = 0  # events still buffered when the producer stopped (discarded)

    @property
    def recorded_per_s(self) -> float:
        return self.recorded / self.seconds

    def _during(self) -> list[Batch]:
        """The flushes that folded anything (the runner's start-up flush of an empty buffer
        is left out; the last one, after the producer stopped, is in)."""
        return [b for b in self.batches if b.events]

    @property
    def flushed_per_s(self) -> float:
        """Events the flushes that began during the run took from the buffer, per second from
        the producer's start to the last of them (each takes all that arrived before it)."""
        during = [b for b in self.batches if self._started <= b.started <= self._stopped and b.events]
        if not during:
            return math.nan
        return sum(b.events for b in during) / (during[-1].started - self._started)

    _started: float = 0.0
    _stopped: float = math.inf

    def totals(self) -> dict[str, float]:
        during = self._during() or self.batches
        events = sum(b.events for b in during)
        wall = sum(b.wall for b in during)
        store = sum(b.store_wall for b in during)
        return {
            "events": events,
            "wall": wall,
            "store_wall": store,
            "store_cpu": sum(b.store_cpu for b in during),
            "cpu": sum(b.cpu for b in during),
            "buckets": sum(b.buckets for b in during),
        }

    @property
    def store_capacity(self) -> float:
        """Events/s ``store.write`` could take at this batch shape (events / its wall time)."""
        t = self.totals()
        return t["events"] / t["store_wall"] if t["store_wall"] > 0 else math.inf

    @property
    def flusher_capacity(self) -> float:
        """Events/s the whole flush (fold + write) could take: events / flush wall time."""
        t = self.totals()
        return t["events"] / t["wall"] if t["wall"] > 0 else math.inf

    @property
    def busy(self) -> float:
        """Share of the run the flusher spent flushing (≥ 1: it never rested)."""
        return sum(b.wall for b in self.batches if b.started <= self._stopped) / self.seconds

    @property
    def peak(self) -> int:
        return max((b.waiting for b in self.batches), default=0)

    def to_json(self) -> dict[str, Any]:
        t = self.totals()
        walls = [b.wall for b in self._during()]
        return {
            "store": self.store,
            "shape": self.shape,
            "sites": self.sites,
            "seconds": round(self.seconds, 2),
            "recorded": self.recorded,
            "recorded_per_s": round(self.recorded_per_s),
            "producer_alone_per_s": None if math.isnan(self.alone_per_s) else round(self.alone_per_s),
            "flushed_per_s": None if math.isnan(self.flushed_per_s) else round(self.flushed_per_s),
            "store_capacity_per_s": None if math.isinf(self.store_capacity) else round(self.store_capacity),
            "flusher_capacity_per_s": None if math.isinf(self.flusher_capacity) else round(self.flusher_capacity),
            "flusher_busy": round(self.busy, 3),
            "buffer_peak_events": self.peak,
            "drops": self.drops,
            "internal_errors": self.errors,
            "drained_seconds": None if math.isnan(self.drained_s) else round(self.drained_s, 2),
            "leftover_discarded": self.leftover,
            "process_cpu_seconds": round(self.process_cpu_s, 2),
            "server_cpu_seconds": None if math.isnan(self.server_cpu_s) else round(self.server_cpu_s, 2),
            "flush_median_ms": round(statistics.median(walls) * 1000, 2) if walls else None,
            "record_chunk_ms": _quantiles(self.chunk_times),
            "buckets_per_flush": round(t["buckets"] / max(1, len(self._during())), 1),
            "batches": [
                {
                    "at": round(b.started, 3),
                    "wall_ms": round(b.wall * 1000, 2),
                    "cpu_ms": round(b.cpu * 1000, 2),
                    "store_wall_ms": round(b.store_wall * 1000, 2),
                    "store_cpu_ms": round(b.store_cpu * 1000, 2),
                    "events": b.events,
                    "buckets": b.buckets,
                    "waiting": b.waiting,
                }
                for b in self.batches
            ],
        }


def _events(sites: int) -> list[tuple[Any, ...]]:
    """Rows ``(kind, a, b, c, d, site)``: the mixed workload's arguments padded to four."""
    names = [f"site-{i:04d}" for i in range(sites)]
    rows = []
    for i, (kind, args) in enumerate(workload.mixed_events(EVENTS)):
        site = names[i % sites] if sites > 1 else None
        rows.append((kind, *args, *(None,) * (4 - len(args)), site))
    return rows


def _produce(
    monitor: nmh.Monitor,
    rows: list[tuple[Any, ...]],
    seconds: float,
    rate: float = math.inf,
    clear: bool = False,
    chunk_times: list[float] | None = None,
) -> tuple[int, float]:
    """Record ``rows`` over and over for ``seconds``, at most ``rate`` events/s (sleeping
    between chunks of 500 when ahead); returns (events, elapsed). ``chunk_times`` gets the
    wall time of each chunk of 500 calls: a flush holding the GIL shows there."""
    req, page, login, upload = (
        monitor.record_request,
        monitor.record_page_load,
        monitor.record_login,
        monitor.record_upload,
    )
    buffer = monitor.recorder.buffer
    chunks = [rows[i : i + 500] for i in range(0, len(rows), 500)]
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    times = chunk_times if chunk_times is not None else []
    woke = math.inf  # when the producer meant to wake from its last sleep (inf: it did not)
    while True:
        for chunk in chunks:
            # Timed from when it should have started: waiting for the GIL on waking counts.
            started = min(woke, time.perf_counter())
            woke = math.inf
            for kind, a, b, c, d, site in chunk:
                if kind == 0:
                    req(a, b, c, user=d, site=site)
                elif kind == 1:
                    page(a, b, user=c, site=site)
                elif kind == 2:
                    login(a, user=b, site=site)
                else:
                    upload(a, user=b, size=c, site=site)
            n += len(chunk)
            now = time.perf_counter()
            times.append(now - started)
            if now >= deadline:
                return n, now - t0
            if rate != math.inf:
                ahead = t0 + n / rate - now
                if ahead > 0:
                    woke = t0 + n / rate
                    time.sleep(ahead)
        if clear:
            del buffer[:]


def _producer_alone(rows: list[tuple[Any, ...]], seconds: float) -> tuple[float, list[float]]:
    """The same loop with no flusher (the buffer emptied after each pass): events/s, and
    the wall time of each chunk of 500 calls."""
    monitor = nmh.Monitor("bench", store="memory://", load_entrypoints=False)
    _produce(monitor, rows, 0.2, clear=True)
    times: list[float] = []
    n, elapsed = _produce(monitor, rows, seconds, clear=True, chunk_times=times)
    return n / elapsed, times


def _instrument(monitor: nmh.Monitor, batches: list[Batch]) -> None:
    """Time every flush and the ``store.write`` inside it (wrapping the instances' methods)."""
    recorder = monitor.recorder
    flush, store = recorder.flush, recorder.store
    write = store.write
    current: list[Batch] = []

    def timed_write(buckets: Any, **options: Any) -> None:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            write(buckets, **options)
        finally:
            if current:
                current[-1].store_wall += time.perf_counter() - w0
                current[-1].store_cpu += time.thread_time() - c0
                current[-1].buckets += len(buckets)

    def timed_flush() -> int:
        batch = Batch(time.perf_counter(), 0.0, 0.0, 0, recorder.buffered)
        current.append(batch)
        c0 = time.thread_time()
        try:
            batch.events = flush()
        finally:
            batch.cpu = time.thread_time() - c0
            batch.wall = time.perf_counter() - batch.started
            current.remove(batch)
            batches.append(batch)
        return batch.events

    recorder.flush = timed_flush  # type: ignore[method-assign]
    store.write = timed_write  # type: ignore[method-assign]


def measure(
    spec: StoreSpec,
    shape: str,
    sites: int,
    seconds: float,
    rows: list[tuple[Any, ...]],
    rate: float = GOAL_EVENTS_PER_S,
) -> Result:
    assert spec.url is not None
    spec.reset()
    result = Result(spec.name, shape, sites, rate=rate)
    monitor = nmh.Monitor("bench", store=spec.url, load_entrypoints=False, flush_seconds=1, tick_seconds=3600)
    _instrument(monitor, result.batches)
    gc.collect()
    monitor.start()
    try:
        time.sleep(0.3)  # the runner's start-up evaluation of an empty store
        s0, c0 = process_cpu_seconds(spec.server_pid), time.process_time()
        result._started = time.perf_counter()
        result.recorded, result.seconds = _produce(monitor, rows, seconds, rate, chunk_times=result.chunk_times)
        result._stopped = time.perf_counter()
        result.process_cpu_s = time.process_time() - c0
        result.server_cpu_s = process_cpu_seconds(spec.server_pid) - s0
        # What the producer left in the buffer is not part of the measure: drop it (so that
        # stop() has no big last flush to make) and wait for the flush in progress, which
        # is (bounded: a stuck store must not hang us).
        lock = monitor.recorder._lock  # held by every flush
        if lock.acquire(timeout=max(30.0, 3 * seconds)):
            try:
                result.leftover = monitor.recorder.buffered
                del monitor.recorder.buffer[:]
            finally:
                lock.release()
        result.drained_s = time.perf_counter() - result._stopped
    finally:
        monitor.stop()
        status = monitor.status()
        result.drops = dict(status.drops)
        result.errors = dict(status.internal_errors)
        monitor.store.close()
    return result


def _rate(x: float) -> str:
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "∞"
    return f"{x / 1e3:,.0f} k/s" if x < 1e7 else f"{x / 1e6:,.0f} M/s"


def run(quick: bool = False) -> list[Section]:
    seconds = 2.0 if quick else 5.0
    reference = [machine_reference_us()]
    section = Section(
        "flush throughput — record_* paced at 100 k events/s while monitor.start() flushes every second",
        (
            "recorded",
            "flushed",
            "flush p50",
            "flush max",
            "in store",
            "store cap.",
            "flush cap.",
            "busy",
            "peak buf",
            "drops",
        ),
    )
    results: list[Result] = []
    unavailable: dict[str, str] = {}
    rows_by_sites = {sites: _events(sites) for _, sites in SHAPES}
    alone = {sites: _producer_alone(rows, 0.5 if quick else 1.5) for sites, rows in rows_by_sites.items()}
    with quiet_logs(), stores() as specs:
        for spec in specs:
            if spec.url is None:
                unavailable[spec.name] = spec.reason
                section.rows.append(Row(spec.name, ("n/a",), f"n/a: {spec.reason}"))
                for what in ("flush capacity", "events dropped", "store.write capacity"):
                    section.goals.append(Goal(f"{spec.name}: {what} (n/a: {spec.reason})", math.nan, ">=", 0, ""))
                continue
            mine = []
            for shape, sites in SHAPES:
                r = measure(spec, shape, sites, seconds, rows_by_sites[sites])
                r.alone_per_s = alone[sites][0]
                mine.append(r)
                results.append(r)
                section.rows.append(_row(r))
            # The flusher keeps up for good only if it folds and writes faster than events
            # arrive: each flush takes what came during the previous one plus the 1 s pause,
            # so below that rate the batches (and the buffer) grow until events drop.
            worst = min(mine, key=lambda r: r.flusher_capacity / min(r.recorded_per_s, GOAL_EVENTS_PER_S))
            section.goals.append(
                Goal(
                    f"{spec.name}: flush capacity (events per second of flushing) over "
                    f"min(recorded/s, 100 k) (worst: {worst.shape})",
                    round(worst.flusher_capacity / min(worst.recorded_per_s, GOAL_EVENTS_PER_S), 2),
                    ">=",
                    1.0,
                    "x",
                )
            )
            section.goals.append(
                Goal(
                    f"{spec.name}: events dropped at 100 k/s in {seconds:g} s",
                    sum(sum(r.drops.values()) for r in mine),
                    "<=",
                    0,
                    "",
                )
            )
            slow = min(mine, key=lambda r: r.store_capacity)
            section.goals.append(
                Goal(
                    f"{spec.name}: store.write capacity, events/s (worst: {slow.shape})",
                    round(slow.store_capacity),
                    ">=",
                    GOAL_EVENTS_PER_S,
                    "",
                )
            )
            odd = {k: v for r in mine for k, v in r.errors.items()}
            if odd:
                section.notes.append(f"UNEXPECTED internal errors on {spec.name}: {odd}")
        if not quick:  # unpaced, for the record: what happens when record_* runs flat out
            memory = next(s for s in specs if s.name == "memory")
            flat = measure(memory, "1 site, unpaced", 1, 2.0, rows_by_sites[1], rate=math.inf)
            flat.alone_per_s = alone[1][0]
            results.append(flat)
            section.rows.append(_row(flat))
    quiet = _quantiles(alone[1][1])
    section.notes += [
        (
            f"recorded = events/s the producer thread recorded over {seconds:g} s, paced at 100 k/s "
            "(sleeping when ahead) with the flusher running; flushed = events/s the flushes took "
            "from the buffer (from the producer's start to the last flush it saw begin); what was "
            "still buffered when the producer stopped is discarded, not flushed"
        ),
        (
            "flush p50/max = wall time of one flush (fold + store.write); in store = share of it in "
            "store.write; store cap. = events per second of store.write time, flush cap. = events "
            "per second of flush time (fold + write), at this batch shape; busy = share of the run "
            "spent flushing; peak buf = most events a flush found waiting (buffer_capacity 500,000)"
        ),
        (
            "a flush capacity under the producer's rate means a flusher that never catches up: its "
            "batches grow each time until the buffer is full and events drop, later than these "
            f"{seconds:g} s may show"
        ),
        (
            "GIL: the producer and the flusher share it (switched every "
            f"{sys.getswitchinterval() * 1000:g} ms); the fold is Python and holds it, so a request "
            "thread's record_* waits while a flush runs — see the 500-call chunk times in each note "
            f"(no flusher: p50 {quiet['p50']:.2f} ms, p99 {quiet['p99']:.2f} ms); record_* alone: "
            + ", ".join(f"{_rate(v)} ({'1 site' if k == 1 else f'{k:,} sites'})" for k, (v, _) in alone.items())
        ),
        (
            f"workload: {EVENTS:,} pre-built mixed events (85 % requests over 5 routes, 5 % each page "
            "loads, logins, uploads), 1,000 users, replayed in a loop; 1,000 sites = the same events "
            "round-robin over 1,000 sites; tick_seconds = 1 h, so no evaluation competes"
        ),
    ]
    reference.append(machine_reference_us())
    section.notes.append(
        machine_note(
            reference,
            "the fold is plain Python and the goal a fixed 100 k events/s: on a slower CPU the capacities read lower",
        )
    )
    if not quick:
        section.notes.append(
            "unpaced = record_* flat out: it outruns any flush (~0.5 µs to record, several µs to "
            "fold an event), so the buffer fills to capacity and the rest is dropped and counted "
            "— by design, and why the rows above are paced"
        )
    section.data = {
        "results": [r.to_json() for r in results],
        "unavailable": unavailable,
        "producer_alone_per_s": {str(k): round(v) for k, (v, _) in alone.items()},
        "producer_alone_chunk_ms": {str(k): _quantiles(times) for k, (_, times) in alone.items()},
        "switch_interval_ms": sys.getswitchinterval() * 1000,
        "goal_events_per_s": GOAL_EVENTS_PER_S,
        "machine_reference_us": reference,
    }
    return [section]


def _quantiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": round(pick(0.5) * 1000, 3),
        "p99": round(pick(0.99) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "over_5ms": round(sum(t > 0.005 for t in ordered) / len(ordered), 4),
    }


def _row(r: Result) -> Row:
    t = r.totals()
    walls = [b.wall for b in r._during()]
    share = t["store_wall"] / t["wall"] if t["wall"] else math.nan
    note = f"{t['buckets'] / max(1, len(walls)):,.0f} buckets/flush"
    q = _quantiles(r.chunk_times)
    if q:
        note += f"; 500 record_* calls: p50 {q['p50']:.2f} ms, p99 {q['p99']:.1f} ms, max {q['max']:.0f} ms"
    if not math.isnan(r.server_cpu_s):
        note += f"; redis-server CPU {r.server_cpu_s / r.seconds:.0%}"
    if r.drained_s > 2.5:
        note += f"; the flush in progress ended {r.drained_s:.1f} s after the producer stopped"
    return Row(
        f"{r.store}, {r.shape}",
        (
            _rate(r.recorded_per_s),
            _rate(r.flushed_per_s),
            fmt_ns(statistics.median(walls) * 1e9) if walls else "-",
            fmt_ns(max(walls) * 1e9) if walls else "-",
            f"{share:.0%}",
            _rate(r.store_capacity),
            _rate(r.flusher_capacity),
            f"{r.busy:.0%}",
            f"{r.peak:,}",
            f"{sum(r.drops.values()):,}",
        ),
        note,
    )


if __name__ == "__main__":  # pragma: no cover - convenience
    import argparse

    from _report import render

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    print(render(run(quick=args.quick), "flush throughput"))
    print(f"({time.perf_counter() - started:.1f} s)")
