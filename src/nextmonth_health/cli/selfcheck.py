"""``selfcheck``: play a scripted incident through the real pipeline and report what worked.

Record → store → checks → incident → renderer → notice → the kept alert, under a fake
clock: a quiet hour of thirty people, then twelve of them whose uploads fail (503s on
``/media-upload``), then recovery. Each stage of the Stage 5 confirmation is computed from
what actually happened — the incident opened by a bundled check, the notice users were
shown and its wording, the ⚡ Health Alert the monitor kept and its count of
affected users, and that all of it resolved — so a broken stage prints ``"false"``, says
why on stderr and exits 1.

With ``--store`` it proves a deployment's store works. The scripted traffic is dated
2001-01-01 and recorded under a site of its own (``selfcheck-<random>``), so the
deployment's evaluator never mistakes it for today's traffic and trims it away within a
minute; the selfcheck evaluates only its own site and never trims the store.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sys
import time
from collections.abc import Iterable
from typing import Any

import click
from attrs import define, field

from ._common import (
    EXIT_PROBLEM,
    build_monitor,
    configure_logging,
    global_options,
    options,
    plural,
    probe_store,
)

__all__ = ["ALARM_WORDS", "INTERNAL_NAMES", "command", "notice_problems", "run_selfcheck"]

#: 2001-01-01 09:00:00 UTC, a Monday: long past, so a deployment's store forgets it at once.
START = 978_339_600.0
TICK = 15.0
QUIET_SECONDS = 3600.0
SPIKE_SECONDS = 300.0
RECOVERY_SECONDS = 1200.0
PEOPLE = 30
FAILING = 12

STATUS_DONE = "Support System Stage 5 Completed"
STATUS_NOT_DONE = "Support System Stage 5 Not Completed"

# The same wording rules tests/test_notices.py holds the bundled templates to.
ALARM_WORDS = (
    "error", "fail", "failure", "crash", "down", "outage", "broken", "bug", "exception", "critical", "alert",
    "urgent", "warning", "invalid", "wrong", "your fault", "you did", "5xx", "server", "database", "http",
)  # fmt: skip
INTERNAL_NAMES = (
    "api_errors", "dashboard_load", "session_failures", "upload_failures", "cinematic", "admin_panel",
    "nextmonth", "media-upload", "page_load", "session_expired", "degraded", "incident", "p75", "api",
    "timeout", "threshold",
)  # fmt: skip


def notice_problems(title: str, message: str, extra_names: Iterable[str] = ()) -> list[str]:
    """What is wrong with a notice's words for people; empty when they are calm and plain."""
    problems = []
    for part, text in (("title", title), ("message", message)):
        if not text or text != text.strip():
            problems.append(f"the {part} is empty or has stray spaces")
            continue
        if re.search(r"\d", text):
            problems.append(f"the {part} shows a number: {text!r}")
        if any(c in text for c in "/_\\<>{"):
            problems.append(f"the {part} shows a path, code or markup: {text!r}")
        lowered = text.lower()
        for word in ALARM_WORDS:
            if re.search(rf"\b{re.escape(word)}(?:s|es|ed|ing|ure|ures)?\b", lowered):
                problems.append(f"the {part} uses the alarm or blame word {word!r}: {text!r}")
        for name in (*INTERNAL_NAMES, *extra_names):
            if re.search(rf"\b{re.escape(name.lower())}\b", lowered):
                problems.append(f"the {part} names the internal {name!r}: {text!r}")
    if len(title) > 40 or len(message) > 200:
        problems.append("the notice is too long for an overlay (title 40, message 200 characters)")
    if message.strip() and message.rstrip()[-1] not in ".!…":
        problems.append(f"the message is not a finished sentence: {message!r}")
    if title.isupper() or "!" in title:
        problems.append(f"the title shouts: {title!r}")
    return problems


@define
class Stage:
    key: str
    label: str
    ok: bool = False
    detail: str = ""


@define
class Result:
    site: str
    store: str
    stages: list[Stage]
    simulated: float = 0.0
    elapsed: float = 0.0
    problems: list[str] = field(factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)

    def confirmation(self) -> dict[str, str]:
        out = {"status": STATUS_DONE if self.ok else STATUS_NOT_DONE}
        out.update({s.key: "true" if s.ok else "false" for s in self.stages})
        return out


