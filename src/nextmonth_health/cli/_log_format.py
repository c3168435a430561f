"""``--log-format``: a site's own nginx ``log_format`` or Apache ``LogFormat``, compiled once.

GoAccess's ``--log-format`` is the model: the format a server writes with is the best
description of its log, so it is given as written — the whole ``log_format`` line of
nginx.conf or just its quoted string, an Apache ``LogFormat`` line or its format string.
It becomes one regex. Literal text between fields must be there as written; a field
ends at the first occurrence of what follows it (a field between quotes at its closing
quote, backslash escapes honoured), so matching never backtracks across fields. Only what
replay needs is captured — time, method, path, status, request time, user, client and
virtual host; any other field (bytes, referer, agent, a variable replay does not know) is
skipped. A format replay cannot use fails at start-up with a :class:`LogFormatError` that
says what to change, rather than as millions of dropped lines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import Enum

from attrs import field, frozen

from ._logs import (
    QUOTED,
    STATUSES,
    Event,
    Reason,
    Skip,
    clf_time,
    excerpt,
    guess_status,
    path_of,
    seconds_in,
    split_request,
)

__all__ = ["LogFormat", "LogFormatError", "compile_log_format"]


class LogFormatError(ValueError):
    """A format replay cannot read lines with; the message says what to change."""


class Kind(Enum):
    """What replay reads from a field."""

    CLIENT = "client"
    FORWARDED = "forwarded for"
    USER = "user"
    TIME_CLF = "time"
    TIME_ISO = "ISO time"
    TIME_EPOCH = "Unix time"
    TIME_STRF = "strftime time"
    REQUEST = "request"
    METHOD = "method"
    TARGET = "path"
    STATUS = "status"
    DURATION = "request time"
    UPSTREAM = "upstream time"
    SITE = "virtual host"
    SKIP = "skipped"


_TIMES = (Kind.TIME_CLF, Kind.TIME_ISO, Kind.TIME_EPOCH, Kind.TIME_STRF)


@frozen
class Field:
    """One field of a format: what replay reads from it, and its name as the format writes it."""

    kind: Kind
    name: str
    #: Seconds per unit of a request time or a Unix time (``%D`` is microseconds).
    scale: float = 1.0
    #: The ``strptime`` layout of an Apache ``%{...}t`` time.
    layout: str = ""


@frozen
class LogFormat:
    """A compiled ``--log-format``: ``parse(line)`` gives an event or why the line was dropped."""

    source: str
    dialect: str
    fields: tuple[Field, ...]
    #: For each role replay reads, the field it reads it from ("time": "$time_local").
    reads: dict[str, str]
    parse: Callable[[str], Event | Skip] = field(eq=False, repr=False)


_NGINX = {
    "remote_addr": Kind.CLIENT,
    "realip_remote_addr": Kind.CLIENT,
    "remote_user": Kind.USER,
    "http_x_forwarded_for": Kind.FORWARDED,
    "http_x_real_ip": Kind.FORWARDED,
    "time_local": Kind.TIME_CLF,
    "time_iso8601": Kind.TIME_ISO,
    "msec": Kind.TIME_EPOCH,
    "request": Kind.REQUEST,
    "request_method": Kind.METHOD,
    "request_uri": Kind.TARGET,
    "uri": Kind.TARGET,
    "document_uri": Kind.TARGET,
    "status": Kind.STATUS,
    "request_time": Kind.DURATION,
    "upstream_response_time": Kind.UPSTREAM,
    "server_name": Kind.SITE,
    "host": Kind.SITE,
    "http_host": Kind.SITE,
}
_APACHE = {
    "h": Kind.CLIENT,
    "a": Kind.CLIENT,
    "u": Kind.USER,
    "r": Kind.REQUEST,
    "m": Kind.METHOD,
    "U": Kind.TARGET,
    "s": Kind.STATUS,
    "v": Kind.SITE,
    "V": Kind.SITE,
}
_APACHE_HEADERS = {"x-forwarded-for": Kind.FORWARDED, "x-real-ip": Kind.FORWARDED, "host": Kind.SITE}
_APACHE_LETTERS = frozenset("aABbCDefhHiIklLmnoOpPqrRsStTuUvVX")
_APACHE_EPOCHS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_APACHE_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_STRFTIME_SHORTHANDS = {"%T": "%H:%M:%S", "%F": "%Y-%m-%d", "%R": "%H:%M", "%D": "%m/%d/%y", "%e": "%d"}

_NGINX_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))?", re.ASCII)
_APACHE_DIRECTIVE = re.compile(
    r"%(?:(%)|[<>]?!?(?:\d{3}(?:,\d{3})*)?[<>]?(?:\{([^}]*)\})?(\^[a-zA-Z]{2}|[a-zA-Z]))", re.ASCII
)
_CONFIG_TOKEN = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^\s'";]+)|(;))""", re.DOTALL)
#: A list in one field: ``$upstream_*`` values hold one entry per upstream tried
#: (``0.012, 0.030 : 0.004``), X-Forwarded-For one address per proxy (``203.0.113.9, 10.0.0.2``).
_LIST_VALUE = r"[^ ,]*+(?:(?:, | : )[^ ,]*+)*+"


