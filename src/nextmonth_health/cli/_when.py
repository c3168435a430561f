"""Durations (``30m``, ``1h30m``) and moments (ISO 8601 with a zone, ``now``, ``+30m``)
as typed on the command line.

Only the spelling is checked here; how long a window may last and whether it ends in the
past are the Monitor's rules, so the command line and Python refuse the same things. A
moment without a time zone is refused rather than guessed: the operator's laptop, the
server and the store may each keep a different zone, and a window an hour off misses the
deploy it was for.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from ..values import timestamp

__all__ = ["Duration", "Moment", "parse_duration", "parse_moment", "span"]

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_EXAMPLES = "30m, 2h, 1h30m, 90s or 1d"


def parse_duration(text: str) -> float:
    """Seconds in ``text``: whole numbers of days, hours, minutes and seconds, in that order."""
    spelled = "".join(text.split()).lower()
    if spelled.isdigit():
        raise ValueError(f"{text!r} has no unit: write {spelled}s, {spelled}m, {spelled}h or {spelled}d")
    match = _DURATION.fullmatch(spelled)
    if not spelled or match is None:
        raise ValueError(f"{text!r} is not a duration: write it like {_EXAMPLES}")
    return float(sum(int(n) * size for n, (_, size) in zip(match.groups(), _UNITS, strict=True) if n))


def span(seconds: float) -> str:
    """Seconds the way :func:`parse_duration` reads them back: ``1h30m``, ``2d``, ``45s``."""
    left, parts = round(seconds), []
    for unit, size in _UNITS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def parse_moment(text: str, now: float) -> datetime:
    """``now``, ``+DURATION`` from ``now``, or an ISO 8601 time that says its zone; in UTC."""
    spelled = text.strip()
    if spelled.lower() == "now":
        return timestamp(now)
    if spelled.startswith("+"):
        try:
            return timestamp(now) + timedelta(seconds=parse_duration(spelled[1:]))
        except ValueError:
            raise ValueError(f"{text!r} is not a time: after + comes a duration, like +30m or +2h") from None
    try:
        moment = datetime.fromisoformat(spelled)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: write ISO 8601 with its zone (2026-01-05T22:00Z, "
            "2026-01-05T23:00+01:00), now, or +30m"
        ) from None
    if moment.tzinfo is None:
        written = moment.isoformat()
        raise ValueError(
            f"{text!r} has no time zone: add Z for UTC or your offset, as in {written}Z or {written}+01:00"
        )
    return moment.astimezone(UTC)


class Duration(click.ParamType):
    """A click type for :func:`parse_duration`: a misspelt one is click's usage error."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Moment(click.ParamType):
    """A click type for :func:`parse_moment`, read against the clock when the option is parsed."""

    name = "when"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value), time.time())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
