"""``demo``: the main job — a client site with the SDK wired in, a fault, and what the monitor does.

Live (the default): a small site (:mod:`.demo_site`) under the SDK's ASGI middleware,
served by uvicorn, with two dozen simulated people clicking around it; uploads start
failing, then the dashboard slows down, then both are fixed. The timeline prints as it
happens — detected, notice shown, alert raised, recovered — next to the URLs of the
user page and the admin view. Ctrl-C stops it cleanly.

``--fast``: the same story on a fake clock with the default settings (15 s ticks, 5 min
windows), printed in seconds without a server; ``make demo`` and CI run this. It exits 1,
saying why, if any part of the story did not happen.

Both keep their incidents and alerts in the embedded default store, SQLite, in a file of
their own under the temp directory (removed at exit unless ``--keep``).
"""

from __future__ import annotations

import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from ._common import (
    EXIT_PROBLEM,
    CliError,
    build_monitor,
    configure_logging,
    global_options,
    options,
    plural,
)
from ._story import FAST, LIVE, SITE, USERS, Faults, Narrator, Pace, TimelinePlugin, wall_stamp

__all__ = ["command", "play_fast", "traffic_tick"]


@click.command("demo", short_help="Watch the monitor catch a fault on a demo site.")
@global_options
@click.option(
    "--fast", is_flag=True, help="Play the story in seconds on a fake clock, without a server (what CI runs)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the live demo listens.")
