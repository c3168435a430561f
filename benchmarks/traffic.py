"""Synthetic sites for the detection benchmark: steady, imperfect traffic, faults, and the truth.

A site is a set of streams — requests on each route, sign-ins, expired sessions, uploads,
dashboard loads — each a Poisson arrival process over a pool of people, with a failure
probability (or a log-normal load time) that a :class:`Fault` can change for a while.
:func:`play` drives a real :class:`~nextmonth_health.Monitor` (``memory://``, a clock of
simulated seconds) through ``record_*`` second by second, evaluates it every tick, and
keeps every transition, so a scenario can be scored against what really happened: which
faults there were, when, and exactly which people they hurt.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

import nextmonth_health as nmh

__all__ = ["LEVELS", "SIZES", "Fault", "Level", "Outcome", "SimClock", "Site", "play"]

CRITICAL = ("/media-upload", "/bookings", "/portal")
#: Where the rest of a site's requests go: its home page and assets ("other" to the monitor).
OTHER = "/"
DASHBOARD = "/dashboard"
#: Monday 2026-01-05 00:00 UTC: weeks start at midnight, so "night" is the small hours.
EPOCH = 1_767_571_200.0


@dataclass(frozen=True)
class Level:
    """How imperfect a healthy site is: its usual failure rates and load times."""

    name: str
    api_errors: float  # 5xx share on every route
    upload_failures: float
    failed_logins: float  # mistyped passwords
    expiries: float  # sessions expiring, per request on /portal
    load_median: float  # dashboard load seconds
    load_sigma: float = 0.45


LEVELS = {
    "typical": Level(
        "typical",
        api_errors=0.01,
        upload_failures=0.03,
        failed_logins=0.08,
        expiries=0.02,
        load_median=1.3,
    ),
    "rough": Level(
        "rough",
        api_errors=0.03,
        upload_failures=0.06,
        failed_logins=0.15,
        expiries=0.05,
        load_median=1.8,
        load_sigma=0.5,
    ),
}

#: Requests a second on each critical route.
SIZES = {"tiny": 0.05, "medium": 1.0, "busy": 4.0}


@dataclass(frozen=True)
class Fault:
    """Something going wrong on a site from ``start`` to ``end`` (simulated seconds).

    ``kind`` is one of ``api`` (``share`` of requests on ``route`` answer 503), ``site``
    (every route, the home page included, answers 502 at ``share``), ``uploads``
    (``share`` of uploads fail), ``dashboard`` (loads take ``factor`` times longer),
    ``signin`` (``share`` of sign-ins fail), ``expiry`` (sessions expire ``factor`` times
    as often) or ``storm`` (one client retries ``route`` ``factor`` times a second, each
    answered 503).
    """

    kind: str
    start: float
    end: float
    share: float = 1.0
    factor: float = 1.0
    route: str = "/media-upload"

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class _Stream:
    kind: str  # request, login, expiry, upload, page_load
    key: str
    rate: float
    fail: float = 0.0
    next_at: float = 0.0
    #: A stream that runs only while this fault does (the extra expiries of an expiry fault).
    during: Fault | None = None


@dataclass
class Site:
    """One simulated site: its size, level, people and faults, and who the faults hurt."""

    name: str
    rate: float
    level: Level
    faults: Sequence[Fault] = ()
    people: int = 400
    seed: int = 0
    #: Users hurt by each fault (by index into ``faults``), filled in by :func:`play`.
    hurt: list[set[str]] = field(default_factory=list)
    #: Every bad event, ``(time, signal, key, user)``, when ``keep_bad`` (for scoring outages).
    bad: list[tuple[float, str, str, str]] = field(default_factory=list)
    keep_bad: bool = False

    def hurt_between(self, start: float, end: float, signals: Sequence[str], key: str | None = None) -> int:
        """Distinct people with a bad event of ``signals`` (on ``key``, if given) in ``[start, end)``."""
        return len(
            {u for t, sig, k, u in self.bad if start <= t < end and sig in signals and (key is None or k == key)}
        )

    def streams(self) -> list[_Stream]:
        r, lv = self.rate, self.level
        found = [_Stream("request", route, r, lv.api_errors) for route in CRITICAL]
        found += [
            _Stream("request", OTHER, r, lv.api_errors),
            _Stream("request", "/login", r / 4, lv.api_errors),
            _Stream("login", "", r / 4, lv.failed_logins),
            _Stream("expiry", "", lv.expiries * r),
            _Stream("upload", "", r / 4, lv.upload_failures),
            _Stream("page_load", DASHBOARD, r / 2),
        ]
        found += [
            _Stream("expiry", "", lv.expiries * r * (f.factor - 1), during=f) for f in self.faults if f.kind == "expiry"
        ]
        return found


class SimClock:
    """Simulated wall time: moved by the scenario, never slept on."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - passes are driven by hand
        raise RuntimeError("the simulation drives passes itself")