def _clock_text(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


async def run_selfcheck(monitor: Any, clock: Any) -> Result:
    """Play the script on ``monitor`` (built on ``clock``) and judge every stage."""
    from ..values import TransitionKind

    site = monitor.site
    rng = random.Random(5)
    people = [f"person-{n:02d}" for n in range(1, PEOPLE + 1)]
    failing = set(people[:FAILING])
    proactive = Stage("proactive_health_monitoring_operational", "proactive health monitoring")
    messaging = Stage("user_preemptive_messaging_operational", "user preemptive messaging")
    admin = Stage("admin_alerts_operational", "admin alerts")
    result = Result(site=site, store=monitor.store.url, stages=[proactive, messaging, admin])
    bundled = {c.name for c in monitor.checks if type(c).__module__.startswith("nextmonth_health.plugins.")}
    started = time.perf_counter()

    def traffic(spike: bool) -> None:
        for person in people:
            broken = spike and person in failing
            if broken or rng.random() < 0.3:
                status = 503 if broken else 201
                monitor.record_request(
                    "/media-upload", status=status, duration=rng.uniform(0.2, 0.9), user=person, site=site
                )
                monitor.record_upload(ok=not broken, user=person, size=rng.randint(100_000, 5_000_000), site=site)
            if rng.random() < 0.3:
                monitor.record_request(
                    f"/bookings/{rng.randint(1, 99)}", status=200, duration=0.1, user=person, site=site
                )
            if rng.random() < 0.3:
                monitor.record_request("/portal/home", status=200, duration=0.1, user=person, site=site)
            if rng.random() < 0.1:
                monitor.record_page_load("/dashboard", seconds=rng.uniform(0.6, 1.8), user=person, site=site)
            if rng.random() < 0.02:
                monitor.record_login(ok=True, user=person, site=site)

    transitions: list[tuple[str, Any]] = []

    async def play(phase: str, seconds: float, spike: bool, on_pass: Any = None) -> None:
        end = clock.now() + seconds
        while clock.now() < end:
            traffic(spike)
            evaluation = await monitor.evaluate()
            for failure in evaluation.failures:
                result.problems.append(f"check {failure.check} failed: {failure.error}")
            transitions.extend((phase, t) for t in evaluation.transitions)
            if on_pass is not None:
                on_pass()
            clock.advance(TICK)

    notices_seen: list[Any] = []
    calm_areas_noticed: list[str] = []
    alerts_seen: list[Any] = []

    def watch() -> None:
        shown = monitor.notices("uploads", site=site)
        if shown and not notices_seen:
            notices_seen.append(shown[0])
        for area in ("bookings", "portal", "dashboard", "login"):
            if monitor.notices(area, site=site):
                calm_areas_noticed.append(area)
        if not alerts_seen:
            alerts_seen.extend(monitor.alerts(site))

    await play("quiet", QUIET_SECONDS, spike=False)
    spike_start = clock.now()
    await play("spike", SPIKE_SECONDS, spike=True, on_pass=watch)
    recovery_start = clock.now()
    await play("recovery", RECOVERY_SECONDS, spike=False)
    result.simulated = clock.now() - START
    result.elapsed = time.perf_counter() - started

    # Proactive monitoring: a bundled check saw the spike in recorded traffic, and only it.
    false_alarms = [t for phase, t in transitions if phase == "quiet"]
    opened = [t.incident for phase, t in transitions if phase == "spike" and t.kind is TransitionKind.OPENED]
    by_bundled = [i for i in opened if i.check in bundled and i.area == "uploads"]
    stored = {i.id: i for i in monitor.store.incidents(site)}
    if false_alarms:
        proactive.detail = "false alarm in the quiet hour: " + ", ".join(
            f"{t.kind} {t.incident.check} {t.incident.key}".strip() for t in false_alarms
        )
    elif not by_bundled:
        proactive.detail = (
            f"no bundled check opened an incident while {FAILING} of {PEOPLE} people's uploads failed "
            f"({', '.join(sorted(bundled)) or 'no bundled checks loaded'})"
        )
    elif not all(i.id in stored for i in by_bundled):
        proactive.detail = "the incidents were not kept by the store"
    else:
        final = [stored[i.id] for i in by_bundled]
        unresolved = [i for i in final if i.is_open]
        if unresolved:
            proactive.detail = "the incident never resolved after recovery: " + ", ".join(_name(i) for i in unresolved)
        else:
            first = min(i.opened_at.timestamp() for i in final)
            last = max(i.resolved_at.timestamp() for i in final if i.resolved_at)
            proactive.ok = True
            proactive.detail = (
                f"{' and '.join(_name(i) for i in final)} opened {first - spike_start:.0f} s into the spike, "
                f"resolved {(last - recovery_start) / 60:.0f} min after recovery; quiet hour: no incidents"
            )

    # Preemptive messaging: the right words at the right place, gone once it is over.
    extra_names = [c.name for c in monitor.checks] + [s.name for s in monitor.sinks]
    after = monitor.notices("uploads", site=site)
    if not notices_seen:
        why = "no incident was opened" if not by_bundled else "no renderer answered for the incident"
        messaging.detail = f'no notice was shown at "uploads" during the spike ({why})'
    elif problems := notice_problems(notices_seen[0].title, notices_seen[0].message, extra_names):
        messaging.detail = "the notice's words break the wording rules: " + "; ".join(problems)
    elif calm_areas_noticed:
        messaging.detail = f"a notice was shown where all was well: {sorted(set(calm_areas_noticed))}"
    elif after:
        messaging.detail = f'the notice at "uploads" was still showing after recovery: {after[0].title!r}'
    else:
        messaging.ok = True
        messaging.detail = f'"{notices_seen[0].title}" shown at "uploads" during the spike, gone after recovery'

    # Admin alerts: the monitor kept one ⚡ Health Alert naming the people hurt.
    impact = re.compile(r"Impact detected for (\d+) users?\b")
    raised = [a for a in alerts_seen if a.message.startswith("⚡ Health Alert") and a.area == "uploads"]
    final_alerts = {a.incident_id: a for a in monitor.store.alerts(site)}
    counted = [int(m.group(1)) for a in raised if (m := impact.search(a.message))]
    if not raised:
        admin.detail = "no ⚡ Health Alert was raised for the failing uploads" + (
            "" if by_bundled else " (no incident was opened)"
        )
    elif counted != [FAILING]:
        admin.detail = f"expected one alert saying 'Impact detected for {FAILING} users', got: " + " | ".join(
            a.message.replace("\n", " ") for a in raised
        )
    elif raised[0].incident_id not in final_alerts:
        admin.detail = "the alert was not kept in the store for the admin view"
    elif (kept := final_alerts[raised[0].incident_id]).resolved_at is None:
        admin.detail = "the alert was still active after recovery"
    elif len([a for a in final_alerts.values() if a.area == "uploads"]) != 1:
        admin.detail = "one problem raised more than one alert"
    else:
        admin.ok = True
        first_line = raised[0].message.splitlines()[0]
        admin.detail = (
            f"{first_line} ... Impact detected for {FAILING} users, kept for the admin view, "
            f"resolved at {_clock_text(kept.resolved_at.timestamp())}"
        )
    if monitor.errors.total:
        result.problems.append(f"the SDK swallowed internal errors: {dict(monitor.errors.counts)}")
    return result


def _name(incident: Any) -> str:
    return f"{incident.check} ({incident.key})" if incident.key else incident.check


@click.command("selfcheck", short_help="Prove the pipeline works; print the Stage 5 JSON.")
@global_options
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON confirmation.")
def command(as_json: bool) -> None:
    """Play a scripted incident through the real pipeline and confirm each stage works.

    Record → store → checks → incident → notice → admin alert → recovery, in a second,
    under a fake clock. Prints the Stage 5 confirmation with each value computed from
    what happened; a stage that did not work prints "false", says why on stderr and
    exits 1. Uses a memory store unless --store names one to prove.
    """
    import anyio

    from ..clock import FakeClock

    opts = options()
    configure_logging(opts.verbose, drop=True)
    url = opts.store_url(explicit_only=True)
    shared = url != "memory://"
    site = opts.site or (f"selfcheck-{secrets.token_hex(3)}" if shared else opts.site_name("selfcheck"))
    clock = FakeClock(START)
    monitor = build_monitor(
        site=site,
        store=url,
        clock=clock,
        plugins=opts.config.plugins,
        sites=opts.config.sites,
        load_entrypoints=False,
        **opts.settings(),
    )
    probe_store(monitor.store)
    if shared:
        # Only ever touch our own site, and never trim what the deployment keeps.
        monitor.store.sites = lambda: {site}
        monitor.store.trim = lambda **_: None
    try:
        result = anyio.run(run_selfcheck, monitor, clock)
    finally:
        monitor.store.close()
    if not as_json:
        click.echo(
            f"selfcheck of site {site!r} on {url} (fake clock; {plural(PEOPLE, 'person', 'people')}, {FAILING} failing)"
        )
        for stage in result.stages:
            mark = "✓" if stage.ok else "✗"
            click.echo(f"  {mark} {stage.label:<28} {stage.detail}")
        click.echo(f"  {result.simulated / 3600:.1f} h of traffic played in {result.elapsed:.2f} s")
    click.echo(json.dumps(result.confirmation(), indent=2))
    for stage in result.stages:
        if not stage.ok:
            click.echo(f"selfcheck: {stage.label} not operational: {stage.detail}", err=True)
    for problem in result.problems:
        click.echo(f"selfcheck: {problem}", err=True)
    if not result.ok:
        sys.exit(EXIT_PROBLEM)
