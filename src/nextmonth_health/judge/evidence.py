"""How a check turns what it measured into a :class:`~nextmonth_health.values.Health`,
the same way for every bundled check (and any plugin check that wants it).

A check measures two windows: the whole ``window_seconds`` (five minutes), where a
moderate, lasting problem adds up, and its ``recent`` last ``fast_window_seconds`` (a
minute), where a sharp outage shows within seconds. They share the evidence budget
(:func:`split_alpha`): a week holds five times as many one-minute windows as five-minute
ones, so the minute gets a sixth of ``alpha`` and the five minutes the rest, and each
minute of watching costs the same false alarms whichever window looks. A *spike* is a
window that shows a problem with that much evidence; it is *severe* when it also crosses
the check's critical line.

While an incident is open, the recent window alone decides whether it is over: once the
last minute looks normal again (no longer clearly above the recovery line, at the
lenient :data:`LENIENT_ALPHA`), the reading is healthy and the incident's cool-down runs,
even though the five-minute window still holds the outage. A window with no traffic at
all counts as calm: nobody is being hurt in it.

A severe spike alerts the admin, so it must also reach people, not just requests: the
people hurt over the span of the window that showed it must be more than the usual ratio
of the people active there would be, with the same ``alpha`` of evidence
(:func:`reaches_people`). One client retrying a failing endpoint thirty times a second
makes a spike of requests, shown to that client as a notice, but the people hurt are the
usual few, and nobody is paged.
"""

from __future__ import annotations

from typing import Final

from ..settings import Settings
from ..values import Health
from .stats import past_line
from .windows import Keys, SiteView, Window

__all__ = ["LENIENT_ALPHA", "reaches_people", "split_alpha", "verdict"]

#: A recent window is calm unless it is this sure to be above the recovery line: lenient,
#: so a healed key starts cooling down at once, while a key still failing (a clear excess
#: nearly every minute) keeps restarting the cool-down.
LENIENT_ALPHA: Final = 0.001


def verdict(*, open_incident: bool, calm: bool, spike: bool, severe: bool, quiet: bool) -> Health:
    """The health of one key from what its check found.

    :param open_incident: the check's incident for this key is open.
    :param calm: the recent window looks normal (see the module docstring).
    :param spike: a window shows a problem with its share of the evidence (:func:`split_alpha`).
    :param severe: that window also crosses the critical line.
    :param quiet: the window is under the recovery line (matters only with no incident).
    """
    if open_incident and calm:
        return Health.OK
    if spike:
        return Health.CRITICAL if severe else Health.DEGRADED
    if open_incident or not quiet:
        return Health.ELEVATED
    return Health.OK


def reaches_people(view: SiteView, spike: Window, keys: Keys, usual: float) -> bool:
    """Whether the people hurt over ``spike``'s span (its signal and ``keys``) are clearly
    more than the ``usual`` ratio of the people active there would be, at ``alpha``: the
    problem reaches people, not one client's requests."""
    seconds = spike.end - spike.start
    hurt = view.users((spike.signal, keys, True), seconds=seconds)
    active = view.users((spike.signal, keys, False), seconds=seconds)
    return past_line(hurt, active, usual, view.settings.alpha)


def split_alpha(alpha: float, settings: Settings) -> tuple[float, float]:
    """``alpha`` shared between the recent window and the whole one, in proportion to how
    many of each a week holds: ``(alpha * recent / (recent + whole), alpha * whole / (…))``."""
    recent, whole = settings.fast_window_seconds, settings.window_seconds
    return alpha * recent / (recent + whole), alpha * whole / (recent + whole)
