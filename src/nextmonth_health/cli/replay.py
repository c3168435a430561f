"""``replay``: what the monitor would have done about the traffic in an access log.

Each line is recorded the way the middleware records a live request (plus an upload
attempt for a write to an upload route, and a sign-in attempt for a POST to a sign-in
route), on a fake clock moved to the line's own time; every ``tick_seconds`` of log time
the monitor evaluates, exactly as the runner would. Out comes what would have happened:
incidents with their open and resolve times, the notices people would have seen and the
admin alerts — through the checks and settings of ``--config``, so thresholds can be
tuned against last month's real traffic (see docs/tuning.md).

A line is read as the middleware would have seen its request: the path without its
query string, and a path longer than ``max_key_length`` dropped as the recorder would drop
it. Lines that cannot be used are counted by reason with their first line numbers, and
never stop a replay; a failing request (5xx) among them, or request times that could not
be read, are said plainly, because either can hide exactly what the replay is for. Long
idle stretches with nothing open are skipped rather than evaluated tick by tick, which
changes nothing: an empty window reads healthy.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import click
from attrs import define, field

from ._common import (
    CliError,
    build_monitor,
    configure_logging,
    echo_json,
    global_options,
    options,
    plural,
    probe_store,
)
from ._log_format import LogFormat, LogFormatError, compile_log_format
from ._logs import Event, Reason, Skip, excerpt, parse, parse_combined, parse_json
from ._replay_report import print_report, report_json

__all__ = ["DroppedLines", "Replay", "command", "replay_lines"]

_WRITES = frozenset({"POST", "PUT", "PATCH"})
_FIRST_LINES = 5
_PROGRESS_EVERY = 1 << 14
_FLUSH_EVERY = 50_000


@define
class Dropped:
    """The lines dropped for one reason: how many, how many were failures, the first few."""

    count: int = 0
    failing: int = 0
    lines: list[int] = field(factory=list)
    example: str = ""


@define
class DroppedLines:
    """Lines replay could not use, by reason. A failure (5xx) among them is counted apart:
    it is a request an outage may hide in, and the report must not call such a log quiet."""

    count: int = 0
    failing: int = 0
    reasons: dict[Reason, Dropped] = field(factory=dict)

    def add(self, lineno: int, skip: Skip) -> None:
        dropped = self.reasons.get(skip.reason)
        if dropped is None:
            dropped = self.reasons[skip.reason] = Dropped(example=skip.detail)
        dropped.count += 1
        self.count += 1
        if len(dropped.lines) < _FIRST_LINES:
            dropped.lines.append(lineno)
        if skip.status is not None and skip.status >= 500:
            dropped.failing += 1
            self.failing += 1

    def first(self) -> tuple[int, Reason, str] | None:
        """The earliest dropped line: its number, reason and example."""
        found = [(d.lines[0], reason, d.example) for reason, d in self.reasons.items() if d.lines]
        return min(found) if found else None


@define
class Replay:
    """What a replay saw and what the monitor did."""

    lines: int = 0
    requests: int = 0
    uploads: int = 0
    logins: int = 0
    dropped_lines: DroppedLines = field(factory=DroppedLines)
    #: Requests whose line carried no readable request time (recorded as 0 s).
    untimed: int = 0
    #: The --log-format the lines were read with, if any.
    log_format: LogFormat | None = None
    out_of_order: int = 0
    first_time: float | None = None
    last_time: float | None = None
    evaluations: int = 0
    incidents: dict[str, dict[str, Any]] = field(factory=dict)
    alerts: dict[str, dict[str, Any]] = field(factory=dict)
    notices: list[dict[str, Any]] = field(factory=list)
    seconds: float = 0.0
    drops: dict[str, int] = field(factory=dict)
    check_failures: int = 0
    warmup: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


class _Collector:
    """Folds each pass's transitions into the report, and follows the notices they cause."""

    def __init__(self, monitor: Any, report: Replay) -> None:
        self.monitor = monitor
        self.report = report
        self.showing: dict[tuple[str, str], dict[str, Any]] = {}

    def take(self, evaluation: Any, now: float) -> None:
        from ..values import TransitionKind

        report = self.report
        report.evaluations += 1
        report.check_failures += len(evaluation.failures)
        touched: set[tuple[str, str]] = set()
        for t in evaluation.transitions:
            i = t.incident
            touched.add((i.site, i.area))
            entry = report.incidents.get(i.id)
            if entry is None:
                entry = report.incidents[i.id] = {
                    "id": i.id,
                    "site": i.site,
                    "check": i.check,
                    "key": i.key,
                    "area": i.area,
                    "summary": i.summary,
                    "opened_at": i.opened_at.timestamp(),
                    "opened_as": str(i.severity),
                    "escalated_at": None,
                    "resolved_at": None,
                }
            entry["severity"] = str(i.severity)
            entry["peak_users"] = max(entry.get("peak_users", 0), i.affected_users)
            if t.kind is TransitionKind.ESCALATED:
                entry["escalated_at"] = now
            elif t.kind is TransitionKind.RESOLVED:
                entry["resolved_at"] = now
            alert = t.alert
            if alert is not None:
                kept = report.alerts.get(alert.incident_id)
                if kept is None:
                    kept = report.alerts[alert.incident_id] = {
                        "id": alert.incident_id,
                        "site": alert.site,
                        "area": alert.area,
                        "raised_at": now,
                        "message": alert.message,
                        "resolved_at": None,
                    }
                if alert.is_active:
                    kept["message"] = alert.message
                    kept["affected_users"] = alert.affected_users
                else:
                    kept["resolved_at"] = now
        for site, area in touched:
            found = self.monitor.notices(area, site=site)
            notice = found[0] if found else None
            current = self.showing.get((site, area))
            if current is not None and (
                notice is None or (notice.title, notice.message) != (current["title"], current["message"])
            ):
                current["until"] = now
                del self.showing[(site, area)]
                current = None
            if notice is not None and current is None:
                shown = {
                    "site": site,
                    "area": area,
                    "title": notice.title,
                    "message": notice.message,
                    "since": now,
                    "until": None,
                }
                self.showing[(site, area)] = shown
                self.report.notices.append(shown)


