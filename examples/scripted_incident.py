"""A scripted incident on "acme-studio", played on a fake clock in a few seconds.

Run it with ``make demo`` (or ``.venv/bin/python examples/scripted_incident.py``). The
story, in simulated time:

* 09:00  a quiet hour: twenty people use the portal, bookings and the dashboard, sign in
  and upload media; the monitor evaluates every 15 s and stays silent;
* 10:00  uploads start failing (503s on ``/media-upload``), a little at first, then badly;
  the monitor detects it, shows a calm notice at "uploads", then alerts the admin;
* 10:15  a fix goes out; after the cool-down the incidents resolve and the notice goes;
* next day: resolved incidents have left the admin's recent list (24 h retention).

It doubles as a smoke test: it exits 1, saying why, if any part of the story did not
happen (no alert, a false alarm in the quiet hour, an incident that never cleared...).
``--verbose`` also prints the SDK's structured log to stderr.
"""

from __future__ import annotations

import logging
import random
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

import anyio

import nextmonth_health as nmh
from nextmonth_health.tell.alerts import resolution_message
from nextmonth_health.testing import FakeClock

SITE = "acme-studio"
USERS = [f"u-{n:02d}" for n in range(1, 21)]
TICK = 15.0  # the runner's default tick_seconds
QUIET_START = FakeClock().now()  # Monday 09:00 UTC
TROUBLE_START = QUIET_START + 3600  # 10:00: some uploads fail
TROUBLE_WORSE = TROUBLE_START + 240  # 10:04: most uploads fail
FIX_DEPLOYED = TROUBLE_START + 900  # 10:15: a fix goes out
STORY_END = FIX_DEPLOYED + 1800  # 10:45: half an hour of watching the recovery

ALERTING = (nmh.TransitionKind.OPENED, nmh.TransitionKind.ESCALATED)


