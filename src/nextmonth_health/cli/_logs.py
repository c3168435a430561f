"""Access-log lines for ``replay``: combined format, JSON lines, and why a line is dropped.

Combined format (``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``; the referer
and agent may be missing) may carry the request time anywhere after it: ``rt=`` or
``request_time=`` seconds, or ``us=`` microseconds, quoted or not; else the first bare
number, quoted or not, is seconds (nginx ``$request_time``; an ``$upstream_response_time``
after it is ignored). Other ``key=value`` fields, such as ``uct="0.001"``, are passed over.
The user is ``%u`` unless it is ``-``, else the client address. JSON lines carry ``time``
(Unix seconds or ISO 8601), ``route`` (or ``path``), ``status``, and optionally
``duration`` (seconds), ``user``, ``method`` and ``site``. Any other layout is described
with ``--log-format`` (see :mod:`._log_format`).

A path loses its query string and is percent-decoded, as the middleware records it. A
parser returns an :data:`Event`, or a :class:`Skip` saying why the line cannot be used,
and never raises, so one bad line never stops a replay. An event's duration is None when
the line carries no readable request time: "unknown" must not pass for "instant".
"""

from __future__ import annotations

import calendar
import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import unquote

from attrs import frozen

__all__ = [
    "QUOTED",
    "STATUSES",
    "Event",
    "Reason",
    "Skip",
    "clf_time",
    "excerpt",
    "guess_status",
    "parse",
    "parse_combined",
    "parse_json",
    "path_of",
    "split_request",
    "unreadable_request",
]

#: (time, method, path, status, duration or None, user, site); site None means the default.
Event = tuple[float, str, str, int, "float | None", "str | None", "str | None"]


class Reason(StrEnum):
    """Why a line was dropped; the report counts dropped lines by it."""

    EMPTY = "empty line"
    UNPARSEABLE = "unparseable"
    BAD_TIME = "bad time"
    BAD_STATUS = "bad status"
    NO_REQUEST = "no request line"
    NOT_A_PATH = "not a path"
    PATH_TOO_LONG = "path too long"
    BAD_SITE = "bad site"


@frozen
class Skip:
    """A line replay cannot use: why, a short excerpt to recognise it by, and its status when
    that much could be read — a dropped 5xx is a failure the report must not pass over."""

    reason: Reason
    detail: str = ""
    status: int | None = None


#: Every status the recorder accepts, by its text: one dict lookup reads and checks it.
STATUSES = {str(n): n for n in range(100, 600)}

#: The inside of a quoted field: up to a quote that is not escaped. Scanning to the next
#: quote and looking back only there is three times faster than stepping over escapes
#: one by one; the price is that an escaped backslash right before an escaped quote
#: (``\\\"``) ends the field early, and the line is dropped as unparseable.
QUOTED = r'[^"]*+(?:(?<=\\)(?<!\\\\)"[^"]*+)*+'
# Only the fields replay needs. The referer and agent are stepped over with string methods
# where they can be (see parse_combined), which keeps a combined line at a couple of
# microseconds.
_COMBINED = re.compile(rf'([^ ]++) [^ ]++ ([^ ]++) \[([^\]]++)\] "({QUOTED})" (\S++)(?: |$)')
_REFERER_AND_AGENT = re.compile(rf'\S*+ "{QUOTED}" "{QUOTED}"')
_KEYED = re.compile(r'(?<![^\s"])(rt|request_time|us)="?([0-9]+(?:\.[0-9]+)?)"?(?![^\s"])')
_STATUS_NEAR = re.compile(r'(?:" |"status": ?"?)([1-5][0-9][0-9])\b')
_MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
_DAY_CACHE: dict[str, float] = {}
_LONGEST = 86_400.0


def clf_time(text: str) -> float | None:
    """``10/Oct/2000:13:55:36 -0700`` as Unix seconds; None if it is not that shape."""
    # The date and zone repeat on every line of a day: their midnight is computed once.
    day = text[:11] + text[20:]
    midnight = _DAY_CACHE.get(day)
    if midnight is None:
        try:
            d, mon, y = int(text[0:2]), _MONTHS[text[3:6]], int(text[7:11])
            zone = text[21:26]
            if len(text) != 26 or text[2] != "/" or text[6] != "/" or text[20] != " " or zone[0] not in "+-":
                return None
            offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (1 if zone[0] == "+" else -1)
            midnight = calendar.timegm((y, mon, d, 0, 0, 0)) - offset
            datetime(y, mon, d)  # rejects 31/Feb
        except (KeyError, ValueError):
            return None
        if len(_DAY_CACHE) > 10_000:
            _DAY_CACHE.clear()
        _DAY_CACHE[day] = midnight
    try:
        h, m, s = int(text[12:14]), int(text[15:17]), int(text[18:20])
    except ValueError:
        return None
    if text[11] != ":" or h > 23 or m > 59 or s > 60:
        return None
    return midnight + h * 3600 + m * 60 + s


def path_of(target: str) -> str | None:
    """The path the middleware would record for a request target: no query, percent-decoded."""
    if "?" in target:
        target = target[: target.index("?")]
    if target[:1] != "/":
        if not target.startswith(("http://", "https://")):  # a proxy's absolute form
            return None
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash != -1 else "/"
    return unquote(target) if "%" in target else target


def split_request(request: str, status: int) -> tuple[str, str] | Skip:
    """``GET /path?q HTTP/1.1`` as (method, path), or why it gives none."""
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/") and (path := path_of(parts[1])) is not None:
        return parts[0], path
    return unreadable_request(request, status)


