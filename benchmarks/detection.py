"""Detection: false alarms over quiet site-weeks, and how fast real outages are found.

    python benchmarks/detection.py            # full: 6 quiet site-weeks, 16 outages x 5 seeds
    python benchmarks/detection.py --quick    # a quiet day per site, 3 seeds

Every scenario runs the real monitor (the four bundled checks, ``memory://``, default
settings) on simulated time, fed through ``record_*`` by :mod:`traffic`: Poisson arrivals
on every route, sign-ins, expired sessions, uploads and dashboard loads, over a pool of 400
people, starting from an empty store (so each quiet week begins with a cold start).

* **Quiet weeks.** Three sizes (0.05, 1 and 4 requests a second on each critical route)
  times two levels of everyday imperfection ("typical": 1 % 5xx, 3 % failed uploads, 8 %
  mistyped passwords, 2 % expired sessions, dashboard loads around 1.3 s; "rough": 3 %,
  6 %, 15 %, 5 %, 1.8 s), a simulated week each, nothing changing. Every incident is false.
* **Outages.** Each fault (a share of one route's requests answering 503, failing
  uploads, slow dashboards, broken sign-in, an expiry storm, a whole-site outage at night,
  one client's retry storm) starts after 75 minutes of normal traffic, at a different
  phase against the 15 s passes for each seed. Reported: time to notice (the incident
  opens), time to alert (it turns critical), time to resolve after the fault ends, and the
  people the incident counted against the people really hurt in its scope while it could
  see the problem (from the window before it opened until the fault left its last minute;
  that includes the few the everyday failure rate hurt meanwhile).

Sites of a run share one monitor (one pass evaluates them all), as on a real host.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import Goal, Row, Section, render
from traffic import LEVELS, SIZES, Fault, Site, play

__all__ = ["OUTAGES", "Outage", "quiet", "run", "score_outages"]

DAY = 86_400.0
WEEK = 7 * DAY
WARM_UP = 75 * 60.0
WINDOW = 300.0
#: Signals whose bad events each check counts people from.
SCOPES = {
    "api_errors": ("request",),
    "upload_failures": ("upload",),
    "dashboard_load": ("page_load",),
    "session_failures": ("login", "expiry"),
}


@dataclass(frozen=True)
class Outage:
    """A fault to find: where it strikes, how hard, and the incident that should open."""

    name: str
    rate: float
    fault: Callable[[float], Fault]
    check: str
    key: str | None = None  # None: any key of the check
    level: str = "typical"
    #: True: must alert within three minutes; False: must never alert (one client's
    #: retry storm); None: either, reported (a degraded fault escalates only if it lasts).
    alert: bool | None = True
    #: False for a fault too small to be sure of finding within the run (reported only).
    must_find: bool = True
    #: False where the people hurt are not the point (one client's storm hurts one).
    count_people: bool = True


def _api(share: float, route: str = "/media-upload") -> Callable[[float], Fault]:
    return lambda t: Fault("api", t, t + 480, share=share, route=route)


OUTAGES: tuple[Outage, ...] = (
    Outage("5xx 40 % /media-upload @ 0.5/s", 0.5, _api(0.4), "api_errors", "/media-upload"),
    Outage("5xx 40 % /media-upload @ 1/s", 1.0, _api(0.4), "api_errors", "/media-upload"),
    Outage("5xx 40 % /bookings @ 4/s", 4.0, _api(0.4, "/bookings"), "api_errors", "/bookings"),
    Outage("5xx 40 % /portal @ 1/s, rough", 1.0, _api(0.4, "/portal"), "api_errors", "/portal", "rough"),
    Outage(
        "5xx 10 % /bookings @ 2/s",
        2.0,
        _api(0.1, "/bookings"),
        "api_errors",
        "/bookings",
        alert=None,
    ),
    Outage(
        "5xx 10 % /bookings @ 4/s",
        4.0,
        _api(0.1, "/bookings"),
        "api_errors",
        "/bookings",
        alert=None,
    ),
    Outage(
        "uploads 25 % failing @ 1/s",
        4.0,
        lambda t: Fault("uploads", t, t + 480, share=0.25),
        "upload_failures",
        "",
        alert=None,
    ),
    Outage(
        "uploads 25 % failing @ 0.25/s",
        1.0,
        lambda t: Fault("uploads", t, t + 480, share=0.25),
        "upload_failures",
        "",
        alert=None,
        must_find=False,
    ),
    Outage(
        "uploads 60 % failing @ 0.25/s",
        1.0,
        lambda t: Fault("uploads", t, t + 480, share=0.6),
        "upload_failures",
        "",
    ),
    Outage(
        "dashboard p75 4.5 s @ 0.5/s",
        1.0,
        lambda t: Fault("dashboard", t, t + 480, factor=2.55),
        "dashboard_load",
        alert=None,
    ),
    Outage(
        "dashboard p75 4.5 s @ 2/s",
        4.0,
        lambda t: Fault("dashboard", t, t + 480, factor=2.55),
        "dashboard_load",
        alert=None,
    ),
    Outage(
        "dashboard p75 9 s @ 0.5/s",
        1.0,
        lambda t: Fault("dashboard", t, t + 480, factor=5.1),
        "dashboard_load",
    ),
    Outage(
        "sign-in broken @ 0.25/s",
        1.0,
        lambda t: Fault("signin", t, t + 480, share=1.0),
        "session_failures",
        "",
    ),
    Outage(
        "expiry storm x10 @ 4/s",
        4.0,
        lambda t: Fault("expiry", t, t + 480, factor=10),
        "session_failures",
        "",
        alert=None,
    ),
    Outage(
        "whole site 502, night (0.02/s a route)",
        0.02,
        lambda t: Fault("site", t, t + 6000, share=1.0),
        "api_errors",
        "*",
    ),
    Outage(
        "one client retrying 30/s on /bookings",
        1.0,
        lambda t: Fault("storm", t, t + 300, factor=30, route="/bookings"),
        "api_errors",
        "/bookings",
        alert=False,
        count_people=False,
    ),
)


def quiet(days: float, levels: Sequence[str], sizes: Sequence[str] = tuple(SIZES), **settings: Any) -> dict[str, Any]:
    """A quiet run of each size at each level: incidents and alerts per site."""
    sites = [Site(f"{size}/{level}", SIZES[size], LEVELS[level]) for level in levels for size in sizes]
    started = time.perf_counter()
    outcome = play(sites, days * DAY, **settings)
    result = {}
    for site in sites:
        incidents = outcome.incidents(site.name)
        result[site.name] = {
            "days": days,
            "incidents": [
                {
                    "check": i.check,
                    "key": i.key,
                    "severity": i.severity.value,
                    "opened_after_h": round((i.opened_at.timestamp() - outcome_start(outcome)) / 3600, 2),
                }
                for i in incidents
            ],
            "alerts": sum(1 for i in incidents if i.severity == "critical"),
        }
    return {
        "sites": result,
        "seconds": round(time.perf_counter() - started, 1),
        "events": outcome.monitor.status().events_flushed,
    }


def outcome_start(outcome: Any) -> float:
    return outcome.monitor.clock.now() - outcome.seconds


def score_outages(seeds: int, outages: Sequence[Outage] = OUTAGES) -> dict[str, Any]:
    """Run every outage once per seed, all in one monitor; score each against the truth."""
    sites: list[tuple[Outage, Site]] = []
    from traffic import EPOCH

    for outage in outages:
        for seed in range(seeds):
            phase = (seed * 6.7) % 15
            start = EPOCH + WARM_UP + phase
            fault = outage.fault(start)
            site = Site(
                f"{outage.name}#{seed}",
                outage.rate,
                LEVELS[outage.level],
                (fault,),
                seed=seed,
                keep_bad=True,
            )
            sites.append((outage, site))
    longest = max(site.faults[0].end for _, site in sites) - EPOCH
    started = time.perf_counter()
    outcome = play([site for _, site in sites], longest + 25 * 60)
    end = outcome.monitor.clock.now()
    results: dict[str, list[dict[str, Any]]] = {}
    for outage, site in sites:
        fault = site.faults[0]
        incidents = outcome.incidents(site.name)
        found = [
            i
            for i in incidents
            if i.check == outage.check
            and (outage.key is None or i.key == outage.key)
            and i.opened_at.timestamp() >= fault.start - WINDOW
        ]
        early = [i for i in incidents if i.opened_at.timestamp() < fault.start]
        other = [i for i in incidents if i not in found and i not in early]
        row: dict[str, Any] = {
            "seed": site.seed,
            "false_before": len(early),
            "other": [f"{i.check}:{i.key}" for i in other],
        }
        if found:
            first = found[0]
            opened = first.opened_at.timestamp()
            resolved = first.resolved_at.timestamp() if first.resolved_at else None
            escalated = min((i.escalated_at.timestamp() for i in found if i.escalated_at), default=None)
            # Everyone hurt in the incident's scope while it could see the problem: from
            # the window before it opened until the fault left its last minute.
            seen_until = min(resolved or end, fault.end + 60)
            truth = site.hurt_between(
                opened - WINDOW,
                seen_until,
                SCOPES[outage.check],
                None if first.key == "*" else first.key,
            )
            row.update(
                notice=opened - fault.start,
                alert=None if escalated is None else escalated - fault.start,
                resolve=None if resolved is None else resolved - fault.end,
                counted=first.affected_users,
                truth=truth,
                hurt_by_fault=len(site.hurt[0]),
                key=first.key,
            )
        results.setdefault(outage.name, []).append(row)
    return {"outages": results, "seconds": round(time.perf_counter() - started, 1)}


def _silence() -> None:
    """The benchmark is the host here: it keeps the SDK's log of a thousand incidents quiet."""
    logging.getLogger("nextmonth_health").setLevel(logging.CRITICAL)