def clock_text(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%a %H:%M:%S")


def quiet_logging(clock: FakeClock, verbose: bool) -> list[dict[str, Any]]:
    """Keep the SDK's log off the timeline: captured, echoed to stderr if asked.

    The SDK logs through the standard ``logging`` module under ``nextmonth_health.*`` and
    never configures it; the host does, and here the host is us.
    """
    captured: list[dict[str, Any]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(dict(record.msg) if isinstance(record.msg, dict) else {"event": record.getMessage()})
            if verbose:
                print(
                    f"{clock_text(clock.now())}  {record.levelname.lower():<8} {record.getMessage()}", file=sys.stderr
                )

    sdk = logging.getLogger("nextmonth_health")
    sdk.addHandler(Capture())
    sdk.setLevel(logging.INFO)
    sdk.propagate = False
    return captured


class Timeline:
    """Prints one event per line (wrapped, indented) at the clock's simulated time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def say(self, label: str, text: str) -> None:
        head = f"{clock_text(self.clock.now())}  {label:<12} "
        lines = []
        for line in text.splitlines():
            indent = line[: len(line) - len(line.lstrip())]
            lines += textwrap.wrap(line, 76, subsequent_indent=indent) or [""]
        print(head + lines[0])
        for line in lines[1:]:
            print(" " * len(head) + line)


def upload_failure_rate(now: float) -> float:
    if now < TROUBLE_START or now >= FIX_DEPLOYED:
        return 0.0
    return 0.2 if now < TROUBLE_WORSE else 0.7


def play_traffic(monitor: nmh.Monitor, rng: random.Random, now: float) -> None:
    """Fifteen seconds of ordinary use by the site's people (and failing uploads, when due)."""
    failing = upload_failure_rate(now)
    for user in USERS:
        # People retry a failing upload, so attempts rise during the incident.
        if rng.random() < (0.25 if failing else 0.06):
            ok = rng.random() >= failing
            took = rng.uniform(0.3, 1.2)
            status = 201 if ok else 503
            monitor.record_request("/media-upload", status=status, duration=took, user=user)
            monitor.record_upload(ok=ok, user=user, size=rng.randint(200_000, 8_000_000))
        if rng.random() < 0.08:
            booking = f"/bookings/{rng.randint(1, 400)}"
            monitor.record_request(booking, status=200, duration=rng.uniform(0.05, 0.3), user=user)
        if rng.random() < 0.10:
            took = rng.uniform(0.05, 0.4)
            monitor.record_request("/portal/projects", status=200, duration=took, user=user)
        if rng.random() < 0.05:
            seconds = rng.uniform(0.8, 2.2)
            monitor.record_request("/dashboard", status=200, duration=seconds / 3, user=user)
            monitor.record_page_load("/dashboard", seconds=seconds, user=user)
        if rng.random() < 0.01:
            # Now and then someone mistypes a password, or finds their session expired.
            monitor.record_request("/login", status=200, duration=0.1, user=user)
            monitor.record_login(ok=rng.random() > 0.3, user=user)
        if rng.random() < 0.002:
            monitor.record_session_expired(user=user)
    if rng.random() < 0.01:
        # The odd stray server error: not enough to bother anyone.
        monitor.record_request("/bookings/17", status=500, duration=0.2, user=rng.choice(USERS))


async def main(verbose: bool = False) -> int:
    clock = FakeClock()
    log_events = quiet_logging(clock, verbose)
    monitor = nmh.Monitor(site=SITE, store="memory://", clock=clock, load_entrypoints=False)
    timeline = Timeline(clock)
    rng = random.Random(2026)

    opened: list[nmh.Incident] = []
    resolved: list[nmh.Incident] = []
    alerts: list[nmh.Alert] = []
    notices_shown: list[nmh.Notice] = []
    false_alarms: list[str] = []
    check_failures: list[nmh.CheckFailure] = []
    shown: nmh.Notice | None = None

    async def tick() -> None:
        """Fifteen seconds of traffic, one evaluation pass, and what people would see."""
        nonlocal shown
        now = clock.now()
        play_traffic(monitor, rng, now)
        evaluation = await monitor.evaluate()
        check_failures.extend(evaluation.failures)
        impact = []
        for t in evaluation.transitions:
            incident = t.incident
            if now < TROUBLE_START:
                false_alarms.append(f"{t.kind} {incident.check} {incident.key}")
            if t.kind is nmh.TransitionKind.OPENED:
                opened.append(incident)
                timeline.say(
                    "DETECTED",
                    f"{incident.summary} ({incident.severity}) at {incident.area!r}, "
                    f"{incident.affected_users} users affected so far.",
                )
            elif t.kind is nmh.TransitionKind.ESCALATED:
                timeline.say("ESCALATED", f"{incident.summary}: now critical.")
            elif t.kind is nmh.TransitionKind.UPDATED:
                impact.append(f"{incident.affected_users} users ({incident.summary})")
            elif t.kind is nmh.TransitionKind.RESOLVED:
                resolved.append(incident)
                timeline.say("RESOLVED", resolution_message(incident))
            if t.alert is not None and t.kind in ALERTING:
                message = textwrap.indent(t.alert.message, "  ")
                if any(a.incident_id == t.alert.incident_id for a in alerts):
                    # Same area, same problem: the one alert grows instead of a second page.
                    timeline.say("SAME ALERT", f"one problem, one alert; it now reads:\n{message}")
                else:
                    timeline.say("ADMIN ALERT", f"for Rob, in the admin panel:\n{message}")
                alerts.append(t.alert)
        if impact:
            # A critical incident's alert is updated in place as impact grows: no new alert.
            timeline.say("IMPACT", ", ".join(impact))
        notice = next(iter(monitor.notices("uploads")), None)
        if notice != shown:
            if notice is not None:
                notices_shown.append(notice)
                timeline.say("USER NOTICE", f'at "uploads": {notice.title}\n  {notice.message}')
            else:
                timeline.say("NOTICE GONE", 'People at "uploads" see the page as usual again.')
            shown = notice
        clock.advance(TICK)

    print(f"Scripted incident on {SITE!r}: {len(USERS)} people, one check every {TICK:.0f} s.\n")
    timeline.say("quiet hour", "Portal, bookings, dashboard, sign-ins and uploads, all normal.")
    while clock.now() < TROUBLE_START:
        await tick()
    events = monitor.status().events_flushed
    timeline.say("quiet hour", f"over: {events} events recorded, {len(false_alarms)} incidents.")
    timeline.say("▸ script", "uploads start failing: some /media-upload calls return 503.")
    while clock.now() < TROUBLE_WORSE:
        await tick()
    timeline.say("▸ script", "it gets worse: most uploads fail; people keep retrying.")
    while clock.now() < FIX_DEPLOYED:
        await tick()
    timeline.say("▸ script", "a fix is deployed: uploads succeed again.")
    while clock.now() < STORY_END:
        await tick()

    still_open = monitor.incidents(SITE, include_resolved=False)
    recent = monitor.incidents(SITE)
    listed_alerts = monitor.alerts(SITE)
    timeline.say(
        "admin view",
        f"{len(still_open)} open, {len(recent) - len(still_open)} resolved in the last 24 h; "
        f"{len(listed_alerts)} alerts, {sum(a.is_active for a in listed_alerts)} still active.",
    )

    last = max((i.resolved_at.timestamp() for i in resolved if i.resolved_at), default=clock.now())
    clock.set(max(clock.now(), last + monitor.settings.resolved_retention + TICK))
    await monitor.evaluate()
    left_incidents, left_alerts = monitor.incidents(SITE), monitor.alerts(SITE)
    timeline.say(
        "CLEARED" if not (left_incidents or left_alerts) else "NOT CLEARED",
        f"24 h on: {len(left_incidents)} incidents, {len(left_alerts)} alerts in the admin's list.",
    )

    problems = []
    if false_alarms:
        problems.append(f"false alarm in the quiet hour: {false_alarms}")
    if not opened:
        problems.append("the upload failures were never detected")
    if not any(n.area == "uploads" and n.title and n.message for n in notices_shown):
        problems.append('no user notice was shown at "uploads"')
    if not any("Impact detected for" in a.message for a in alerts):
        problems.append("the admin was never alerted")
    if not any(i.check == "api_errors" and i.key == "/media-upload" for i in opened):
        problems.append("no API error incident on /media-upload")
    if still_open or len(resolved) != len(opened):
        problems.append(f"not every incident resolved ({len(still_open)} still open)")
    problems_alerted = {i.alert_id for i in recent if i.severity == "critical"}
    if len(listed_alerts) != len(problems_alerted) or any(a.is_active for a in listed_alerts):
        problems.append("expected exactly one alert per problem, each marked resolved")
    if shown is not None:
        problems.append("the user notice was still showing at the end")
    if left_incidents or left_alerts:
        problems.append("resolved incidents or alerts were still listed 24 h later")
    if monitor.errors.total or check_failures:
        problems.append(f"the SDK swallowed errors: {dict(monitor.errors.counts)} {check_failures}")
    if not any(e.get("event") == "nextmonth_health.incident_resolved" for e in log_events):
        problems.append("the structured-log sink never logged the resolution")

    print()
    if problems:
        for problem in problems:
            print(f"SMOKE TEST FAILED: {problem}", file=sys.stderr)
        return 1
    print(
        f"The story played out: {len(opened)} incidents detected, {len({a.incident_id for a in alerts})} admin alert(s), "
        f"all resolved and cleared.\n({len(log_events)} structured log events were kept off this "
        "timeline; --verbose shows them.)"
    )
    return 0


if __name__ == "__main__":
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a terminal without UTF-8 still gets the story
    sys.exit(anyio.run(main, "--verbose" in sys.argv[1:]))