async def replay_lines(
    lines: Iterator[bytes],
    monitor: Any,
    clock: Any,
    *,
    parser: Callable[[str], Event | Skip] = parse,
    progress: Callable[[int], None] | None = None,
    warmup: float = 0.0,
) -> Replay:
    """Record every line on ``clock``, evaluating every ``tick_seconds`` of log time.

    The first ``warmup`` seconds of the log are recorded but not judged: they are the
    baseline a monitor that had been running would already have had.
    """
    report = Replay()
    collector = _Collector(monitor, report)
    settings = monitor.settings
    tick = settings.tick_seconds
    slack = settings.bucket_seconds
    idle_after = settings.window_seconds + tick
    record_request, record_upload, record_login = monitor.record_request, monitor.record_upload, monitor.record_login
    areas: dict[tuple[str | None, str], str | None] = {}
    longest: dict[str | None, int] = {}
    open_ids: set[str] = set()
    now = -math.inf
    next_tick = math.inf
    last_event = -math.inf
    started = time.perf_counter()

    async def evaluate_until(t: float) -> None:
        nonlocal next_tick
        while next_tick <= t:
            if not open_ids and next_tick > last_event + idle_after and t - next_tick >= tick:
                next_tick += math.floor((t - next_tick) / tick) * tick  # idle: nothing in any window
            clock.set(max(clock.now(), next_tick))
            evaluation = await monitor.evaluate()
            collector.take(evaluation, next_tick)
            for transition in evaluation.transitions:
                if transition.incident.is_open:
                    open_ids.add(transition.incident.id)
                else:
                    open_ids.discard(transition.incident.id)
            next_tick += tick

    lineno = requests = uploads = logins = out_of_order = untimed = 0
    dropped = report.dropped_lines
    for raw in lines:
        lineno += 1
        if progress is not None and not lineno % _PROGRESS_EVERY:
            progress(lineno)
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            line = raw.decode("utf-8", "replace")
        event = parser(line)
        if type(event) is not tuple:
            dropped.add(lineno, event)  # type: ignore[arg-type]
            continue
        t, method, path, status, duration, user, site = event
        limit = longest.get(site)
        if limit is None:
            if len(longest) > 100_000:
                longest.clear()
            limit = longest[site] = monitor.settings_for(site).max_key_length
        if len(path) > limit:  # the recorder would drop it: say so here, with its line
            dropped.add(lineno, Skip(Reason.PATH_TOO_LONG, f"{excerpt(path)}… ({len(path):,} characters)", status))
            continue
        if user is not None and len(user) > limit:
            user = None  # counted without a user rather than dropped
        if duration is None:
            untimed += 1
            duration = 0.0
        if t > now:
            if next_tick == math.inf:
                next_tick = ((t + warmup) // tick) * tick + tick
                report.first_time = t
                report.warmup = warmup
            elif t >= next_tick:
                last_event = now
                await evaluate_until(t)
            now = t
            clock.set(t)
        elif t < now - slack:
            out_of_order += 1  # counted at the latest time seen so far
        record_request(path, status, duration, user, site)
        requests += 1
        if method in _WRITES:
            key = (site, path)
            area = areas.get(key, "")
            if area == "":
                if len(areas) > 100_000:
                    areas.clear()
                area = areas[key] = monitor.settings_for(site).area_for(path)
            if area == "uploads":
                record_upload(status < 500, user, site)
                uploads += 1
            elif area == "login" and method == "POST":
                record_login(status < 400, user, site)
                logins += 1
        if not requests % _FLUSH_EVERY:
            monitor.flush()
    last_event = now
    report.requests, report.uploads, report.logins, report.out_of_order = requests, uploads, logins, out_of_order
    report.untimed = untimed
    report.lines = lineno
    if requests:
        report.last_time = now
        # One last pass at the end of the log, so its last lines are judged too.
        await evaluate_until(max(next_tick, now))
    report.seconds = time.perf_counter() - started
    report.drops = {k: v for k, v in monitor.status().drops.items() if v}
    return report


def _layout(log_format: str | None, fmt: str) -> LogFormat | None:
    """The compiled --log-format, checked before a line is read: a mistake in it is one line, at once."""
    if log_format is None:
        return None
    if fmt != "auto":
        raise CliError(f"--format {fmt} and --log-format both say how lines are written; give one of them")
    try:
        return compile_log_format(log_format)
    except LogFormatError as exc:
        raise CliError(f"--log-format: {exc}") from None


def _open(path: str) -> tuple[IO[bytes], IO[bytes] | None, int | None]:
    """The stream of lines, the raw file under it (for progress), and its size."""
    if path == "-":
        return sys.stdin.buffer, None, None
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise CliError(f"cannot read {path!r}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"cannot read {path!r}: it is a directory; give the access log file") from None
    except OSError as exc:
        raise CliError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    size = os.fstat(raw.fileno()).st_size
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw)), raw, size
    return raw, raw, size