def compile_log_format(text: str) -> LogFormat:
    """Compile ``--log-format`` once; raises :class:`LogFormatError` saying what to fix."""
    if not text.strip():
        raise LogFormatError(
            "the format is empty; give the log_format line of nginx.conf or an Apache LogFormat string"
        )
    dialect, fmt = _format_string(text.strip())
    items = list(_nginx_items(fmt) if dialect == "nginx" else _apache_items(fmt))
    fields = tuple(item for item in items if isinstance(item, Field))
    chosen = _choose(fields, dialect)
    pattern, groups = _pattern(items, chosen)
    regex = re.compile(pattern)
    reads = {("time" if kind in _TIMES else kind.value): f.name for kind, f in chosen.items()}
    return LogFormat(
        text, dialect, fields, reads, _parser(regex, {kind: (groups[kind], f) for kind, f in chosen.items()})
    )


# The format string ------------------------------------------------------------------------


def _format_string(text: str) -> tuple[str, str]:
    """The dialect and the bare format, out of a config line, a quoted string or the format itself."""
    word = text.split(None, 1)[0] if text else ""
    if word == "log_format":
        parts = _config_words(text)[1:]
        if parts and parts[0][1] is None:  # the format's name
            parts = parts[1:]
        if parts and parts[0][1] is None and parts[0][0].startswith("escape="):
            parts = parts[1:]
        if not parts:
            raise LogFormatError(
                "the log_format line has no format string after its name, e.g. log_format main '$remote_addr ...';"
            )
        return "nginx", "".join(value for value, _ in parts)
    if word.lower() == "logformat":
        parts = _config_words(text)[1:]
        if not parts or parts[0][1] is None:
            raise LogFormatError(
                'the LogFormat line has no quoted format string, e.g. LogFormat "%h %l %u %t \\"%r\\" %>s %b" combined'
            )
        return "apache", parts[0][0]
    if text[:1] == "'" or (text[:1] == '"' and _all_quoted(text)):
        fmt = "".join(value for value, _ in _config_words(text))
        return _dialect(text, fmt), fmt
    return _dialect(text, text), text.replace('\\"', '"')  # an Apache format copied from inside its quotes


def _config_words(text: str) -> list[tuple[str, str | None]]:
    """The words of a config line up to its ``;``, as (text, quote) with quoted text unescaped."""
    words: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(text) and not text[pos:].isspace():
        token = _CONFIG_TOKEN.match(text, pos)
        if token is None:
            quote = len(text) - len(text[pos:].lstrip()) + 1
            raise LogFormatError(f"a quote opened at character {quote} is never closed")
        single, double, bare, end = token.groups()
        pos = token.end()
        if end is not None:
            if text[pos:].strip():
                raise LogFormatError(f"unexpected text after ';': {text[pos:].strip()[:30]!r}")
            break
        if bare is not None:
            words.append((bare, None))
        else:
            words.append((_unescape(single if single is not None else double), "'" if single is not None else '"'))
    return words


