"""The request path: what one ``record_*`` call costs the host app, next to its peers.

* ``record_request(route, status, duration, user=...)`` — counts the request by route and
  status, keeps its duration, and the distinct user — against prometheus_client (and
  opentelemetry-sdk when installed) counting by route+status and observing the duration
  by route. Same pre-built inputs, same process, same loop.
* ``record(signal, key, ok=..., value=..., user=...)`` — a plugin's own signal (here
  ``bench.query``, keyed by route), the same job (count by key and outcome, keep the
  value, the distinct user) on the same inputs, in the same rounds: it must cost what
  ``record_request`` costs.
* ``record_login`` / ``record_upload`` / ``record_page_load`` / ``record_session_expired``
  — ours only (no peer has an equivalent beyond another counter).
* ``flush()`` — the background fold of buffered events into the store, per event. Off
  the request path, but it shares the GIL with request threads, so it is worth knowing.
"""

from __future__ import annotations

import time
from typing import Any

import peers
import workload
from _report import Goal, Row, Section, fmt_ns
from _timing import Subject, Timing, compare, time_callable

import nextmonth_health as nmh

__all__ = ["run"]

GOAL_MEDIAN_NS = 500.0
GOAL_VS_PROMETHEUS = 6.0

#: The plugin signal ``record`` is timed on.
SIGNAL = "bench.query"
RECORD = "nextmonth_health record(signal)"


class _Declares:
    """A plugin declaring the benchmark's own signal."""

    @nmh.hookimpl
    def register_signals(self, register: Any) -> None:
        register(SIGNAL)


def _monitor() -> nmh.Monitor:
    return nmh.Monitor("bench", store="memory://", load_entrypoints=False, plugins=[_Declares()])


COLUMNS = ("median", "min", "p99", "wall median")


def _cells(t: Timing) -> tuple[str, ...]:
    return (fmt_ns(t.median), fmt_ns(t.min), fmt_ns(t.p99), fmt_ns(t.wall_median))


