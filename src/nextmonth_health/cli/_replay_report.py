"""What ``replay`` prints: the text report, the same as JSON, and the warnings both carry.

A replay is read to decide whether a log was quiet, so the report never says so when it
cannot know: failing requests (5xx) on lines that could not be read, and request times
that could not be read, are warnings said before the incidents, in text and in JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ._common import iso, plural, when

if TYPE_CHECKING:
    from ._logs import Reason
    from .replay import Dropped, DroppedLines, Replay

__all__ = ["print_report", "report_json", "warnings"]


def warnings(r: Replay) -> list[str]:
    """What the reader must know before trusting the incidents, or trusting their absence."""
    said = []
    failing = r.dropped_lines.failing
    if failing:
        where = ", ".join(f"{reason}: {d.failing:,}" for reason, d in r.dropped_lines.reasons.items() if d.failing)
        said.append(
            f"{plural(failing, 'failing request')} (5xx) could not be read ({where}); "
            "an outage they were part of would not show here."
        )
    timed = r.requests - r.untimed
    if r.requests and not timed:
        said.append(
            "Request durations could not be read: no line carried a readable request time, so the dashboard "
            "check was judged without them (every request counted as 0 s) and a slow dashboard would not show. "
            "Log $request_time (nginx) or %D (Apache); if the log has them where replay did not look, "
            "describe its layout with --log-format."
        )
    elif r.untimed:
        said.append(
            f"{r.untimed:,} of {plural(r.requests, 'request')} carried no readable request time; "
            "the dashboard check counted them as 0 s."
        )
    return said


def report_json(file: str, r: Replay) -> dict[str, Any]:
    def moment(value: float | None) -> str | None:
        return None if value is None else iso(_dt(value))

    return {
        "file": file,
        "lines": r.lines,
        "requests": r.requests,
        "uploads": r.uploads,
        "logins": r.logins,
        "log_format": None if r.log_format is None else {"dialect": r.log_format.dialect, "reads": r.log_format.reads},
        "durations": {"read": r.requests - r.untimed, "missing": r.untimed},
        "dropped_lines": _dropped_json(r.dropped_lines),
        "warnings": warnings(r),
        "out_of_order": r.out_of_order,
        "dropped": r.drops,
        "start": moment(r.first_time),
        "warmup_seconds": r.warmup,
        "end": moment(r.last_time),
        "evaluations": r.evaluations,
        "check_failures": r.check_failures,
        "incidents": [
            {
                **i,
                "opened_at": moment(i["opened_at"]),
                "escalated_at": moment(i["escalated_at"]),
                "resolved_at": moment(i["resolved_at"]),
            }
            for i in sorted(r.incidents.values(), key=lambda i: (i["opened_at"], i["check"]))
        ],
        "alerts": [
            {**a, "raised_at": moment(a["raised_at"]), "resolved_at": moment(a["resolved_at"])}
            for a in sorted(r.alerts.values(), key=lambda a: a["raised_at"])
        ],
        "notices": [{**n, "since": moment(n["since"]), "until": moment(n["until"])} for n in r.notices],
        "seconds": round(r.seconds, 3),
        "lines_per_second": round(r.lines_per_second),
    }


def _dropped_json(dropped: DroppedLines) -> dict[str, Any]:
    return {
        "count": dropped.count,
        "failing": dropped.failing,
        "reasons": [
            {"reason": str(reason), "count": d.count, "failing": d.failing, "lines": d.lines, "example": d.example}
            for reason, d in _by_count(dropped)
        ],
    }


def _by_count(dropped: DroppedLines) -> list[tuple[Reason, Dropped]]:
    return sorted(dropped.reasons.items(), key=lambda item: (-item[1].count, item[1].lines[:1]))


def _dt(seconds: float) -> Any:
    from ..values import timestamp

    return timestamp(seconds)


def print_report(file: str, r: Replay) -> None:
    span = f"{when(r.first_time)} to {when(r.last_time)} UTC" if r.first_time is not None else "no time span"
    click.echo(
        f"Replayed {file}: {plural(r.lines, 'line')}, {plural(r.requests, 'request')} from {span}; "
        f"{plural(r.evaluations, 'evaluation')} in {r.seconds:.1f} s ({r.lines_per_second:,.0f} lines/s)."
    )
    incidents = sorted(r.incidents.values(), key=lambda i: (i["opened_at"], i["check"]))
    if r.warmup and r.first_time is not None:
        click.echo(
            f"The first {r.warmup / 60:g} min (until {when(r.first_time + r.warmup, date=False)}) only built the "
            "baseline a running monitor would have had; --warmup 0 judges them too."
        )
    if r.log_format is not None:
        reads = ", ".join(f"{role} {name}" for role, name in r.log_format.reads.items())
        click.echo(f"Read with --log-format ({r.log_format.dialect}): {reads}.")
    said = warnings(r)
    for warning in said:
        click.echo(f"Warning: {warning}")
    click.echo()
    if not incidents:
        if r.dropped_lines.failing:
            click.echo(
                f"Incidents: none, but {plural(r.dropped_lines.failing, 'failing request')} (5xx) could not be read."
            )
        elif said:
            click.echo("Incidents: none (see the warning above).")
        else:
            click.echo("Incidents: none. Nothing in this log would have troubled anyone.")
    else:
        click.echo(f"Incidents ({len(incidents)}):")
        rows = [("SITE", "CHECK", "KEY", "SEVERITY", "OPENED", "RESOLVED", "PEAK USERS")]
        for i in incidents:
            severity = i["severity"] if i["opened_as"] == i["severity"] else f"{i['opened_as']}>{i['severity']}"
            resolved = when(i["resolved_at"]) if i["resolved_at"] is not None else "open at end of log"
            rows.append(
                (i["site"], i["check"], i["key"] or "-", severity, when(i["opened_at"]), resolved, str(i["peak_users"]))
            )
        _table(rows)
    if r.notices:
        click.echo()
        click.echo(f"Notices people would have seen ({len(r.notices)}):")
        for n in r.notices:
            until = when(n["until"], date=False) if n["until"] is not None else "end of log"
            click.echo(f'  {when(n["since"])} - {until}  at "{n["area"]}" ({n["site"]}): {n["title"]}')
    if r.alerts:
        click.echo()
        click.echo(f"Admin alerts ({len(r.alerts)}):")
        for a in sorted(r.alerts.values(), key=lambda a: a["raised_at"]):
            resolved = (
                f", resolved {when(a['resolved_at'], date=False)}"
                if a["resolved_at"] is not None
                else ", still active at end of log"
            )
            click.echo(f"  {when(a['raised_at'])} ({a['site']}{resolved}):")
            for line in a["message"].splitlines():
                click.echo(f"    {line}")
    click.echo()
    derived = f"{plural(r.uploads, 'upload attempt')} and {plural(r.logins, 'sign-in attempt')} derived"
    click.echo(
        f"Summary: {plural(len(incidents), 'incident')}, {plural(len(r.notices), 'notice')}, "
        f"{plural(len(r.alerts), 'alert')}; {derived}; request times read on {r.requests - r.untimed:,} "
        f"of {plural(r.requests, 'request')}."
    )
    if r.dropped_lines.count:
        _print_dropped(r)
    if r.out_of_order:
        click.echo(
            f"Out of order: {plural(r.out_of_order, 'line')} earlier than lines before them by more than a bucket; "
            "counted at the latest time seen (sort the log for exact results)."
        )
    if r.drops:
        click.echo(f"Dropped by the recorder: {r.drops}")
    if r.check_failures:
        click.echo(f"Check failures during the replay: {r.check_failures} (-v shows them)")


def _print_dropped(r: Replay) -> None:
    dropped = r.dropped_lines
    failing = (
        f"{plural(dropped.failing, 'failure')} (5xx) among them" if dropped.failing else "no failure (5xx) among them"
    )
    click.echo(f"Dropped lines: {dropped.count:,} of {r.lines:,}, {failing}:")
    rows = []
    for reason, d in _by_count(dropped):
        numbers = ", ".join(str(n) for n in d.lines) + (" …" if d.count > len(d.lines) else "")
        row = [str(reason), f"{d.count:,}", f"line {numbers}" if d.count == 1 else f"lines {numbers}"]
        if dropped.failing:
            row.insert(2, f"{d.failing:,} failing")
        rows.append((*row, f"e.g. {d.example}" if d.example else ""))
    _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    for row in rows:
        click.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