def _all_quoted(text: str) -> bool:
    try:
        return all(quote is not None for _, quote in _config_words(text))
    except LogFormatError:
        return False


def _unescape(text: str) -> str:
    return re.sub(
        r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), text, flags=re.DOTALL
    )


def _dialect(text: str, fmt: str) -> str:
    nginx = any(m.group(1) or m.group(2) for m in _NGINX_VARIABLE.finditer(fmt))
    apache = "%" in fmt
    if nginx and apache:
        raise LogFormatError("the format mixes nginx $variables and Apache %directives; give one server's format")
    if not nginx and not apache:
        raise LogFormatError(
            f"no fields in {text[:40]!r}: give nginx $variables (log_format) or Apache %directives (LogFormat)"
        )
    return "nginx" if nginx else "apache"


# Fields -------------------------------------------------------------------------------------


def _nginx_items(fmt: str) -> Iterator[str | Field]:
    pos = 0
    for var in _NGINX_VARIABLE.finditer(fmt):
        name = var.group(1) or var.group(2)
        if name is None:
            raise LogFormatError(
                f"'$' at character {var.start() + 1} is not followed by a variable name (write ${{name}} or $name)"
            )
        yield fmt[pos : var.start()]
        yield Field(_NGINX.get(name, Kind.SKIP), f"${name}")
        pos = var.end()
    yield fmt[pos:]


def _apache_items(fmt: str) -> Iterator[str | Field]:
    pos = 0
    while (at := fmt.find("%", pos)) != -1:
        yield fmt[pos:at]
        directive = _APACHE_DIRECTIVE.match(fmt, at)
        if directive is None:
            if fmt.startswith("%{", at):
                close = fmt.find("}", at)
                if close == -1:
                    raise LogFormatError(f"'%{{' at character {at + 1} is never closed with '}}'")
                raise LogFormatError(
                    f"{fmt[at : close + 1]} at character {at + 1} needs a directive letter after it, e.g. %{{Referer}}i"
                )
            raise LogFormatError(
                f"{fmt[at : at + 4]!r} at character {at + 1} is not an Apache directive (write %% for a percent sign)"
            )
        literal, argument, letter = directive.groups()
        pos = directive.end()
        if literal:
            yield "%"
            continue
        if letter[0] != "^" and letter not in _APACHE_LETTERS:
            raise LogFormatError(f"%{letter} is not an Apache LogFormat directive (see mod_log_config)")
        yield _apache_field(directive.group(0), letter, argument)
    yield fmt[pos:]


def _apache_field(name: str, letter: str, argument: str | None) -> Field:
    if letter == "t":
        return _apache_time(name, argument)
    if letter == "D":
        return Field(Kind.DURATION, name, scale=1e-6)
    if letter == "T":
        unit = argument or "s"
        if unit not in _APACHE_UNITS:
            raise LogFormatError(f"{name}: the unit of %T must be s, ms or us")
        return Field(Kind.DURATION, name, scale=_APACHE_UNITS[unit])
    if letter == "i":
        return Field(_APACHE_HEADERS.get((argument or "").lower(), Kind.SKIP), name)
    if letter == "a" and argument not in (None, "c"):
        return Field(Kind.SKIP, name)
    return Field(_APACHE.get(letter, Kind.SKIP), name)


def _apache_time(name: str, argument: str | None) -> Field:
    if argument is None:
        return Field(Kind.TIME_CLF, name)
    layout = argument.removeprefix("begin:").removeprefix("end:")
    if layout in _APACHE_EPOCHS:
        return Field(Kind.TIME_EPOCH, name, scale=_APACHE_EPOCHS[layout])
    if layout in ("msec_frac", "usec_frac"):
        return Field(Kind.SKIP, name)
    for short, long in _STRFTIME_SHORTHANDS.items():
        layout = layout.replace(short, long)
    if "%" not in layout:
        raise LogFormatError(
            f"{name}: a time layout needs strftime fields such as %Y-%m-%d %H:%M:%S, or sec, msec or usec"
        )
    return Field(Kind.TIME_STRF, name, layout=layout)