@dataclass
class Outcome:
    """What a scenario did: every transition of every pass, and the monitor at the end."""

    monitor: nmh.Monitor
    transitions: list[nmh.Transition]
    sites: dict[str, Site]
    seconds: float

    def incidents(self, site: str) -> list[nmh.Incident]:
        """Every incident the site had, as last stored (resolved ones included)."""
        latest: dict[str, nmh.Incident] = {}
        for t in self.transitions:
            if t.incident.site == site:
                latest[t.incident.id] = t.incident
        return sorted(latest.values(), key=lambda i: i.opened_at)


def play(sites: Iterable[Site], seconds: float, *, start: float = EPOCH, **settings: Any) -> Outcome:
    """Run ``sites`` for ``seconds`` of simulated time through one monitor; see the module doc."""
    by_name = {site.name: site for site in sites}
    clock = SimClock(start)
    monitor = nmh.Monitor(next(iter(by_name)), store="memory://", clock=clock, load_entrypoints=False, **settings)
    tick = monitor.settings.tick_seconds
    plans = []
    for site in by_name.values():
        rng = random.Random(f"{site.name}:{site.seed}")
        streams = site.streams()
        for stream in streams:
            begins = start if stream.during is None else stream.during.start
            stream.next_at = begins + rng.expovariate(stream.rate) if stream.rate > 0 else math.inf
        storms = [f for f in site.faults if f.kind == "storm"]
        site.hurt = [set() for _ in site.faults]
        site.bad = []
        people = [f"{site.name}-p{n}" for n in range(site.people)]
        plans.append((site, rng, streams, storms, people))
    transitions: list[nmh.Transition] = []

    async def main() -> None:
        next_pass = start + tick
        end = start + seconds
        while clock.t < end:
            second = clock.t
            for site, rng, streams, storms, people in plans:
                _one_second(monitor, site, rng, streams, storms, people, second)
            clock.t = second + 1.0
            if clock.t >= next_pass:
                evaluation = await monitor.evaluate()
                transitions.extend(evaluation.transitions)
                next_pass += tick

    anyio.run(main)
    return Outcome(monitor, transitions, by_name, seconds)


def _one_second(
    monitor: nmh.Monitor,
    site: Site,
    rng: random.Random,
    streams: list[_Stream],
    storms: list[Fault],
    people: list[str],
    second: float,
) -> None:
    """Record the events of one simulated second of a site."""
    until = second + 1.0
    lv = site.level
    faults = [(i, f) for i, f in enumerate(site.faults) if f.active(second)]
    for stream in streams:
        while stream.next_at < until:
            stream.next_at += rng.expovariate(stream.rate)
            if stream.during is not None and not stream.during.active(second):
                continue
            user = people[int(rng.random() * len(people))]
            if _event(monitor, site, rng, stream, faults, user, lv) and site.keep_bad:
                site.bad.append((second, stream.kind, stream.key, user))
    for fault in storms:
        if fault.active(second):
            index = site.faults.index(fault)
            client = f"{site.name}-storm"
            for _ in range(int(fault.factor)):
                monitor.record_request(fault.route, 503, 0.05, user=client, site=site.name)
            site.hurt[index].add(client)
            if site.keep_bad:
                site.bad.append((second, "request", fault.route, client))


def _event(
    monitor: nmh.Monitor,
    site: Site,
    rng: random.Random,
    stream: _Stream,
    faults: list[tuple[int, Fault]],
    user: str,
    lv: Level,
) -> bool:
    """Record one event; True when it was a bad one (a failure, an expiry, a slow load)."""
    name = site.name
    kind = stream.kind
    if kind == "request":
        route = stream.key
        bad = _fails(
            rng,
            site,
            stream,
            faults,
            user,
            lambda f: (f.kind == "api" and f.route == route) or f.kind == "site",
        )
        monitor.record_request(route, 503 if bad else 200, 0.05, user=user, site=name)
        return bad
    if kind == "login":
        bad = _fails(rng, site, stream, faults, user, lambda f: f.kind == "signin")
        monitor.record_login(not bad, user=user, site=name)
        return bad
    if kind == "expiry":
        monitor.record_session_expired(user=user, site=name)
        if stream.during is not None:
            site.hurt[site.faults.index(stream.during)].add(user)
        return True
    if kind == "upload":
        bad = _fails(rng, site, stream, faults, user, lambda f: f.kind == "uploads")
        monitor.record_upload(not bad, user=user, site=name)
        return bad
    factor, hit = 1.0, None
    for i, f in faults:
        if f.kind == "dashboard":
            factor, hit = f.factor, i
    seconds = lv.load_median * factor * math.exp(rng.gauss(0.0, lv.load_sigma))
    if hit is not None and seconds > 3.0:
        site.hurt[hit].add(user)
    monitor.record_page_load(stream.key, seconds, user=user, site=name)
    return seconds > 3.0


def _fails(
    rng: random.Random,
    site: Site,
    stream: _Stream,
    faults: list[tuple[int, Fault]],
    user: str,
    strikes: Callable[[Fault], bool],
) -> bool:
    """Whether one event of ``stream`` fails: at its everyday rate, or at the share of an
    active fault that ``strikes`` it, whose people it then hurt."""
    fail, hit = stream.fail, None
    for i, fault in faults:
        if strikes(fault):
            fail, hit = max(fail, fault.share), i
    bad = rng.random() < fail
    if bad and hit is not None:
        site.hurt[hit].add(user)
    return bad