@click.command("replay", short_help="Replay an access log: what would have happened.")
@global_options
@click.argument("file", metavar="FILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "combined", "json"]),
    default="auto",
    show_default=True,
    help="Line format; auto takes JSON for lines starting with '{'.",
)
@click.option(
    "--log-format",
    metavar="FORMAT",
    default=None,
    help="The log's own layout, as the server was told it: nginx's log_format line (or its quoted "
    "string) or an Apache LogFormat string, e.g. '%h %l %u %t \"%r\" %>s %b %D'.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar on stderr (default: when stderr is a terminal)."
)
@click.option(
    "--warmup",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Record the log's first SECONDS without judging them, as the baseline a running monitor "
    "would have had (default: baseline_seconds; 0 judges every line).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(
    file: str, fmt: str, log_format: str | None, progress: bool | None, warmup: float | None, as_json: bool
) -> None:
    """Replay an access log through the checks and show what would have happened.

    FILE is an nginx/Apache combined-format log (optionally followed by the request
    time in seconds), JSON lines with time, route, status, duration and user, a log in
    the layout --log-format describes, a .gz of any of them, or - for stdin. Incidents
    with open and resolve times, the notices people would have seen, the admin alerts,
    the lines dropped and why, and a summary. Settings come from --config.
    """
    import anyio

    from ..clock import FakeClock

    opts = options()
    configure_logging(opts.verbose, drop=True)
    layout = _layout(log_format, fmt)
    stream, raw, size = _open(file)
    try:
        clock = FakeClock(0.0)
        monitor = build_monitor(
            site=opts.site_name(),
            store=opts.store_url(explicit_only=True),
            clock=clock,
            plugins=opts.config.plugins,
            sites=opts.config.sites,
            load_entrypoints=False,
            **opts.settings(),
        )
        probe_store(monitor.store)
        parser = (
            layout.parse if layout is not None else {"auto": parse, "combined": parse_combined, "json": parse_json}[fmt]
        )
        if warmup is None:
            warmup = float(monitor.settings.baseline_seconds)
        show = progress if progress is not None else sys.stderr.isatty()
        if show and raw is not None and size:
            with click.progressbar(
                length=size, label=f"Replaying {os.path.basename(file)}", file=sys.stderr, show_pos=False
            ) as bar:
                done = 0

                def advance(_: int) -> None:
                    nonlocal done
                    position = raw.tell()
                    bar.update(position - done)
                    done = position

                report = anyio.run(
                    lambda: replay_lines(stream, monitor, clock, parser=parser, progress=advance, warmup=warmup)
                )
                bar.update(size - done)
        else:
            report = anyio.run(lambda: replay_lines(stream, monitor, clock, parser=parser, warmup=warmup))
    finally:
        if raw is not None:
            raw.close()
    monitor.store.close()
    report.log_format = layout
    if not report.requests:
        first = report.dropped_lines.first()
        detail = f" (line {first[0]}: {first[1]}: {first[2]})" if first else ""
        expected = (
            f"the lines do not match --log-format ({layout.dialect}): compare it with the log's first line"
            if layout is not None
            else "expected nginx/Apache combined format or JSON lines with time, route and status; "
            "describe any other layout with --log-format"
        )
        raise CliError(f"{file}: no request found in {plural(report.lines, 'line')}{detail}; {expected}")
    if as_json:
        echo_json(report_json(file, report))
    else:
        print_report(file, report)