def _choose(fields: tuple[Field, ...], dialect: str) -> dict[Kind, Field]:
    """The one field each role is read from; a format without what replay needs is an error."""
    chosen: dict[Kind, Field] = {}
    for f in fields:
        kind = Kind.TIME_CLF if f.kind in _TIMES else f.kind
        if kind is Kind.SKIP:
            continue
        if kind not in chosen or (kind is Kind.STATUS and ">" in f.name):  # %>s: the final status
            chosen[kind] = f
    time = chosen.pop(Kind.TIME_CLF, None)
    nginx = dialect == "nginx"
    if time is None:
        raise LogFormatError(
            "the format has no time: add " + ("$time_local, $time_iso8601 or $msec" if nginx else "%t (or %{sec}t)")
        )
    if Kind.STATUS not in chosen:
        raise LogFormatError("the format has no status: add " + ("$status" if nginx else "%>s"))
    if Kind.REQUEST not in chosen and Kind.TARGET not in chosen:
        raise LogFormatError(
            "the format has no path: add " + ('"$request" (or $request_uri)' if nginx else '"%r" (or %U)')
        )
    if Kind.REQUEST in chosen:  # it holds the method and the raw path: $uri may be rewritten
        chosen.pop(Kind.TARGET, None)
        chosen.pop(Kind.METHOD, None)
    if Kind.DURATION in chosen:
        chosen.pop(Kind.UPSTREAM, None)
    return {time.kind: time, **chosen}


def _pattern(items: list[str | Field], chosen: dict[Kind, Field]) -> tuple[str, dict[Kind, int]]:
    """The regex of a format, and the group each chosen field is captured in."""
    wanted = {id(f): kind for kind, f in chosen.items()}
    merged: list[str | Field] = []
    for item in items:
        if isinstance(item, str) and merged and isinstance(merged[-1], str):
            merged[-1] += item
        elif item != "":
            merged.append(item)
    parts: list[str] = []
    groups: dict[Kind, int] = {}
    for n, item in enumerate(merged):
        if isinstance(item, str):
            parts.append(re.escape(item))
            continue
        before = merged[n - 1] if n else ""
        after = merged[n + 1] if n + 1 < len(merged) else None
        if isinstance(after, Field):
            raise LogFormatError(
                f"{item.name} and {after.name} touch: replay needs a separator between them (a space, a quote)"
            )
        value = _value_pattern(item, before if isinstance(before, str) else "", after)
        kind = wanted.get(id(item))
        if kind is not None:
            groups[kind] = len(groups) + 1
            value = f"({value})"
        parts.append(rf"\[{value}\]" if item.name == "%t" else value)  # Apache writes %t's brackets itself
    return "".join(parts) + r"\s*\Z", groups


def _value_pattern(item: Field, before: str, after: str | None) -> str:
    """A field's value: up to the first place what follows it in the format can start."""
    if item.name == "%t":
        return r"[^\]\n]*+"
    if before.endswith('"') and after is not None and after.startswith('"'):
        return QUOTED
    if after is None:
        return ".*?"
    if after[0] == " ":  # values with spaces of their own, unquoted
        if item.kind in (Kind.UPSTREAM, Kind.FORWARDED) or item.name.startswith("$upstream_"):
            return _LIST_VALUE
        words = {Kind.REQUEST: 3, Kind.TIME_CLF: 2, Kind.TIME_STRF: item.layout.count(" ") + 1}.get(item.kind, 1)
        return r"[^ \n]*+" + r"(?: [^ \n]*+)" * (words - 1)
    return rf"[^{re.escape(after[0])}\n]*+"


# Reading a line -----------------------------------------------------------------------------


