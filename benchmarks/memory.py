"""Memory: does recording stay flat, and what do 100 k distinct users cost the store?

Each scenario runs in a fresh interpreter (``python benchmarks/memory.py SCENARIO`` prints
JSON), so that what earlier benchmarks allocated and freed cannot hide growth in RSS.

* ``steady`` — one million mixed events (85 % requests), flushed every 10 000 events as
  the background flusher would. tracemalloc current/peak and RSS are taken after 100 k
  and after 1 M events: what we hold must not grow with the number of events seen. The
  clock stands still (``FakeClock``) so that every event lands in the same time buckets
  and any growth is growth *per event*. The store does grow with *time* — one bucket
  per series per 10 s until trimmed after ``history_seconds`` — so the run then moves
  the clock one bucket on and reports what one more generation of buckets costs.
* ``distinct`` — 100 k requests, each from a different user, in one window, then one
  flush. The store must hold them in ≤ 10 MB (tracemalloc delta after flushing); the
  reference line is a plain Python ``set`` of the same 100 k user strings. Also: what one
  bucket costs at 100 / 512 / 513 / 5 000 distinct users (either side of the switch
  from an exact set to a HyperLogLog).
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

__all__ = ["run"]

GOAL_STORE_BYTES = 10_000_000  # 10 MB for 100 k distinct users
GOAL_STEADY_GROWTH_BYTES = 1_000_000  # traced growth from 100 k to 1 M events
GOAL_STEADY_RSS_GROWTH_BYTES = 4_000_000  # RSS growth from 100 k to 1 M events


def _rss() -> int:
    """Resident set size now, in bytes (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _monitor(clock: Any = None) -> Any:
    import nextmonth_health as nmh

    return nmh.Monitor("bench", store="memory://", load_entrypoints=False, clock=clock)


def _stored_buckets(monitor: Any) -> int:
    from nextmonth_health import signals

    return sum(len(monitor.store.read(monitor.site, s, 0, math.inf)) for s in signals.SIGNALS)


def _checkpoint(monitor: Any, events: int, started: float) -> dict[str, Any]:
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    return {
        "events": events,
        "traced_current": current,
        "traced_peak": peak,
        "rss": _rss(),
        "tracemalloc_overhead": tracemalloc.get_tracemalloc_memory(),
        "stored_buckets": _stored_buckets(monitor),
        "seconds": round(time.perf_counter() - started, 2),
    }


def steady(total: int = 1_000_000, every: int = 10_000) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import workload

    from nextmonth_health.testing import FakeClock

    # A clock that stands still: all million events land in the same time buckets, so any
    # growth is growth per event. Growth per unit of time is measured separately below.
    clock = FakeClock()
    monitor = _monitor(clock)
    events = workload.mixed_events(every)
    request, page, login, upload = (
        monitor.record_request,
        monitor.record_page_load,
        monitor.record_login,
        monitor.record_upload,
    )

    def record_block() -> None:
        for kind, args in events:
            if kind == 0:
                request(args[0], args[1], args[2], user=args[3])
            elif kind == 1:
                page(args[0], args[1], user=args[2])
            elif kind == 2:
                login(args[0], user=args[1])
            else:
                upload(args[0], user=args[1], size=args[2])

    # Warm up: first buckets, route cache, lazily built state; then start measuring.
    for _ in range(2):
        record_block()
        monitor.flush()
    gc.collect()
    rss_start = _rss()
    tracemalloc.start()
    started = time.perf_counter()
    checkpoints = []
    done = 0
    while done < total:
        record_block()
        monitor.flush()
        done += every
        if done in (100_000, total):
            checkpoints.append(_checkpoint(monitor, done, started))
    # Time moves on by one bucket: what does one more generation of buckets cost?
    settings = monitor.settings
    before = checkpoints[-1]
    clock.advance(settings.bucket_seconds)
    record_block()
    monitor.flush()
    after = _checkpoint(monitor, done + every, started)
    tracemalloc.stop()
    new_buckets = after["stored_buckets"] - before["stored_buckets"]
    per_bucket = (after["traced_current"] - before["traced_current"]) / max(1, new_buckets)
    generations = settings.history_seconds // settings.bucket_seconds
    status = monitor.status()
    first, last = checkpoints[0], checkpoints[-1]
    return {
        "clock": "FakeClock, standing still",
        "bytes_per_stored_bucket": per_bucket,
        "series": new_buckets,
        "history_buckets_per_series": generations,
        "projected_history_bytes": per_bucket * new_buckets * generations,
        "events": total,
        "flush_every": every,
        "rss_start": rss_start,
        "checkpoints": checkpoints,
        "traced_growth": last["traced_current"] - first["traced_current"],
        "rss_growth": last["rss"] - first["rss"],
        "events_flushed": status.events_flushed,
        "drops": dict(status.drops),
        "internal_errors": dict(status.internal_errors),
    }


def distinct(n: int = 100_000) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import workload

    # The real clock, so that the buffer holds what it holds in production (a fresh float
    # timestamp per event). 100 k events take well under a 10 s bucket to record, so they
    # land in one bucket per route, or two if a bucket edge falls in between.
    monitor = _monitor()
    routes = workload.ROUTES
    people = [f"user-{i:06d}@example.com" for i in range(n)]
    data = [(routes[i % len(routes)], 503 if i % 20 == 0 else 200, 0.05, people[i]) for i in range(n)]
    record = monitor.record_request
    for route, status, duration, _ in data[:1000]:  # warm-up with non-distinct users
        record(route, status, duration, user="warm-up")
    monitor.flush()
    gc.collect()
    rss_start = _rss()
    tracemalloc.start()
    for route, status, duration, user in data:
        record(route, status, duration, user=user)
    gc.collect()
    buffered, _ = tracemalloc.get_traced_memory()
    folded = monitor.flush()
    gc.collect()
    store_bytes, peak = tracemalloc.get_traced_memory()
    rss_after = _rss()
    tracemalloc.stop()

    from nextmonth_health import signals

    start = monitor.clock.now() - 3600
    merged = None
    for bucket in monitor.store.read(monitor.site, signals.REQUEST, start, math.inf):
        if merged is None:
            merged = bucket.copy()
        else:
            merged.merge(bucket)
    counted_users = len(merged.users) if merged is not None else 0
    counted_bad = len(merged.bad_users) if merged is not None else 0

    # Reference: a plain set of the same 100 k user strings (strings included: a set
    # keeps them alive, so that is what it really costs to hold them).
    del data
    gc.collect()
    fresh = [f"user-{i:06d}@example.com" for i in range(n)]
    del people
    gc.collect()
    tracemalloc.start()
    reference = set(fresh)
    set_container, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    strings = sum(sys.getsizeof(u) for u in fresh)
    assert len(reference) == n

    status = monitor.status()
    return {
        "bucket_bytes_by_distinct_users": {str(k): _one_bucket(k) for k in (100, 512, 513, 5000)},
        "users": n,
        "events_folded": folded,
        "buffered_bytes": buffered,
        "buffered_bytes_per_event": buffered / n,
        "store_bytes": store_bytes,
        "peak_bytes": peak,
        "rss_growth": rss_after - rss_start,
        "stored_buckets": _stored_buckets(monitor),
        "distinct_users_counted": counted_users - 1,  # minus the warm-up user
        "distinct_bad_users_counted": counted_bad,
        "distinct_bad_users_true": n // 20,
        "set_container_bytes": set_container,
        "set_with_strings_bytes": set_container + strings,
        "drops": dict(status.drops),
        "internal_errors": dict(status.internal_errors),
    }


def _one_bucket(users: int) -> int:
    """Memory the store holds for one bucket (one route, 10 s) seen by ``users`` distinct users."""
    from nextmonth_health.testing import FakeClock

    monitor = _monitor(FakeClock())
    people = [f"user-{i:06d}@example.com" for i in range(users)]
    monitor.record_request("/bookings", 200, 0.05)  # warm-up, no user: the set stays empty
    monitor.flush()
    gc.collect()
    tracemalloc.start()
    for i, user in enumerate(people):
        monitor.record_request("/bookings", 200, 0.01 + (i % 100) / 100, user=user)
    monitor.flush()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held


SCENARIOS = {"steady": steady, "distinct": distinct}


def _count(n: int) -> str:
    return f"{n / 1e6:g} M" if n >= 1_000_000 else f"{n / 1e3:g} k"


def _start(scenario: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "memory.py"), scenario, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(scenario: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"memory scenario {scenario!r} failed:\n{err}")
    return json.loads(out.strip().splitlines()[-1])


def run(quick: bool = False) -> list[Any]:
    from _report import Goal, Row, Section, fmt_bytes

    total = 200_000 if quick else 1_000_000
    # Both scenarios at once, each in its own fresh interpreter: memory figures do not
    # depend on CPU contention, and tracing a million events is the slowest part of the run.
    steady_proc = _start("steady", str(total))
    distinct_proc = _start("distinct")
    s = _result("steady", steady_proc)
    d = _result("distinct", distinct_proc)

    first, last = s["checkpoints"][0], s["checkpoints"][-1]
    span = f"{_count(first['events'])} → {_count(last['events'])} events"
    flat = Section(
        f"steady recording — {total:,} mixed events, flush every {s['flush_every']:,} (fresh process)",
        ("traced now", "traced peak", "RSS"),
    )
    for cp in s["checkpoints"]:
        flat.rows.append(
            Row(
                f"after {cp['events']:,} events",
                (
                    fmt_bytes(cp["traced_current"]),
                    fmt_bytes(cp["traced_peak"]),
                    fmt_bytes(cp["rss"]),
                ),
                f"{cp['stored_buckets']} stored buckets, {cp['seconds']} s",
            )
        )
    flat.rows.append(
        Row(
            f"growth {first['events']:,} → {last['events']:,}",
            (fmt_bytes(s["traced_growth"]), "", fmt_bytes(s["rss_growth"])),
            f"+{last['stored_buckets'] - first['stored_buckets']} buckets",
        )
    )
    flat.rows.append(
        Row(
            "one more 10 s of time (per bucket, avg)",
            (fmt_bytes(s["bytes_per_stored_bucket"]), "", ""),
            f"{s['series']} series × {s['history_buckets_per_series']} buckets of history "
            f"≈ {fmt_bytes(s['projected_history_bytes'])} held at this traffic until trimmed",
        )
    )
    flat.goals.append(
        Goal(
            f"traced growth {span}",
            s["traced_growth"],
            "<=",
            GOAL_STEADY_GROWTH_BYTES,
            "B",
        )
    )
    flat.goals.append(
        Goal(
            f"RSS growth {span}",
            s["rss_growth"],
            "<=",
            GOAL_STEADY_RSS_GROWTH_BYTES,
            "B",
        )
    )
    flat.notes.append(
        "traced = tracemalloc since just after warm-up; peak includes one 10 k-event buffer and its fold; "
        f"RSS includes tracemalloc's own {fmt_bytes(last['tracemalloc_overhead'])}"
    )
    if s["drops"] or s["internal_errors"]:
        flat.notes.append(f"UNEXPECTED drops={s['drops']} errors={s['internal_errors']}")

    users = Section(
        f"{d['users']:,} distinct users in one window, one flush (fresh process)",
        ("memory", "per user", "users counted"),
    )
    n = d["users"]
    users.rows.append(
        Row(
            "store after flush (tracemalloc delta)",
            (
                fmt_bytes(d["store_bytes"]),
                fmt_bytes(d["store_bytes"] / n),
                f"{d['distinct_users_counted']:,}",
            ),
            f"{d['stored_buckets']} buckets; bad users {d['distinct_bad_users_counted']:,} of {d['distinct_bad_users_true']:,}",
        )
    )
    users.rows.append(
        Row(
            "python set of the user strings",
            (
                fmt_bytes(d["set_with_strings_bytes"]),
                fmt_bytes(d["set_with_strings_bytes"] / n),
                f"{n:,}",
            ),
            f"reference: set {fmt_bytes(d['set_container_bytes'])} + strings; exact",
        )
    )
    users.rows.append(
        Row(
            "buffer before flush (transient)",
            (fmt_bytes(d["buffered_bytes"]), fmt_bytes(d["buffered_bytes_per_event"]), "-"),
            "what record_* holds until the next flush (~1 s of traffic)",
        )
    )
    for k, held in d["bucket_bytes_by_distinct_users"].items():
        users.rows.append(
            Row(
                f"one bucket, {int(k):,} distinct users",
                (fmt_bytes(held), fmt_bytes(held / int(k)), f"{int(k):,}"),
                "exact set of hashes" if int(k) <= 512 else "HyperLogLog (p=12)",
            )
        )
    users.goals.append(Goal("store for 100 k distinct users", d["store_bytes"], "<=", GOAL_STORE_BYTES, "B"))
    error = abs(d["distinct_users_counted"] - n) / n
    users.notes.append(
        f"distinct count error {error:.1%} (HyperLogLog past 512 users per bucket); "
        f"peak during flush {fmt_bytes(d['peak_bytes'])}"
    )
    if d["drops"] or d["internal_errors"]:
        users.notes.append(f"UNEXPECTED drops={d['drops']} errors={d['internal_errors']}")
    flat.data = s
    users.data = d
    return [flat, users]


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(SCENARIOS)}}} [N]")
    arguments = [int(a) for a in sys.argv[2:]]
    print(json.dumps(SCENARIOS[sys.argv[1]](*arguments)))
