"""Planned quiet in the admin view: maintenance windows and silences as the pages and the
JSON API show them, and what Rob asks for, read into the monitor's own calls.

The monitor judges what matters (a window that ends before it starts, a silence of no
check) and says so in a :class:`ValueError` written for people. This module reads the two
shapes requests come in — a page's form, where times are UTC without a zone and empty means
"the default", and a JSON body, where times carry their zone — into those calls' arguments,
so that a wrong field is a 400 naming it, never a 500. It also says, for each incident,
what planned quiet did to it: seen during maintenance, silenced, its alert held back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import field, frozen

from ..codec import to_dict
from ..values import Alert, Incident, MaintenanceWindow, Silence

__all__ = [
    "MAINTENANCE_DURATIONS",
    "SILENCE_DURATIONS",
    "Marks",
    "Planned",
    "silence_from_form",
    "silence_from_json",
    "silence_json",
    "window_from_form",
    "window_from_json",
    "window_json",
]

#: What the scheduling form offers for how long a window lasts (seconds, words); an end
#: time, when given, wins.
MAINTENANCE_DURATIONS: tuple[tuple[int, str], ...] = (
    (900, "15 min"),
    (1800, "30 min"),
    (3600, "1 hour"),
    (7200, "2 hours"),
    (14_400, "4 hours"),
    (28_800, "8 hours"),
    (86_400, "24 hours"),
)
#: The buttons beside "Mark as read" on an incident's page.
SILENCE_DURATIONS: tuple[tuple[int, str], ...] = ((3600, "1 h"), (7200, "2 h"), (14_400, "4 h"), (86_400, "24 h"))

_MAX_SITE = 100
_MAX_NAME = 200
_WINDOW_FIELDS = ("start", "end", "duration", "reason", "area", "site")
_SILENCE_FIELDS = ("check", "key", "duration", "reason", "site")


# What the API answers --------------------------------------------------------------------


def window_json(window: MaintenanceWindow, now: datetime) -> dict[str, Any]:
    """A window as the API gives it (the codec's shape); ``running`` at ``now``, ``area``
    null for the whole site."""
    return {**to_dict(window), "running": window.is_active(now)}


def silence_json(silence: Silence, now: datetime) -> dict[str, Any]:
    """A silence as the API gives it (the codec's shape); ``key`` null for every key."""
    return {**to_dict(silence), "active": silence.is_active(now)}


# What an incident shows ------------------------------------------------------------------


@frozen
class Marks:
    """What planned quiet did to one incident, as its page and its list item say it.

    ``held`` is why its alert has not reached the push sinks (email, webhook):
    ``"maintenance"``, ``"silence"``, or ``"ended"`` when the quiet that held it is over
    and the next pass tells it; None when it was told, or has no alert.
    """

    during_maintenance: bool = False
    window: MaintenanceWindow | None = None
    silence: Silence | None = None
    held: str | None = None
    never_sent: bool = False
    reminders: int = 0

    def __bool__(self) -> bool:
        return bool(self.during_maintenance or self.silence or self.held or self.reminders)

    @property
    def held_words(self) -> str | None:
        """Why the alert has not gone out, as the admin view and ``status`` say it."""
        by = "maintenance" if self.held == "maintenance" else "a silence"
        if self.never_sent:
            return f"alert never sent (held by {by})"
        if self.held == "ended":
            return "alert not sent yet (it goes out on the next check)"
        return None if self.held is None else f"alert not sent (held by {by})"


@frozen
class Planned:
    """The windows and silences read once for a page: those running or to come, and any
    other window an incident on the page names (ended ones, for their reason)."""

    windows: tuple[MaintenanceWindow, ...] = ()
    silences: tuple[Silence, ...] = ()
    known: Mapping[str, MaintenanceWindow] = field(factory=dict)

    @classmethod
    def of(
        cls,
        windows: Iterable[MaintenanceWindow],
        silences: Iterable[Silence],
        known: Iterable[MaintenanceWindow] = (),
    ) -> Planned:
        windows = sorted(windows, key=lambda w: (w.starts_at, w.site, w.id))
        every = {w.id: w for w in known}
        every.update((w.id, w) for w in windows)
        return cls(tuple(windows), tuple(sorted(silences, key=lambda s: (s.ends_at, s.site, s.id))), every)

    def for_site(self, site: str) -> Planned:
        return Planned(
            tuple(w for w in self.windows if w.site == site),
            tuple(s for s in self.silences if s.site == site),
            self.known,
        )

    def running(self, site: str, now: datetime) -> list[MaintenanceWindow]:
        return [w for w in self.windows if w.site == site and w.is_active(now)]

    def silence_for(self, incident: Incident, now: datetime) -> Silence | None:
        """The silence covering the incident now, the one lasting longest if several do."""
        covering = [s for s in self.silences if s.covers(incident, now)]
        return max(covering, key=lambda s: s.ends_at) if covering else None

    def marks(self, incident: Incident, alert: Alert | None, now: datetime) -> Marks:
        window = self.known.get(incident.maintenance_id) if incident.maintenance_id else None
        silence = self.silence_for(incident, now) if incident.is_open else None
        held = None
        never_sent = False
        if alert is not None and alert.notified_at is None:
            covered = any(w.covers(incident, now) for w in self.windows)
            if alert.is_active:
                held = "maintenance" if covered else "silence" if silence is not None else "ended"
            else:
                never_sent = True
                held = "maintenance" if incident.maintenance_id else "silence"
        return Marks(
            during_maintenance=incident.maintenance_id is not None,
            window=window,
            silence=silence,
            held=held,
            never_sent=never_sent,
            reminders=alert.reminders if alert is not None else 0,
        )

    def state(self) -> dict[str, Any]:
        """What a page's script compares: a window starting, ending or moving redraws it."""
        return {
            "maintenance": [[w.id, w.starts_at.isoformat(), w.ends_at.isoformat()] for w in self.windows],
            "silences": [[s.id, s.ends_at.isoformat()] for s in self.silences],
        }


# What Rob asks for -------------------------------------------------------------------------


def _site(value: object) -> str | None:
    """A site's name, or None for the monitor's own site."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > _MAX_SITE or not value.strip():
        raise ValueError(f"site must be a site's name of at most {_MAX_SITE} characters, got {value!r}")
    return value


def _text(name: str, value: object, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")  # noqa: TRY004  (bad input: a 400, as every field)
    return value


def _moment(name: str, value: object, *, utc_if_naive: bool) -> datetime | None:
    """A moment in ISO 8601, in UTC as every time the view shows. A page's form gives UTC
    without a zone; a script must name one."""
    if value is None or value == "":
        return None
    example = "2026-01-05T09:00:00Z"
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004  (bad input: a 400, as every field)
            f"{name} must be a date and time in ISO 8601 with a time zone (e.g. {example}), got {value!r}"
        )
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{name} must be a date and time in ISO 8601 with a time zone (e.g. {example}), got {value!r}"
        ) from None
    if moment.tzinfo is None:
        if not utc_if_naive:
            raise ValueError(f"{name} must name its time zone (e.g. {example}), got {value!r}")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _seconds_field(name: str, value: str) -> float | None:
    """A form's number of seconds (empty: none given)."""
    if not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    return seconds


def _only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; send {', '.join(allowed)}"
        )


def window_from_form(fields: Mapping[str, str]) -> dict[str, Any]:
    """``Monitor.schedule_maintenance``'s arguments from the dashboard's form: times in UTC
    (``datetime-local``), an empty start is now, an end given wins over the duration."""
    end = _moment("end", fields.get("end"), utc_if_naive=True)
    area = fields.get("area", "").strip()
    return {
        "start": _moment("start", fields.get("start"), utc_if_naive=True),
        "end": end,
        "duration": None if end is not None else _seconds_field("duration", fields.get("duration", "")),
        "reason": fields.get("reason", ""),
        "area": area or None,
        "site": _site(fields.get("site")),
    }


def window_from_json(body: Mapping[str, Any]) -> dict[str, Any]:
    """``Monitor.schedule_maintenance``'s arguments from ``POST /api/maintenance``: times in
    ISO 8601 with their zone, ``duration`` in seconds; the monitor checks the rest."""
    _only(body, _WINDOW_FIELDS)
    area = body.get("area")
    return {
        "start": _moment("start", body.get("start"), utc_if_naive=False),
        "end": _moment("end", body.get("end"), utc_if_naive=False),
        "duration": body.get("duration"),
        "reason": _text("reason", body.get("reason")),
        "area": None if area == "" else area,
        "site": _site(body.get("site")),
    }


def _check_and_key(check: object, key: object) -> tuple[str, str | None]:
    if not isinstance(check, str) or not check.strip() or len(check) > _MAX_NAME:
        raise ValueError(f"check must be a check's name (e.g. 'api_errors'), got {check!r}")
    if key is not None and (not isinstance(key, str) or len(key) > _MAX_NAME):
        raise ValueError(f"key must be a route or page of at most {_MAX_NAME} characters, or null for every key")
    return check, key


def silence_from_form(fields: Mapping[str, str]) -> dict[str, Any]:
    """``Monitor.silence``'s arguments from an incident page's form (its check and key)."""
    check, key = _check_and_key(fields.get("check", ""), fields.get("key"))
    duration = _seconds_field("duration", fields.get("duration", ""))
    if duration is None:
        raise ValueError("choose how long to silence it for")
    return {
        "check": check,
        "key": key,
        "duration": duration,
        "reason": fields.get("reason", ""),
        "site": _site(fields.get("site")),
    }


def silence_from_json(body: Mapping[str, Any]) -> dict[str, Any]:
    """``Monitor.silence``'s arguments from ``POST /api/silences``; ``duration`` defaults to
    the monitor's (two hours), ``key`` null (or left out) silences every key of the check."""
    _only(body, _SILENCE_FIELDS)
    check, key = _check_and_key(body.get("check"), body.get("key"))
    args: dict[str, Any] = {
        "check": check,
        "key": key,
        "reason": _text("reason", body.get("reason")),
        "site": _site(body.get("site")),
    }
    if body.get("duration") is not None:
        args["duration"] = body["duration"]
    return args