def unreadable_request(request: str, status: int) -> Skip:
    """Why a request line gives no path: it is no request (a TLS handshake, ``-``) or asks for none (``OPTIONS *``)."""
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        return Skip(Reason.NOT_A_PATH, excerpt(request), status)
    return Skip(Reason.NO_REQUEST, excerpt(request), status)


def excerpt(text: str, length: int = 40) -> str:
    """The start of a field for the report, quoted, control characters escaped: logs hold what clients sent."""
    text = text[:length]
    return '"' + (text if text.isprintable() else repr(text)[1:-1]) + '"'


def guess_status(line: str) -> int | None:
    """The status a line that could not be parsed seems to carry, so a lost 5xx is still counted."""
    found = _STATUS_NEAR.search(line)
    return int(found.group(1)) if found else None


def seconds_in(text: str, scale: float = 1.0) -> float | None:
    """A request time (``0.120``, ``"0.120"``, ``250000`` with ``scale`` 1e-6) in seconds, or None."""
    try:
        value = float(text.strip('"')) * scale
    except ValueError:
        return None
    return value if 0.0 <= value < _LONGEST else None


def _after_agent(rest: str) -> str:
    """What follows the bytes, referer and agent of a combined line (``rest`` starts at the bytes)."""
    match = _REFERER_AND_AGENT.match(rest)
    return rest[match.end() :] if match is not None else rest.partition(" ")[2]


def _duration_after(rest: str) -> float | None:
    """The request time in what follows the combined part, or None if there is none."""
    if "=" in rest:
        keyed = _KEYED.search(rest)
        if keyed is not None:
            return seconds_in(keyed.group(2), 1e-6 if keyed.group(1) == "us" else 1.0)
    for token in rest.split():
        try:
            value = float(token.strip('"') if token[0] == '"' else token)
        except ValueError:
            continue  # a referer, an agent, a key=value of something else
        return value if 0.0 <= value < _LONGEST else None
    return None


def _odd_duration(rest: str) -> float | None:
    """The request time after a status (``rest`` starts at the bytes) when the referer and
    agent are missing, hold escaped quotes, or quoted fields follow them (``uct="0.001"``)."""
    if '"' not in rest:  # common format, perhaps with a request time after the bytes
        return _duration_after(rest.partition(" ")[2])
    return _duration_after(_after_agent(rest))


_last_when = ""
_last_time: float | None = None


def parse_combined(line: str) -> Event | Skip:
    global _last_when, _last_time
    match = _COMBINED.match(line)
    if match is None:
        if not line or line.isspace():
            return Skip(Reason.EMPTY)
        return Skip(Reason.UNPARSEABLE, excerpt(line.rstrip()), guess_status(line))
    host, user, when, request, status_text = match.groups()
    status = STATUSES.get(status_text)
    if status is None:
        return Skip(Reason.BAD_STATUS, excerpt(status_text, 10))
    if when == _last_when:  # lines come many to a second
        t = _last_time
    else:
        t = clf_time(when)
        _last_when, _last_time = when, t
    if t is None:
        return Skip(Reason.BAD_TIME, excerpt(when), status)
    parts = request.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/") or (path := path_of(parts[1])) is None:
        return unreadable_request(request, status)
    # The common case, cheaply: the last quote closes the agent and the time follows it.
    rest = line[match.end() :]
    last = rest.rfind('"')
    duration = None
    if last != -1 and (tail := rest[last + 1 :]) and not tail.isspace():
        duration = _duration_after(tail)
    if duration is None and (last == -1 or rest.count('"') != 4 or '="' in rest):
        duration = _odd_duration(rest)
    return (t, parts[0], path, status, duration, user if user != "-" else host, None)


def _json_time(value: object) -> float | None:
    if type(value) in (int, float):
        return float(value) if math.isfinite(value) else None  # type: ignore[arg-type]
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def parse_json(line: str) -> Event | Skip:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return Skip(Reason.UNPARSEABLE, "not valid JSON", guess_status(line))
    if not isinstance(data, dict):
        return Skip(Reason.UNPARSEABLE, "a JSON line must be an object")
    status = data.get("status")
    if type(status) is not int or not 100 <= status <= 599:
        return Skip(Reason.BAD_STATUS, "missing or unreadable 'status' (100-599)")
    t = _json_time(data.get("time"))
    if t is None:
        return Skip(Reason.BAD_TIME, "missing or unreadable 'time' (Unix seconds or ISO 8601)", status)
    route = data.get("route", data.get("path"))
    if not isinstance(route, str) or (path := path_of(route)) is None:
        return Skip(Reason.NOT_A_PATH, "missing 'route' (a path starting with '/')", status)
    duration = data.get("duration")
    if type(duration) not in (int, float) or not 0 <= duration < _LONGEST:  # type: ignore[operator]
        duration = None
    user = data.get("user")
    user = None if user is None else str(user)
    site = data.get("site")
    if site is not None and (not isinstance(site, str) or not site):
        return Skip(Reason.BAD_SITE, "unreadable 'site'", status)
    method = data.get("method", "GET")
    return (
        t,
        method if isinstance(method, str) else "GET",
        path,
        status,
        None if duration is None else float(duration),
        user,
        site,
    )


def parse(line: str) -> Event | Skip:
    """One log line, in either format, as an :data:`Event`; or why it cannot be used."""
    if line[:1] == "{":
        return parse_json(line)
    return parse_combined(line)
