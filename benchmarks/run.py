"""Run every benchmark, print the table, write ``benchmarks/results/latest.json``.

    python benchmarks/run.py            # full run (~1 min on 2 cores)
    python benchmarks/run.py --quick    # fewer batches and events, for a smoke test
    python benchmarks/run.py --check    # exit 1 if a goal is missed
    python benchmarks/run.py --only hot_path

Goals are printed PASS/FAIL; the exit status is 0 whatever they say unless ``--check``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    import nextmonth_health
except ImportError as exc:  # pragma: no cover - a friendlier message than a traceback
    sys.exit(f"cannot import nextmonth_health ({exc}); run `make bench` or `pip install -e '.[bench]'` first")

from _report import Section, render

BENCHMARKS = ("hot_path", "middleware", "memory", "tick", "flush", "admin_view", "detection")


def _machine() -> dict[str, object]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": None if load is None else [round(x, 2) for x in load],
    }


def _min_cpu_share(data: object) -> float | None:
    """The lowest ``cpu_share`` of any timing in the results (None if there is none)."""
    found: list[float] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("cpu_share"), float):
                found.append(node["cpu_share"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return min(found) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if any goal is missed")
    parser.add_argument("--quick", action="store_true", help="fewer batches and events (numbers are rougher)")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json", help="where to write results")
    args = parser.parse_args(argv)

    machine = _machine()
    started = time.perf_counter()
    sections: list[Section] = []
    durations: dict[str, float] = {}
    for name in args.only or BENCHMARKS:
        module = __import__(name)
        print(f"running {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        sections.extend(module.run(quick=args.quick))
        durations[name] = round(time.perf_counter() - t0, 1)
    elapsed = time.perf_counter() - started
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else None
    machine["load_average_at_end"] = None if load_end is None else [round(x, 2) for x in load_end]

    goals = [g for s in sections for g in s.goals]
    missed = [g for g in goals if not g.passed]
    header = (
        f"nextmonth_health {nextmonth_health.__version__} benchmarks — Python {machine['python']} "
        f"on {machine['cpus']} CPUs, {elapsed:.0f} s{' (quick)' if args.quick else ''} "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in durations.items())})"
    )
    print(render(sections, header))
    load = machine["load_average_at_start"]
    share = _min_cpu_share([s.data for s in sections])
    machine["min_cpu_share"] = share
    busy = []
    if load and machine["cpus"] and load[0] > 0.5 * machine["cpus"]:
        busy.append(f"1-min load {load[0]} on {machine['cpus']} CPUs before the run")
    if share is not None and share < 0.9:
        busy.append(f"timed batches got only {share:.0%} of the wall clock")
    if busy and "hot_path" in durations:  # memory figures do not depend on CPU time
        print(
            f"warning: the machine was busy ({'; '.join(busy)}): absolute times are inflated, "
            "ratios stay fair (subjects are interleaved batch by batch). Judge the absolute "
            "goals on a quiet machine.\n"
        )
    print(
        f"goals: {len(goals) - len(missed)}/{len(goals)} met"
        + (f"; missed: {', '.join(g.name for g in missed)}" if missed else "")
    )

    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": nextmonth_health.__version__,
        "quick": args.quick,
        "seconds": round(elapsed, 1),
        "seconds_by_benchmark": durations,
        "machine": machine,
        "goals_met": len(goals) - len(missed),
        "goals_total": len(goals),
        "sections": [s.to_json() for s in sections],
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
