"""Access-log lines for ``replay``: nginx/Apache combined format and JSON lines.

Combined format (``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``), optionally
followed by the request time: a bare number of seconds (nginx ``$request_time``, the first
number if ``$upstream_response_time`` follows) or ``rt=``/``request_time=`` seconds.
Apache's ``%D`` (microseconds) can be given as ``us=``. The user is ``%u`` unless it is
``-``, else the client address. JSON lines carry ``time`` (Unix seconds or ISO 8601),
``route`` (or ``path``), ``status``, and optionally ``duration`` (seconds), ``user``,
``method`` and ``site``.

:func:`parse` returns an :data:`Event` tuple or, for a line it cannot use, a string
saying why — never raises, so one bad line never stops a replay.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from datetime import UTC, datetime

__all__ = ["Event", "parse", "parse_combined", "parse_json"]

#: (time, method, path, status, duration, user, site); site None means the default.
Event = tuple[float, str, str, int, float, "str | None", "str | None"]

# Only the fields replay needs: the quoted referer and agent are skipped by looking for the
# last quote, which keeps the match at a couple of microseconds on long user agents.
_COMBINED = re.compile(r'([^ ]+) [^ ]+ ([^ ]+) \[([^\]]+)\] "([^"\\]*(?:\\.[^"\\]*)*)" (\d{3})(?: |$)')
_TIMED = re.compile(r"\b(rt|request_time|us)=(\d+(?:\.\d+)?)")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_DAY_CACHE: dict[str, float] = {}


def _clf_time(text: str) -> float | None:
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


def _path_of(target: str) -> str | None:
    if target.startswith("/"):
        return target
    if target.startswith(("http://", "https://")):  # a proxy's absolute form
        slash = target.find("/", target.find("//") + 2)
        return target[slash:] if slash != -1 else "/"
    return None


_last_when = ""
_last_time: float | None = None


def parse_combined(line: str) -> Event | str:
    global _last_when, _last_time
    match = _COMBINED.match(line)
    if match is None:
        return "not a combined-format line" if line.strip() else "empty line"
    host, user, when, request, status = match.groups()
    if when == _last_when:  # lines come many to a second
        t = _last_time
    else:
        t = _clf_time(when)
        _last_when, _last_time = when, t
    if t is None:
        return f"unreadable time [{when[:40]}]"
    parts = request.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return f'no request line ("{request[:40]}")'
    path = _path_of(parts[1])
    if path is None:
        return f"not a path: {parts[1][:40]!r}"
    duration = 0.0
    after = line[match.end() :]
    quote = after.rfind('"')
    rest = after[quote + 1 :] if quote != -1 else after.partition(" ")[2]
    if rest and not rest.isspace():
        timed = _TIMED.search(rest) if "=" in rest else None
        if timed is not None:
            duration = float(timed.group(2)) / (1e6 if timed.group(1) == "us" else 1.0)
        else:
            for token in rest.split():
                try:
                    duration = float(token)
                except ValueError:
                    continue
                break
        if not 0.0 <= duration < 86_400.0:
            duration = 0.0
    return (t, parts[0], path, int(status), duration, user if user != "-" else host, None)


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


def parse_json(line: str) -> Event | str:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(data, dict):
        return "a JSON line must be an object"
    t = _json_time(data.get("time"))
    if t is None:
        return "missing or unreadable 'time' (Unix seconds or ISO 8601)"
    route = data.get("route", data.get("path"))
    if not isinstance(route, str) or (path := _path_of(route)) is None:
        return "missing 'route' (a path starting with '/')"
    status = data.get("status")
    if type(status) is not int or not 100 <= status <= 599:
        return "missing or unreadable 'status' (100-599)"
    duration = data.get("duration", 0.0)
    if type(duration) not in (int, float) or not 0 <= duration < 86_400:
        return "unreadable 'duration' (seconds)"
    user = data.get("user")
    user = None if user is None else str(user)
    site = data.get("site")
    if site is not None and (not isinstance(site, str) or not site):
        return "unreadable 'site'"
    method = data.get("method", "GET")
    return (t, method if isinstance(method, str) else "GET", path, status, float(duration), user, site)


def parse(line: str) -> Event | str:
    """One log line, in either format, as an :data:`Event`; or why it cannot be used."""
    if line[:1] == "{":
        return parse_json(line)
    return parse_combined(line)