def _time_reader(f: Field) -> Callable[[str], float | None]:
    """A reader of one field's times that remembers the last one: lines come many to a second."""
    last: list[str | float | None] = ["", None]

    def convert(text: str) -> float | None:
        if f.kind is Kind.TIME_CLF:
            return clf_time(text)
        try:
            if f.kind is Kind.TIME_EPOCH:
                seconds = float(text) * f.scale
                return seconds if math.isfinite(seconds) else None
            moment = datetime.fromisoformat(text) if f.kind is Kind.TIME_ISO else datetime.strptime(text, f.layout)
        except ValueError:
            return None
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()

    def read(text: str) -> float | None:
        if text != last[0]:
            last[0], last[1] = text, convert(text)
        return last[1]  # type: ignore[return-value]

    return read


def _duration_reader(f: Field) -> Callable[[str], float | None]:
    if f.kind is Kind.DURATION:
        return lambda text: seconds_in(text, f.scale)

    def upstream(text: str) -> float | None:  # every upstream tried took part of the request
        times = [seconds_in(t.strip()) for t in re.split(r"[,:]", text.strip('"'))]
        return sum(times) if times and None not in times else None  # type: ignore[arg-type]

    return upstream


def _site(text: str, status: int) -> str | None | Skip:
    """The site a virtual host names: lower case, without its port."""
    if not text or text == "-":
        return None
    host = text.lower()
    host = host[: host.index("]") + 1] if host.startswith("[") and "]" in host else host.partition(":")[0]
    return host if 0 < len(host) <= 100 else Skip(Reason.BAD_SITE, excerpt(text), status)


def _parser(regex: re.Pattern[str], slots: dict[Kind, tuple[int, Field]]) -> Callable[[str], Event | Skip]:
    """The parse function of one format: group numbers and readers are bound once, here."""
    match = regex.match
    time_kind = next(kind for kind in slots if kind in _TIMES)
    i_time, read_time = slots[time_kind][0] - 1, _time_reader(slots[time_kind][1])
    i_status = slots[Kind.STATUS][0] - 1
    i_request = slots[Kind.REQUEST][0] - 1 if Kind.REQUEST in slots else -1
    i_target = slots[Kind.TARGET][0] - 1 if Kind.TARGET in slots else -1
    i_method = slots[Kind.METHOD][0] - 1 if Kind.METHOD in slots else -1
    i_site = slots[Kind.SITE][0] - 1 if Kind.SITE in slots else -1
    timed = slots.get(Kind.DURATION) or slots.get(Kind.UPSTREAM)
    i_duration, read_duration = (timed[0] - 1, _duration_reader(timed[1])) if timed else (-1, None)
    # The user, in order of preference: the signed-in user, the forwarded-for client, the peer.
    who = tuple(slots[kind][0] - 1 for kind in (Kind.USER, Kind.FORWARDED, Kind.CLIENT) if kind in slots)

    def parse(line: str) -> Event | Skip:
        m = match(line)
        if m is None:
            if not line or line.isspace():
                return Skip(Reason.EMPTY)
            return Skip(Reason.UNPARSEABLE, excerpt(line.rstrip()), guess_status(line))
        g = m.groups()
        status = STATUSES.get(g[i_status])
        if status is None:
            return Skip(Reason.BAD_STATUS, excerpt(g[i_status], 10))
        t = read_time(g[i_time])
        if t is None:
            return Skip(Reason.BAD_TIME, excerpt(g[i_time]), status)
        if i_request >= 0:
            request = split_request(g[i_request], status)
            if type(request) is Skip:
                return request
            method, path = request  # type: ignore[misc]
        else:
            target = path_of(g[i_target])
            if target is None:
                return Skip(Reason.NOT_A_PATH, excerpt(g[i_target]), status)
            method, path = (g[i_method] if i_method >= 0 else "GET"), target
        user = None
        for i in who:
            value = g[i]
            if value and value != "-":
                user = value.partition(",")[0].strip()
                break
        site = _site(g[i_site], status) if i_site >= 0 else None
        if type(site) is Skip:
            return site
        duration = read_duration(g[i_duration]) if read_duration is not None else None
        return (t, method, path, status, duration, user, site)  # type: ignore[return-value]

    return parse