@click.option("--port", default=8320, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--keep", is_flag=True, help="Keep the demo's SQLite file instead of removing it at exit.")
def command(fast: bool, host: str, port: int, keep: bool) -> None:
    """Watch the monitor catch failing uploads and a slow dashboard on a demo site.

    Prints a live timeline (detected, notice shown, alert raised, recovered) and the
    URLs of the user page and the admin view. Ctrl-C stops it. --fast plays the same
    story in seconds on a fake clock.
    """
    opts = options()
    folder = None
    url = opts.store_url(explicit_only=True, default="-")
    if url == "-":
        folder = Path(tempfile.mkdtemp(prefix="nextmonth-health-demo-"))
        url = f"sqlite:///{folder / 'health.db'}"
    seen: list[Any] = []
    try:
        if fast:
            problems = _fast(url, seen, keep or folder is None)
        else:
            problems = _live(url, host, port, seen, keep or folder is None)
    finally:
        if folder is not None and not keep:
            shutil.rmtree(folder, ignore_errors=True)
    if problems:
        for problem in problems:
            click.echo(f"demo: the story did not play out: {problem}", err=True)
        sys.exit(EXIT_PROBLEM)


def _store_line(url: str, kept: bool) -> str:
    return f"Store: {url}" + ("" if kept else " (removed at exit; --keep keeps it)")


# --fast ---------------------------------------------------------------------------------


def traffic_tick(monitor: Any, faults: Faults, rng: random.Random) -> None:
    """One tick's worth of use by the site's people, recorded straight into the monitor."""
    retrying = faults.upload_failure_rate > 0
    for user in USERS:
        if rng.random() < (0.25 if retrying else 0.06):
            ok = not faults.upload_fails()
            monitor.record_request(
                "/media-upload", status=201 if ok else 503, duration=rng.uniform(0.3, 1.2), user=user
            )
            monitor.record_upload(ok=ok, user=user, size=rng.randint(200_000, 8_000_000))
        if rng.random() < 0.08:
            monitor.record_request(
                f"/bookings/{rng.randint(1, 400)}", status=200, duration=rng.uniform(0.05, 0.3), user=user
            )
        if rng.random() < 0.10:
            monitor.record_request("/portal/projects", status=200, duration=rng.uniform(0.05, 0.4), user=user)
        if rng.random() < 0.07:
            seconds = faults.dashboard_seconds()
            monitor.record_request("/dashboard", status=200, duration=seconds * 0.4, user=user)
            monitor.record_page_load("/dashboard", seconds=seconds, user=user)
        if rng.random() < 0.01:
            monitor.record_request("/login", status=200, duration=0.1, user=user)
            monitor.record_login(ok=rng.random() > 0.1, user=user)
        if rng.random() < 0.002:
            monitor.record_session_expired(user=user)
    if rng.random() < 0.01:
        monitor.record_request("/bookings/17", status=500, duration=0.2, user=rng.choice(USERS))


async def play_fast(monitor: Any, clock: Any, pace: Pace, narrator: Narrator) -> list[str]:
    """Play the story tick by tick on ``clock``; returns what did not happen as it should."""
    rng = random.Random(2026)
    start = clock.now()
    faults = Faults(pace, elapsed=lambda: clock.now() - start)
    tick = monitor.settings.tick_seconds
    beats = pace.beats()
    quiet_reported = False
    while clock.now() - start < pace.end:
        elapsed = clock.now() - start
        if not quiet_reported and elapsed >= pace.fault_start:
            quiet_reported = True
            events = monitor.status().events_flushed
            narrator.beat(
                f"The quiet spell is over: {events:,} events recorded, {plural(len(narrator.opened), 'incident')}."
            )
        while beats and beats[0][0] <= elapsed:
            narrator.beat(beats.pop(0)[1])
        traffic_tick(monitor, faults, rng)
        await monitor.evaluate()
        narrator.look(monitor.notices)
        clock.advance(tick)

    open_now = monitor.incidents(include_resolved=False)
    recent = monitor.incidents()
    alerts = monitor.alerts()
    narrator.say(
        "admin view",
        f"{len(open_now)} open, {len(recent) - len(open_now)} resolved in the last 24 h; "
        f"{plural(len(alerts), 'alert')}, {sum(a.is_active for a in alerts)} still active.",
    )
    last = max((i.resolved_at.timestamp() for i in recent if i.resolved_at), default=clock.now())
    clock.set(max(clock.now(), last + monitor.settings.resolved_retention + tick))
    await monitor.evaluate()
    left_incidents, left_alerts = monitor.incidents(), monitor.alerts()
    narrator.say(
        "CLEARED" if not (left_incidents or left_alerts) else "NOT CLEARED",
        f"a day later: {plural(len(left_incidents), 'incident')} and {plural(len(left_alerts), 'alert')} "
        "left in the admin's list.",
        style={"fg": "green"},
    )
    problems = narrator.verdict(open_now=open_now, errors=monitor.errors.total)
    if left_incidents or left_alerts:
        problems.append("resolved incidents or alerts were still listed a day later")
    return problems


def _fast(url: str, seen: list[Any], kept: bool) -> list[str]:
    import anyio

    from ..clock import FakeClock

    opts = options()
    clock = FakeClock()
    configure_logging(opts.verbose, drop=True, seen=seen, stamp=lambda: wall_stamp(clock.now()))
    narrator = Narrator(clock.now, FAST, clock.now())
    monitor = build_monitor(
        site=SITE,
        store=url,
        clock=clock,
        plugins=[*opts.config.plugins, TimelinePlugin(narrator)],
        sites=opts.config.sites,
        load_entrypoints=False,
        **opts.settings(),
    )
    tick = monitor.settings.tick_seconds
    click.echo(f'nextmonth-health demo --fast: one morning on "{SITE}", played on a fake clock.')
    click.echo(
        f"{len(USERS)} people use the site; the monitor judges it every {tick:g} s "
        f"(windows of {monitor.settings.window_seconds // 60} min, escalation after "
        f"{monitor.settings.escalate_after / 60:g} min)."
    )
    click.echo(_store_line(url, kept))
    click.echo()
    started = time.perf_counter()
    try:
        problems = anyio.run(play_fast, monitor, clock, FAST, narrator)
    except KeyboardInterrupt:
        click.echo("\nStopped.")
        return []
    finally:
        monitor.store.close()
    took = time.perf_counter() - started
    click.echo()
    if not problems:
        opened = len(narrator.opened)
        click.echo(
            f"The story played out: {plural(opened, 'incident')} detected, "
            f"{plural(len(narrator.alerts), 'admin alert')}, every one resolved and cleared "
            f"({FAST.end / 3600:.1f} h of the site's morning, and the day after, in {took:.1f} s)."
        )
        click.echo("See it live, with the pages and the admin view in a browser: nextmonth-health demo")
    return problems


# live -----------------------------------------------------------------------------------


def _live(url: str, host: str, port: int, seen: list[Any], kept: bool) -> list[str]:
    import anyio

    from ._server import bind, have_uvicorn, serve_until_signal, url_of

    opts = options()
    configure_logging(opts.verbose, drop=True, seen=seen)
    try:
        from ..web.auth import token_authorizer
        from .demo_site import Crowd, DemoSite, wrap
    except ImportError as exc:
        raise CliError(
            f"the live demo needs the web extra ({exc.name} is missing): pip install 'nextmonth-health[web,cli]' "
            "uvicorn — or run: nextmonth-health demo --fast"
        ) from None
    pace = LIVE
    started = time.time()
    narrator = Narrator(time.time, pace, started, stamp_of=wall_stamp)
    monitor = build_monitor(
        site=SITE,
        store=url,
        plugins=[*opts.config.plugins, TimelinePlugin(narrator)],
        sites=opts.config.sites,
        load_entrypoints=False,
        **opts.settings(forced=pace.settings),
    )
    token = secrets.token_hex(16)
    faults = Faults(pace, elapsed=lambda: time.time() - narrator.started)
    site = DemoSite(monitor, faults)
    app = wrap(site, monitor, authorize=token_authorizer(token))
    crowd = Crowd(app, faults)
    sock = bind(host, port) if have_uvicorn() else None
    settings = monitor.settings

    click.echo(f'nextmonth-health demo: "{SITE}", live. {len(USERS)} people are about to use it.')
    if sock is not None:
        base = url_of(sock)
        click.echo(f"  User page:   {base}/")
        click.echo(f"  Admin view:  {base}/admin/system-health/  (sign in with the token {token})")
        click.echo(f"  Admin API:   curl -H 'Authorization: Bearer {token}' {base}/admin/system-health/api/alerts")
    else:
        click.echo("  (uvicorn is not installed, so there are no pages to open: pip install uvicorn)")
    click.echo(
        f"  The monitor judges the site every {settings.tick_seconds:g} s over {settings.window_seconds} s windows "
        f"(scaled down from 15 s and 5 min so the story fits in two minutes)."
    )
    click.echo("  " + _store_line(url, kept))
    click.echo("  Ctrl-C stops the demo.")
    click.echo()
    verdict: list[str] = []
    stopping = False

    async def story() -> None:
        beats = pace.beats()
        told = False
        narrator.started = time.time()
        while True:
            elapsed = time.time() - narrator.started
            while beats and beats[0][0] <= elapsed:
                narrator.beat(beats.pop(0)[1])
            narrator.look(monitor.notices)
            if not told and elapsed >= pace.end:
                told = True
                open_now = await anyio.to_thread.run_sync(lambda: monitor.incidents(include_resolved=False))
                verdict.extend(narrator.verdict(open_now=open_now, errors=monitor.errors.total))
                click.echo()
                if verdict:
                    for problem in verdict:
                        click.echo(f"  The story did not play out as written: {problem}")
                else:
                    click.echo(
                        f"The story played out: {plural(len(narrator.opened), 'incident')} detected, "
                        f"{plural(len(narrator.alerts), 'admin alert')}, all resolved."
                    )
                click.echo(
                    "The site stays up with calm traffic "
                    f"({crowd.requests:,} requests so far): look around, then press Ctrl-C."
                )
            await anyio.sleep(0.25)

    def on_stop() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            click.echo("\nStopping: finishing requests and flushing the monitor…")

    try:
        anyio.run(
            lambda: serve_until_signal(
                app, sock, verbose=opts.verbose, background=(monitor.run, crowd.run, story), on_stop=on_stop
            )
        )
    except KeyboardInterrupt:
        pass
    finally:
        monitor.store.close()
    click.echo(f"Stopped cleanly after {crowd.requests:,} requests.")
    return []
