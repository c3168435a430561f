"""The demo's story, shared by ``demo --fast`` (a fake clock) and the live demo (the real one).

One morning on a client site: calm use by two dozen people, then uploads start failing
(a little, then badly), a fix, then the dashboard slows down until someone fixes that too.
:class:`Pace` says how long each part lasts and which monitor settings suit it;
:class:`Faults` says, at any moment, how uploads and the dashboard behave; the
:class:`Narrator` prints what the monitor did about it — detected, notice shown, alert
raised, recovered — one readable line per event, and :meth:`Narrator.verdict` says
whether the whole story happened (the demo doubles as a smoke test).
"""

from __future__ import annotations

import random
import textwrap
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import click
from attrs import define, field, frozen

from ..hooks.specs import hookimpl
from ..values import Notice, Transition, TransitionKind

__all__ = ["FAST", "LIVE", "SITE", "USERS", "Faults", "Narrator", "Pace", "TimelinePlugin"]

SITE = "acme-studio"
USERS = tuple(f"u-{n:02d}" for n in range(1, 25))
WATCHED_AREAS = ("uploads", "dashboard", "bookings", "portal", "login")


@frozen
class Pace:
    """Lengths of the story's parts, in seconds, and the monitor settings that suit them."""

    quiet: float  # calm before anything happens
    light: float  # some uploads fail
    heavy: float  # most uploads fail
    gap: float  # uploads fixed; calm until the dashboard slows
    slow: float  # the dashboard is slow
    tail: float  # the dashboard fixed; watching both recover
    settings: Mapping[str, Any] = field(factory=dict, converter=lambda m: MappingProxyType(dict(m)))

    @property
    def fault_start(self) -> float:
        return self.quiet

    @property
    def heavy_start(self) -> float:
        return self.quiet + self.light

    @property
    def uploads_fixed(self) -> float:
        return self.heavy_start + self.heavy

    @property
    def slow_start(self) -> float:
        return self.uploads_fixed + self.gap

    @property
    def dashboard_fixed(self) -> float:
        return self.slow_start + self.slow

    @property
    def end(self) -> float:
        return self.dashboard_fixed + self.tail

    def beats(self) -> list[tuple[float, str]]:
        """The script's own lines: what the story does, and when."""
        return [
            (0.0, "A quiet spell: portal, bookings, dashboard, sign-ins and uploads, all normal."),
            (self.fault_start, "Uploads start failing: some /media-upload calls return 503."),
            (self.heavy_start, "It gets worse: most uploads fail, and people keep retrying."),
            (self.uploads_fixed, "A fix is deployed: uploads succeed again."),
            (self.slow_start, "The dashboard slows down: pages take four to five seconds to load."),
            (self.dashboard_fixed, "The slow query is fixed: the dashboard loads in a second or two again."),
        ]


#: ``demo --fast``: the default settings (15 s ticks, 5 min windows, 10 min to escalate).
FAST = Pace(quiet=3600, light=240, heavy=480, gap=780, slow=1020, tail=1380)

#: The live demo: the same story in under two minutes, on settings scaled down to fit.
LIVE = Pace(
    quiet=12,
    light=8,
    heavy=12,
    gap=20,
    slow=30,
    tail=30,
    settings={
        "bucket_seconds": 1,
        "window_seconds": 10,
        "fast_window_seconds": 3,
        "baseline_seconds": 300,
        "tick_seconds": 1.0,
        "flush_seconds": 0.5,
        "cooldown_seconds": 10.0,
        "escalate_after": 20.0,
    },
)


@define
class Faults:
    """How the site behaves ``elapsed`` seconds into the story."""

    pace: Pace
    elapsed: Callable[[], float]
    rng: random.Random = field(factory=lambda: random.Random(2026))

    @property
    def upload_failure_rate(self) -> float:
        t, p = self.elapsed(), self.pace
        if t < p.fault_start or t >= p.uploads_fixed:
            return 0.0
        return 0.2 if t < p.heavy_start else 0.7

    def upload_fails(self) -> bool:
        return self.rng.random() < self.upload_failure_rate

    @property
    def dashboard_slow(self) -> bool:
        t, p = self.elapsed(), self.pace
        return p.slow_start <= t < p.dashboard_fixed

    def dashboard_seconds(self) -> float:
        """How long the dashboard takes to load for one visit."""
        if self.dashboard_slow:
            return self.rng.uniform(3.6, 5.4)
        return self.rng.uniform(0.5, 1.9)


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%a %H:%M:%S")