def _median(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def _worst(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return max(values) if values else None  # type: ignore[type-var]


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def run(quick: bool = False, looser: float = 1.0) -> list[Section]:
    """Both sections; ``looser`` divides the evidence every check asks for (``alpha`` and
    ``line_alpha`` times it), to see how close quiet traffic comes to opening anything."""
    days = 1.0 if quick else 7.0
    seeds = 3 if quick else 5
    loose = {"alpha": 1e-6 * looser, "line_alpha": 1e-4 * looser} if looser != 1.0 else {}
    with ProcessPoolExecutor(max_workers=3, initializer=_silence) as pool:
        quiet_runs = [pool.submit(quiet, days, [level], **loose) for level in LEVELS]
        outages = pool.submit(score_outages, seeds)
        quiet_results = [f.result() for f in quiet_runs]
        outage_results = outages.result()

    calm = Section(
        f"quiet site-weeks — false incidents, {days:g} simulated day(s) per site from an empty store"
        + (f", evidence {looser:g}x looser than the defaults" if loose else ""),
        ("incidents", "alerts", "per site-week"),
    )
    total_false = total_alerts = 0
    for result in quiet_results:
        for name, site in result["sites"].items():
            n = len(site["incidents"])
            total_false += n
            total_alerts += site["alerts"]
            what = ", ".join(
                f"{i['check']}:{i['key']} {i['severity']} at {i['opened_after_h']} h" for i in site["incidents"][:3]
            )
            calm.rows.append(Row(name, (str(n), str(site["alerts"]), f"{n / (days / 7):.2f}"), what))
        calm.notes.append(f"{result['events']:,} events in {result['seconds']} s")
    calm.data = {"quiet": quiet_results}
    calm.goals.append(Goal("false incidents, every quiet site and level", total_false, "<=", 0))
    calm.goals.append(Goal("false alerts, every quiet site and level", total_alerts, "<=", 0))

    found = Section(
        f"outages — {seeds} seeds each (median / worst); counted people against the truth",
        ("notice", "alert", "resolved after", "people counted", "missed"),
    )
    goals: dict[str, list[float | None]] = {
        "notice40": [],
        "alert40": [],
        "resolve": [],
        "site": [],
    }
    storm_alerts = 0
    people_off = 0.0
    for outage in OUTAGES:
        rows = outage_results["outages"][outage.name]
        hits = [r for r in rows if "notice" in r]
        missed = len(rows) - len(hits)
        notices = [r["notice"] for r in hits]
        alerts = [r["alert"] for r in hits]
        resolves = [r["resolve"] for r in hits]
        people = ", ".join(f"{r['counted']}/{r['truth']}" for r in hits[:3])
        extra = sum(r["false_before"] for r in rows)
        others = sorted({o for r in rows for o in r["other"]})
        note = "; ".join(
            part
            for part in (
                f"{extra} opened before the fault" if extra else "",
                f"also: {', '.join(others)}" if others else "",
                "must not alert" if outage.alert is False else "",
            )
            if part
        )
        found.rows.append(
            Row(
                outage.name,
                (
                    f"{_s(_median(notices))} / {_s(_worst(notices))}",
                    f"{_s(_median(alerts))} / {_s(_worst(alerts))}" if any(a is not None for a in alerts) else "none",
                    f"{_s(_median(resolves))} / {_s(_worst(resolves))}",
                    people,
                    str(missed),
                ),
                note,
            )
        )
        if outage.name.startswith("5xx 40"):
            goals["notice40"] += notices if not missed else [None]
            goals["alert40"] += alerts
        if outage.name.startswith("whole site"):
            goals["site"] += notices if not missed else [None]
        if outage.must_find:
            goals["resolve"] += resolves if not missed else [None]
        if outage.alert is False:
            storm_alerts += sum(1 for a in alerts if a is not None)
        for r in hits if outage.must_find and outage.count_people else ():
            if r["truth"]:
                people_off = max(people_off, abs(r["counted"] - r["truth"]) / r["truth"])
    found.data = outage_results
    found.notes.append(f"ran in {outage_results['seconds']} s")

    def worst(values: list[float | None]) -> float:
        return float("inf") if not values or any(v is None for v in values) else max(values)  # type: ignore[type-var]

    found.goals += [
        Goal(
            "40 % 5xx outage, worst time to notice (every size)",
            worst(goals["notice40"]),
            "<=",
            60,
            " s",
        ),
        Goal(
            "40 % 5xx outage, worst time to alert (every size)",
            worst(goals["alert40"]),
            "<=",
            180,
            " s",
        ),
        Goal(
            "every outage found, worst time to resolve after the fault ends",
            worst(goals["resolve"]),
            "<=",
            600,
            " s",
        ),
        Goal(
            "whole-site outage at night, worst time to notice",
            worst(goals["site"]),
            "<=",
            300,
            " s",
        ),
        Goal("alerts pushed for one client's retry storm", storm_alerts, "<=", 0),
        Goal(
            "people counted against the truth, worst error",
            round(100 * people_off, 1),
            "<=",
            5.0,
            " %",
        ),
    ]
    return [calm, found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a quiet day per site, 3 seeds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--looser",
        type=float,
        default=1.0,
        metavar="X",
        help="ask X times less evidence (alpha and line_alpha times X): how close quiet weeks come",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sections = run(quick=args.quick, looser=args.looser)
    print(render(sections, f"detection benchmark, {time.perf_counter() - started:.0f} s"))
    if args.json:
        args.json.write_text(json.dumps([s.to_json() for s in sections], indent=2) + "\n")
    missed = [g for s in sections for g in s.goals if not g.passed]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