def run(quick: bool = False) -> list[Section]:
    batches = 10 if quick else 30
    samples = 20_000 if quick else 50_000
    # Each request with its outcome as a bool, for record(ok=...): what a plugin has at hand.
    data = [(*event, event[1] < 500) for event in workload.request_events(10_000)]
    monitor = _monitor()
    stmt = "monitor.record_request(route, status, duration, user=user)"
    record_stmt = f"monitor.record({SIGNAL!r}, route, ok=ok, value=duration, user=user)"
    unpack = "route, status, duration, user, ok"

    # 1. record_request against the peers, interleaved batch by batch -----------------
    subjects = [
        Subject(
            "nextmonth_health",
            stmt,
            {"monitor": monitor},
            between=monitor.flush,
            single_samples=samples,
        ),
        Subject(RECORD, record_stmt, {"monitor": monitor}, between=monitor.flush, single_samples=samples),
    ]
    versions = {"nextmonth_health": nmh.__version__, RECORD: nmh.__version__}
    notes = {
        "nextmonth_health": "count + duration + distinct users",
        RECORD: f"a plugin's signal: count + value + distinct users, keyed by route ({record_stmt})",
    }
    prom = peers.prometheus()
    otel = peers.opentelemetry()
    if prom is not None:
        subjects.append(Subject(prom.name, prom.stmt, prom.env, single_samples=samples // 5))
    if otel is not None:
        # ~30x slower than ours: a third of the rounds and fewer samples keep the run short.
        subjects.append(Subject(otel.name, otel.stmt, otel.env, every=3, warmup=1, single_samples=samples // 10))
    for peer in (prom, otel):
        if peer is not None:
            versions[peer.name] = peer.version
            notes[peer.name] = peer.note
    timings = compare(subjects, unpack=unpack, data=data, rounds=batches)
    ours = timings["nextmonth_health"]
    record = timings[RECORD]

    # The same, with the garbage collector left on (what a real request thread sees).
    gc_subjects = [Subject("nextmonth_health", stmt, {"monitor": monitor}, between=monitor.flush)]
    if prom is not None:
        gc_subjects.append(Subject(prom.name, prom.stmt, prom.env))
    gc_on = compare(gc_subjects, unpack=unpack, data=data, rounds=max(5, batches // 3), gc_enabled=True)

    vs = Section("record_request vs peers — per call, loop overhead removed (gc off unless noted)", COLUMNS)
    for name, t in timings.items():
        ratio = ""
        if name == RECORD:
            ratio = f"{t.median / ours.median:.2f}× record_request (paired {t.paired_ratio(ours):.2f}×); "
        elif name != "nextmonth_health":
            ratio = (
                f"{t.median / ours.median:.1f}× ours, {t.median / record.median:.1f}× record() "
                f"(paired {t.paired_ratio(ours):.1f}×, {t.paired_ratio(record):.1f}×); "
            )
        vs.rows.append(Row(f"{name} {versions[name]}", _cells(t), ratio + notes[name]))
    for name, t in gc_on.items():
        vs.rows.append(Row(f"{name} (gc on)", _cells(t), "same loop, collector enabled"))
    vs.notes.append(
        "median/min = CPU time of the calling thread per call (median/min of batch means); "
        f"wall median = the same batches by the wall clock (CPU share {ours.cpu_share:.0%} for ours)"
    )
    vs.notes.append(
        f"p99 = individually timed calls ({len(ours.single_call_ns):,} of ours, fewer of the peers), "
        f"timer cost {ours.timer_overhead_ns:.0f} ns removed; paired = median of same-round batch ratios"
    )
    vs.goals.append(Goal("record_request median", ours.median, "<=", GOAL_MEDIAN_NS, "ns"))
    vs.goals.append(Goal("record(signal) median", record.median, "<=", GOAL_MEDIAN_NS, "ns"))
    if "prometheus_client" in timings:
        for name, t in (("nextmonth_health", ours), ("record(signal)", record)):
            vs.goals.append(
                Goal(
                    f"prometheus_client / {name} (median)",
                    timings["prometheus_client"].median / t.median,
                    ">=",
                    GOAL_VS_PROMETHEUS,
                    "x",
                )
            )
    else:
        vs.notes.append("prometheus_client is not installed (pip install -e '.[bench]'): no comparison")
    if "opentelemetry-sdk" not in timings:
        vs.notes.append("opentelemetry-sdk is not installed: its row is skipped")
    vs.notes.append(
        f"workload: {len(data):,} pre-built requests over {len(workload.ROUTES)} routes, 1000 users, ~5 % 5xx; "
        f"{batches} rounds of 10,000-call batches, subjects interleaved (opentelemetry in every 3rd round); "
        f"monitor.flush() after each of our batches, untimed; record() records the same requests as the "
        f"plugin signal {SIGNAL!r}, ok = status < 500 computed beforehand"
    )
    status = monitor.status()
    if status.drops or status.internal_errors:
        vs.notes.append(f"UNEXPECTED drops={dict(status.drops)} errors={dict(status.internal_errors)}")
    vs.data = {
        "drops": dict(status.drops),
        "internal_errors": dict(status.internal_errors),
        "workload": {
            "calls_per_batch": len(data),
            "routes": len(workload.ROUTES),
            "users": 1000,
            "error_rate": 0.05,
        },
        "versions": versions,
        "timings": {name: t.to_json() for name, t in timings.items()},
        "gc_enabled": {name: t.to_json() for name, t in gc_on.items()},
        "ratios_vs_ours": {name: round(t.median / ours.median, 2) for name, t in timings.items()},
        "paired_ratios_vs_ours": {name: round(t.paired_ratio(ours), 2) for name, t in timings.items()},
        "ratios_vs_record": {name: round(t.median / record.median, 2) for name, t in timings.items()},
    }

    # 2. the other record_* calls --------------------------------------------------------
    others = Section("other record_* calls — per call, ours only", COLUMNS)
    # One input row per call, holding what any of the four needs, so that the four can be
    # interleaved round by round over the same list (and share one loop overhead).
    logins, uploads, pages = (
        workload.login_events(),
        workload.upload_events(),
        workload.page_load_events(),
    )
    rows = [
        (ok, user, size, page, seconds)
        for (ok, user), (_, _, size), (page, seconds, _) in zip(logins, uploads, pages, strict=True)
    ]
    cases = {
        "record_login": "monitor.record_login(ok, user=user)",
        "record_upload": "monitor.record_upload(ok, user=user, size=size)",
        "record_page_load": "monitor.record_page_load(page, seconds, user=user)",
        "record_session_expired": "monitor.record_session_expired(user=user)",
    }
    other_timings = compare(
        [
            Subject(name, case, {"monitor": monitor}, between=monitor.flush, single_samples=samples // 5)
            for name, case in cases.items()
        ],
        unpack="ok, user, size, page, seconds",
        data=rows,
        rounds=max(10, batches // 3),
    )
    for name, t in other_timings.items():
        others.rows.append(Row(name, _cells(t)))
        others.goals.append(Goal(f"{name} median", t.median, "<=", GOAL_MEDIAN_NS, "ns"))
        others.data[name] = t.to_json()
    others.notes.append("same 1000 users; ~4 % failed logins, ~3 % failed uploads; interleaved like the above")

    # 3. flush, per event ----------------------------------------------------------------
    flush = Section(
        "flush() — per buffered event, off the request path",
        ("median", "min", "max", "wall median"),
    )
    n = 20_000 if quick else 100_000
    repeats = 2 if quick else 3
    requests = workload.request_events(n)
    mixed = workload.mixed_events(n)
    flush_monitor = _monitor()
    fm = flush_monitor

    def fill_requests() -> None:
        rec = fm.record_request
        for route, status, duration, user in requests:
            rec(route, status, duration, user=user)

    def fill_mixed() -> None:
        for kind, args in mixed:
            if kind == 0:
                fm.record_request(args[0], args[1], args[2], user=args[3])
            elif kind == 1:
                fm.record_page_load(args[0], args[1], user=args[2])
            elif kind == 2:
                fm.record_login(args[0], user=args[1])
            else:
                fm.record_upload(args[0], user=args[1], size=args[2])

    def fill_signal() -> None:
        rec = fm.record
        for route, status, duration, user in requests:
            rec(SIGNAL, route, ok=status < 500, value=duration, user=user)

    def flush_all(_: Any) -> None:
        folded = fm.flush()
        assert folded == n, (folded, n)

    cases = (("requests", fill_requests), ("mixed signals", fill_mixed), ("plugin signal events", fill_signal))
    for label, fill in cases:
        t = time_callable(
            f"flush {label}",
            fill,
            flush_all,
            per=n,
            repeats=repeats,
            warmup=int(label == "requests"),
        )
        flush.rows.append(
            Row(
                f"flush of {n:,} {label}",
                (fmt_ns(t.median), fmt_ns(t.min), fmt_ns(t.max), fmt_ns(t.wall_median)),
            )
        )
        flush.data[label] = t.to_json()
    status = fm.status()
    flush.data["drops"] = dict(status.drops)
    flush.data["internal_errors"] = dict(status.internal_errors)
    if status.drops or status.internal_errors:
        flush.notes.append(f"UNEXPECTED drops={dict(status.drops)} errors={dict(status.internal_errors)}")
    per_event = flush.data["requests"]["median_ns"]
    flush.notes.append(
        f"so each 1,000 req/s of traffic costs ~{fmt_ns(per_event * 1000)} of flushing per second "
        f"({per_event / 1e4:.2f} % of a core), run holding the GIL, which it hands over every "
        f"{_switch_ms()} ms"
    )
    mixed_note = (
        "mixed = 85 % requests, 5 % each page loads, logins, uploads; plugin signal events = the "
        f"requests recorded as {SIGNAL!r} keyed by route"
    )
    flush.notes.append(
        f"{n:,} events buffered by record_* (untimed), then one timed flush(); {repeats} repeats; {mixed_note}"
    )

    return [vs, others, flush]


def _switch_ms() -> str:
    import sys

    return f"{sys.getswitchinterval() * 1000:g}"


if __name__ == "__main__":  # pragma: no cover - convenience
    from _report import render

    started = time.perf_counter()
    print(render(run(), "hot path"))
    print(f"({time.perf_counter() - started:.1f} s)")