class Narrator:
    """Prints the timeline and remembers enough of it to judge the story afterwards."""

    def __init__(
        self, now: Callable[[], float], pace: Pace, started: float, *, stamp_of: Callable[[float], str] = stamp
    ) -> None:
        self.now = now
        self.pace = pace
        self.started = started
        self.stamp_of = stamp_of
        self.opened: list[tuple[float, Any]] = []
        self.resolved: list[Any] = []
        self.alerts: dict[str, Any] = {}
        self.alert_order: list[str] = []
        self.notices: dict[str, Notice | None] = dict.fromkeys(WATCHED_AREAS)
        self.shown: list[Notice] = []
        self.false_alarms: list[str] = []
        self.events: list[tuple[float, str]] = []
        self._impact: dict[str, int] = {}
        self._grown: dict[str, int] = {}

    # Printing.

    def say(self, label: str, text: str, *, style: Mapping[str, Any] | None = None) -> None:
        prefix = f"{self.stamp_of(self.now())}  "
        lines: list[str] = []
        for line in text.splitlines():
            indent = line[: len(line) - len(line.lstrip())]
            lines += textwrap.wrap(line, 76, subsequent_indent=indent) or [""]
        self.events.append((self.now() - self.started, label))
        click.echo(prefix + click.style(f"{label:<12}", **(style or {})) + " " + lines[0])
        for line in lines[1:]:
            click.echo(" " * (len(prefix) + 13) + line)

    def beat(self, text: str) -> None:
        self.say("▸ script", text, style={"dim": True})

    # What the monitor did.

    def transition(self, t: Transition) -> None:
        incident = t.incident
        elapsed = self.now() - self.started
        if elapsed < self.pace.fault_start:
            self.false_alarms.append(f"{t.kind} {incident.check} {incident.key}".strip())
        area = f'"{incident.area}"'
        if t.kind is TransitionKind.OPENED:
            self.opened.append((elapsed, incident))
            self._impact[incident.area] = max(self._impact.get(incident.area, 0), incident.affected_users)
            self.say(
                "DETECTED",
                f"{incident.summary} at {area}: {incident.severity}, "
                f"{_people(incident.affected_users)} affected so far.",
                style={"fg": "yellow", "bold": True},
            )
        elif t.kind is TransitionKind.ESCALATED:
            self.say("ESCALATED", f"{incident.summary}: still not right, now critical.", style={"fg": "yellow"})
        elif t.kind is TransitionKind.UPDATED:
            self._grown[incident.area] = max(self._grown.get(incident.area, 0), incident.affected_users)
        elif t.kind is TransitionKind.RESOLVED:
            from ..tell.alerts import resolution_message

            self.resolved.append(incident)
            self.say("RESOLVED", resolution_message(incident), style={"fg": "green", "bold": True})
        alert = t.alert
        if alert is not None and t.kind in (TransitionKind.OPENED, TransitionKind.ESCALATED):
            if alert.incident_id in self.alerts:
                self.say(
                    "SAME ALERT",
                    f"{incident.summary} joins the alert above: one problem, one alert.",
                    style={"fg": "magenta"},
                )
            else:
                self.alert_order.append(alert.incident_id)
                message = textwrap.indent(alert.message, "  ")
                self.say(
                    "ADMIN ALERT", f"for Rob, in the admin panel:\n{message}", style={"fg": "magenta", "bold": True}
                )
            self.alerts[alert.incident_id] = alert

    def look(self, notices_of: Callable[[str], list[Notice]]) -> None:
        """After a pass: say how far impact has grown, and what each area shows people now."""
        for area, users in sorted(self._grown.items()):
            # Impact grows a person or two at a time; say so when it has grown by a quarter.
            if users >= max(self._impact.get(area, 0) * 1.25, self._impact.get(area, 0) + 3):
                self._impact[area] = users
                self.say("IMPACT", f'{_people(users)} affected at "{area}" now.')
        self._grown.clear()
        for area in WATCHED_AREAS:
            found = notices_of(area)
            notice = found[0] if found else None
            if notice == self.notices[area]:
                continue
            if notice is not None:
                self.shown.append(notice)
                self.say(
                    "USER NOTICE",
                    f'at "{area}": {notice.title}\n  {notice.message}',
                    style={"fg": "cyan", "bold": True},
                )
            else:
                self.say("NOTICE GONE", f'people at "{area}" see the page as usual again.', style={"fg": "cyan"})
                self._impact.pop(area, None)
            self.notices[area] = notice

    # Judging.

    def verdict(self, *, open_now: list[Any], errors: int) -> list[str]:
        """What did not happen as the story says it should; empty when all of it did."""
        problems = []
        if self.false_alarms:
            problems.append(f"false alarm during the quiet spell: {self.false_alarms}")
        areas_opened = {i.area for _, i in self.opened}
        areas_alerted = {a.area for a in self.alerts.values()}
        areas_noticed = {n.area for n in self.shown}
        for area, what in (("uploads", "failing uploads"), ("dashboard", "slow dashboard")):
            if area not in areas_opened:
                problems.append(f"the {what} were never detected")
            if area not in areas_noticed:
                problems.append(f"no notice was shown at {area!r}")
            if area not in areas_alerted:
                problems.append(f"the admin was never alerted about the {what}")
        if open_now:
            problems.append(f"{len(open_now)} incident(s) still open at the end: {[i.summary for i in open_now]}")
        if any(self.notices.values()):
            problems.append("a notice was still showing at the end")
        if errors:
            problems.append(f"the SDK swallowed {errors} internal error(s); -v shows them")
        return problems


class TimelineSink:
    """An alert sink that tells the narrator about every transition, as it is delivered."""

    name = "demo_timeline"

    def __init__(self, narrator: Narrator) -> None:
        self.narrator = narrator

    def send(self, transition: Transition) -> None:
        self.narrator.transition(transition)


class TimelinePlugin:
    """An in-code plugin: registers the timeline sink the same way any plugin would."""

    def __init__(self, narrator: Narrator) -> None:
        self.sink = TimelineSink(narrator)

    @hookimpl
    def register_alert_sinks(self, register: Callable[[Any], None]) -> None:
        register(self.sink)


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def wall_stamp(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))
