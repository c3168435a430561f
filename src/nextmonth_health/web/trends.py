"""Trend series for the four bundled checks, and soft SVG charts of them drawn on the server.

A chart must show the spike Rob was told about. So each point carries two numbers: its
``value`` over the whole point (an hour's error ratio, say) and its ``worst`` — the worst
five-minute window inside it, the window the checks judge — so a ten-minute spike of 43 %
is never averaged into an hour's 8 %. The 24-hour chart is drawn at five-minute points,
the 7-day chart hourly.

Everything is read from the store's roll-ups (``Store.read_rollup``): five-minute ones for
as long as the store keeps them (a day: ``FIVE_MINUTE_RETENTION``, or ``history_seconds``
if that is longer), hourly ones (kept 30 days) before that. A point says which it is
(``span``: 300 or 3600 seconds), and an hourly point from before the five-minute horizon
has no ``worst`` (``None``: not known, rather than a made-up number). So the 24-hour chart
is five-minute points all the way back, unless the monitor is younger than the store's
five-minute roll-ups (then it starts where they do).

A span without traffic has ``value: None`` and is drawn as a gap, for every check
(session failures included: no sign-in attempts is not "no failures"). Charts are plain
SVG strings: no JavaScript, text at real pixel sizes (the plot stretches, the labels do
not, so they stay readable on a 390 px phone), every piece of text escaped, a ``<title>``
and a ``<desc>`` that says in words what the chart shows, for screen readers.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from attrs import frozen

from .. import signals as sig
from ..signals import Bucket
from ..store.base import FIVE_MINUTE_RETENTION
from ..values import Incident

if TYPE_CHECKING:
    from ..monitor import Monitor
    from ..settings import Settings

__all__ = [
    "CHECKS",
    "RANGES",
    "Measure",
    "Point",
    "Series",
    "Shade",
    "format_value",
    "measure_for",
    "measures",
    "render_svg",
    "trend_series",
]

HOUR = 3600
FIVE_MINUTES = 300
#: Range name -> (length in seconds, seconds per point).
RANGES: dict[str, tuple[int, int]] = {"24h": (86_400, FIVE_MINUTES), "7d": (7 * 86_400, HOUR)}
#: The bundled checks with trends, in the order the dashboard shows them.
CHECKS: tuple[str, ...] = ("api_errors", "dashboard_load", "session_failures", "upload_failures")
#: Units, as the API names them: a share of events, seconds, or failures per five minutes.
UNITS = ("ratio", "seconds", "per 5 min")


@frozen
class Point:
    """One span of a series: its start (Unix seconds) and length, the value over the whole
    span (None: no traffic), the worst five-minute window inside it (None: not known, or no
    traffic), and how many events are behind it."""

    start: int
    span: int
    value: float | None
    worst: float | None
    total: int

    @property
    def end(self) -> int:
        return self.start + self.span


@frozen
class Shade:
    """An incident drawn over a chart, from when it opened to when it resolved (or now)."""

    incident_id: str
    start: float
    end: float | None
    severity: str
    summary: str


@frozen
class Series:
    """One chart: a check (and key) over a span of time, with the line it is judged against."""

    check: str
    key: str
    title: str
    unit: str
    range: str
    threshold: float | None
    points: tuple[Point, ...]
    #: What the threshold line means ("critical line", "notice line").
    threshold_label: str = ""
    #: The x axis: from ``start`` to ``end`` (Unix seconds); by default the points' own span.
    start: float | None = None
    end: float | None = None
    shades: tuple[Shade, ...] = ()
    #: A usual level to draw beside the threshold (what an incident was judged against).
    baseline: float | None = None
    #: Where a point is drawn: the middle of its span, or its end (a reading's moment).
    x_at: str = "center"
    #: Said under the chart and in its description (a change of resolution, say).
    note: str = ""

    @property
    def has_data(self) -> bool:
        return any(p.total for p in self.points)

    @property
    def latest(self) -> float | None:
        """The most recent point's value, if that point had any traffic."""
        last = self.points[-1] if self.points else None
        return last.value if last is not None and last.total else None

    @property
    def peak(self) -> Point | None:
        """The point with the highest worst window (or value, where the worst is not known)."""
        seen = [p for p in self.points if _top(p) is not None]
        return max(seen, key=lambda p: _top(p) or 0.0) if seen else None

    @property
    def x_start(self) -> float:
        return self.start if self.start is not None else (self.points[0].start if self.points else 0.0)

    @property
    def x_end(self) -> float:
        return self.end if self.end is not None else (self.points[-1].end if self.points else 1.0)

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "range": self.range,
            "threshold": self.threshold,
            "threshold_label": self.threshold_label,
            "baseline": self.baseline,
            "note": self.note,
            "incidents": [
                {"id": s.incident_id, "from": iso_seconds(s.start), "to": iso_seconds(s.end), "severity": s.severity}
                for s in self.shades
            ],
            "points": [
                {
                    "t": iso_seconds(p.start),
                    "span": p.span,
                    "value": p.value,
                    "worst": p.worst,
                    "total": p.total,
                }
                for p in self.points
            ],
        }


def _top(point: Point) -> float | None:
    return point.worst if point.worst is not None else point.value


def iso_seconds(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


# What each check measures ----------------------------------------------------------------


@frozen
class Measure:
    """How one check's value is read from stored counts: which signals and keys, and what
    number they make (``kind``: ``ratio`` of bad events, ``p75`` of values, or ``per5min``:
    failed sign-ins and expiries per five minutes)."""

    check: str
    key: str
    title: str
    unit: str
    kind: str
    parts: tuple[tuple[str, tuple[str, ...] | None], ...]
    threshold: float | None
    threshold_label: str = ""
    #: Read instead when the parts hold no values at all (server timing for page loads).
    fallback: tuple[tuple[str, tuple[str, ...] | None], ...] = ()

    def value(self, merged: Mapping[str, Bucket], span: int) -> tuple[float | None, int]:
        """(value, events behind it) of the buckets merged per signal over ``span`` seconds."""
        if self.kind == "per5min":
            login, expired = merged.get(sig.LOGIN), merged.get(sig.SESSION_EXPIRED)
            failures = (login.bad if login else 0) + (expired.total if expired else 0)
            total = (login.total if login else 0) + (expired.total if expired else 0)
            return (failures * FIVE_MINUTES / span if total else None), total
        bucket = next(iter(merged.values()), None)  # one part (or its fallback), one signal
        if bucket is None:
            return None, 0
        if self.kind == "p75":
            samples = bucket.samples
            return (bucket.quantile(0.75) if samples else None), samples
        return (bucket.bad / bucket.total if bucket.total else None), bucket.total


def measures(settings: Settings) -> list[Measure]:
    """What the dashboard charts for a site with these settings, in order."""
    s = settings
    out = [
        Measure(
            "api_errors",
            route,
            f"API error ratio on {route}",
            "ratio",
            "ratio",
            ((sig.REQUEST, (route,)),),
            s.api_error_critical_ratio,
            "critical line",
        )
        for route in s.critical_routes
    ]
    pages = s.dashboard_pages
    key = pages[0] if len(pages) == 1 else ",".join(pages)
    out.append(
        Measure(
            "dashboard_load",
            key,
            f"Dashboard load time (p75) on {key}",
            "seconds",
            "p75",
            ((sig.PAGE_LOAD, pages),),
            s.page_load_slow_seconds,
            "notice line",
            fallback=((sig.REQUEST, pages),),
        )
    )
    out.append(
        Measure(
            "session_failures",
            "",
            "Session failures (failed sign-ins and expiries)",
            "per 5 min",
            "per5min",
            ((sig.LOGIN, None), (sig.SESSION_EXPIRED, None)),
            None,
        )
    )
    out.append(
        Measure(
            "upload_failures",
            "",
            "Upload failure ratio",
            "ratio",
            "ratio",
            ((sig.UPLOAD, None),),
            s.upload_failure_ratio,
            "notice line",
        )
    )
    return out


def measure_for(settings: Settings, check: str, key: str) -> Measure | None:
    """The measure behind a bundled check's reading for ``key`` (None for other checks)."""
    if check == "api_errors" and key == "*":
        return Measure(
            "api_errors",
            "*",
            "API error ratio across the site",
            "ratio",
            "ratio",
            ((sig.REQUEST, None),),
            settings.api_error_critical_ratio,
            "critical line",
        )
    return next((m for m in measures(settings) if m.check == check and (m.key == key or check != "api_errors")), None)


# Reading the store ------------------------------------------------------------------------


class Reads:
    """A site's buckets and roll-ups, each span read once however many charts use it."""

    def __init__(self, monitor: Monitor, site: str) -> None:
        self.store = monitor.store
        self.site = site
        self._cache: dict[tuple[str, int], tuple[int, int, list[Bucket]]] = {}

    def rows(self, signal: str, width: int, start: int, end: int) -> list[Bucket]:
        """Roll-ups ``width`` wide (0: raw buckets) of a signal starting in ``[start, end)``;
        a span inside one already read is answered from it (read the widest span first)."""
        held = self._cache.get((signal, width))
        if held is not None and held[0] <= start and end <= held[1]:
            if (held[0], held[1]) == (start, end):
                return held[2]
            return [row for row in held[2] if start <= row.start < end]
        if width:
            found = self.store.read_rollup(self.site, signal, width, start, end)
        else:
            found = self.store.read(self.site, signal, start, end)
        if held is None or end - start > held[1] - held[0]:
            self._cache[(signal, width)] = (start, end, found)
        return found

    def merged(
        self, parts: Sequence[tuple[str, Sequence[str] | None]], width: int, start: int, end: int
    ) -> dict[int, dict[str, Bucket]]:
        """By start, by signal: the counts of ``parts`` (signals over keys, None for all) merged."""
        out: dict[int, dict[str, Bucket]] = {}
        for signal, keys in parts:
            wanted = None if keys is None else set(keys)
            for row in self.rows(signal, width, start, end):
                if wanted is not None and row.key not in wanted:
                    continue
                by_signal = out.setdefault(row.start, {})
                into = by_signal.get(signal)
                if into is None:
                    into = by_signal[signal] = Bucket(self.site, signal, "", row.start)
                into.add_counts(row)
        return out


def _parts_for(
    measure: Measure, reads: Reads, width: int, start: int, end: int
) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """The measure's parts, or its fallback when they hold no values over the span."""
    if not measure.fallback:
        return measure.parts
    for signal, keys in measure.parts:
        wanted = None if keys is None else set(keys)
        if any(r.hist for r in reads.rows(signal, width, start, end) if wanted is None or r.key in wanted):
            return measure.parts
    return measure.fallback


def fine_horizon(monitor: Monitor, site: str, now: float) -> int:
    """The first whole hour from which the store still holds every five-minute roll-up
    (kept :data:`~nextmonth_health.store.base.FIVE_MINUTE_RETENTION`, or ``history_seconds``
    if that is longer)."""
    return -_floor(-(now - _fine_retention(monitor, site)), HOUR)


def _fine_retention(monitor: Monitor, site: str) -> int:
    return max(monitor.settings_for(site).history_seconds, FIVE_MINUTE_RETENTION)


def _floor(t: float, step: int) -> int:
    return int(t) - int(t) % step


def _slots(now: float, range_: str, fine_from: int) -> list[tuple[int, int]]:
    """(start, span) of every point of a range ending now: five-minute ones where the store
    still has them, hourly before."""
    length, step = RANGES[range_]
    last = _floor(now, step)
    first = last - (length // step - 1) * step
    if step == HOUR:
        return [(t, HOUR) for t in range(first, last + 1, HOUR)]
    slots = [(t, HOUR) for t in range(_floor(first, HOUR), min(fine_from, last + 1), HOUR)]
    begin = max(first, fine_from)
    slots += [(t, FIVE_MINUTES) for t in range(begin, last + 1, FIVE_MINUTES)]
    return slots


def _points(
    measure: Measure, reads: Reads, slots: list[tuple[int, int]], fine_from: int, end: int
) -> tuple[Point, ...]:
    start = slots[0][0]
    hourly_end = max((s + HOUR for s, span in slots if span == HOUR), default=start)
    parts = _parts_for(measure, reads, HOUR, start, end)
    hourly = reads.merged(parts, HOUR, start, hourly_end) if hourly_end > start else {}
    fine_start = max(fine_from, start)
    fine = reads.merged(parts, FIVE_MINUTES, fine_start, end) if end > fine_start else {}
    fine_values = {t: measure.value(b, FIVE_MINUTES) for t, b in fine.items()}
    points = []
    for t, span in slots:
        if span == FIVE_MINUTES:
            value, total = fine_values.get(t, (None, 0))
            points.append(Point(t, span, value, value, total))
            continue
        value, total = measure.value(hourly.get(t, {}), HOUR)
        worst = None
        if t >= fine_from:
            inside = [v for s, (v, n) in fine_values.items() if t <= s < t + HOUR and n and v is not None]
            worst = max(inside, default=None)
            if worst is not None and value is not None:
                worst = max(worst, value)
        points.append(Point(t, span, value, worst if total else None, total))
    return tuple(points)


def _resolution_note(slots: list[tuple[int, int]], fine_from: int, range_: str, history: int) -> str:
    if range_ != "24h" or slots[0][1] == FIVE_MINUTES:
        return ""
    return (
        f"Five-minute points from {clock_time(fine_from)} UTC, hourly before: the store keeps "
        f"five-minute detail for {history // 3600 if history % 3600 == 0 else round(history / 3600, 1)} hours."
    )


def trend_series(
    monitor: Monitor,
    site: str,
    check: str | None = None,
    range_: str = "24h",
    incidents: Iterable[Incident] | None = None,
    reads: Reads | None = None,
) -> list[Series]:
    """The trend charts of a site: every bundled check, or just ``check``, over ``range_``.

    ``incidents`` (the site's open and recent ones; read when not given) are shaded on
    the charts of their check and key. ``reads`` shares store reads between calls.

    :raises ValueError: for an unknown range or check.
    """
    if range_ not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)}")
    if check is not None and check not in CHECKS:
        raise ValueError(f"check must be one of {', '.join(CHECKS)}")
    now = monitor.clock.now()
    fine_from = fine_horizon(monitor, site, now)
    slots = _slots(now, range_, fine_from)
    end = slots[-1][0] + slots[-1][1]
    reads = reads or Reads(monitor, site)
    if incidents is None:
        incidents = monitor.incidents(site)
    incidents = list(incidents)
    out = []
    for measure in measures(monitor.settings_for(site)):
        if check is not None and measure.check != check:
            continue
        shades = tuple(
            shade_of(i)
            for i in incidents
            if i.check == measure.check
            and (i.key == measure.key or measure.check != "api_errors")
            and (i.resolved_at is None or i.resolved_at.timestamp() >= slots[0][0])
        )
        out.append(
            Series(
                measure.check,
                measure.key,
                measure.title,
                measure.unit,
                range_,
                measure.threshold,
                _points(measure, reads, slots, fine_from, end),
                measure.threshold_label,
                start=slots[0][0],
                end=now,
                shades=shades,
                note=_resolution_note(slots, fine_from, range_, _fine_retention(monitor, site)),
            )
        )
    return out


def shade_of(incident: Incident) -> Shade:
    return Shade(
        incident.id,
        incident.opened_at.timestamp(),
        None if incident.resolved_at is None else incident.resolved_at.timestamp(),
        incident.severity.value,
        incident.summary,
    )


# Around one incident -------------------------------------------------------------------------


def readings_around(monitor: Monitor, incident: Incident, measure: Measure, reads: Reads | None = None) -> Series:
    """The check's value over time around an incident, as the check saw it: at each step
    the window it judges (``window_seconds``) ending then, read from the raw buckets while
    the store keeps them (``history_seconds``); hourly roll-ups before that.

    Steps are the bucket width (10 s), or a multiple of it so that a long incident stays
    within about 360 points.
    """
    s = monitor.settings_for(incident.site)
    now = monitor.clock.now()
    reads = reads or Reads(monitor, incident.site)
    opened = incident.opened_at.timestamp()
    closed = incident.resolved_at.timestamp() if incident.resolved_at is not None else now
    start = int(opened) - 1800
    end = int(min(now, closed + 900))
    window, bucket = s.window_seconds, s.bucket_seconds
    step = bucket * max(1, math.ceil((end - start) / 360 / bucket))
    start = _floor(start, step)
    raw_from = int(now) - s.history_seconds + window  # a window ending here is whole in the raw buckets
    points: list[Point] = []
    if start < raw_from:
        hour_end = min(_floor(raw_from, HOUR) + HOUR, end)
        hourly = reads.merged(
            _parts_for(measure, reads, HOUR, _floor(start, HOUR), hour_end), HOUR, _floor(start, HOUR), hour_end
        )
        for t in range(_floor(start, HOUR), hour_end, HOUR):
            value, total = measure.value(hourly.get(t, {}), HOUR)
            points.append(Point(t, HOUR, value, None, total))
        start = hour_end
    if start < end:
        first = _floor(start, step)
        raw = reads.merged(_parts_for(measure, reads, 0, first - window, end), 0, first - window, end)
        for t in range(first + step, end + 1, step):
            merged: dict[str, Bucket] = {}
            for b in range(t - window, t, bucket):
                for signal, counts in raw.get(b, {}).items():
                    into = merged.get(signal)
                    if into is None:
                        into = merged[signal] = Bucket(incident.site, signal, "", t - window)
                    into.add_counts(counts)
            value, total = measure.value(merged, window)
            points.append(Point(t - window, window, value, value, total))
    baseline = incident.threshold if measure.check in ("api_errors", "session_failures") else None
    note = ""
    if points and points[0].span == HOUR:
        note = (
            "Before " + clock_time(raw_from) + " UTC the store keeps hourly totals only, so those hours "
            "are shown as hourly values."
        )
    return Series(
        measure.check,
        measure.key,
        measure.title,
        measure.unit,
        "incident",
        measure.threshold,
        tuple(points),
        measure.threshold_label,
        start=points[0].start if points else start,
        end=max(end, points[-1].end) if points else end,
        shades=(shade_of(incident),),
        baseline=baseline,
        x_at="end",
        note=note,
    )


# Words ----------------------------------------------------------------------------------------


def format_value(value: float | None, unit: str) -> str:
    """A value as people read it: ``12%``, ``3.4 s``, ``7``; an en dash for none."""
    if value is None:
        return "–"
    if unit == "ratio":
        pct = value * 100
        return f"{pct:.0f}%" if pct >= 10 or pct == 0 else f"{pct:.1f}%"
    if unit == "seconds":
        return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"
    if value != int(value) and value < 10:
        return f"{value:.1f}"
    return f"{value:.0f}"


def clock_time(seconds: float) -> str:
    """``09:05``: a time of day in UTC, as every admin page and the widget show it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M")


def _span_words(series: Series) -> str:
    if series.range == "24h":
        return "the last 24 hours"
    if series.range == "7d":
        return "the last 7 days"
    return f"{clock_time(series.x_start)} to {clock_time(series.x_end)} UTC"


def summary(series: Series) -> str:
    """The chart in words, for screen readers (and anyone who would rather read)."""
    unit = series.unit
    what = " per five minutes" if unit == "per 5 min" else ""
    if not series.has_data:
        return f"{series.title}: no traffic recorded in {_span_words(series)}."
    parts = [f"{series.title}{what}, {_span_words(series)}."]
    peak = series.peak
    if peak is not None:
        top = _top(peak)
        kind = "worst five-minute window" if peak.worst is not None and peak.span > FIVE_MINUTES else "highest point"
        moment = peak.end if series.x_at == "end" else peak.start
        parts.append(f"Peak {format_value(top, unit)} at {clock_time(moment)} UTC ({kind}).")
    last = series.latest
    parts.append(f"Latest {format_value(last, unit)}." if last is not None else "No traffic in the latest point.")
    if series.threshold is not None:
        label = series.threshold_label or "threshold"
        parts.append(f"{label[0].upper()}{label[1:]} at {format_value(series.threshold, unit)}.")
    if series.baseline is not None:
        parts.append(f"Usual level before it opened: {format_value(series.baseline, unit)}.")
    gaps = sum(1 for p in series.points if not p.total)
    if gaps:
        parts.append(f"{gaps} of {len(series.points)} points had no traffic (drawn as gaps).")
    for shade in series.shades:
        until = f"{clock_time(shade.end)} UTC" if shade.end is not None else "now"
        parts.append(f"Incident ({shade.severity}) shaded from {clock_time(shade.start)} UTC to {until}.")
    if series.note:
        parts.append(series.note)
    return " ".join(parts)


# Drawing -------------------------------------------------------------------------------------

#: The chart's height in CSS pixels; its width is the container's. The plot is an inner SVG
#: stretched to fit (strokes keep their width), the text is not stretched: 12 px everywhere.
HEIGHT = 160
_TOP, _PLOT = 22, 108
_UNITS_W, _UNITS_H = 1000, 100
_FONT = 12
_LINE = "#5b8db8"
_AREA = "#a9c8e2"
_WORST = "#c0707c"
_THRESHOLD = "#c98b93"
_BASELINE = "#8a94a3"
_SHADE = "#f1c4ca"
_GRID = "#e6e9ee"
_MUTED = "#5f6b7a"
#: A soft outline in the card's colour, so labels stay legible where they cross the curve.
_HALO = 'stroke="#fbfcfd" stroke-width="3" paint-order="stroke" stroke-linejoin="round"'
_CRISP = 'vector-effect="non-scaling-stroke"'


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _monotone(xs: list[float], ys: list[float]) -> str:
    """A smooth path through the points that never overshoots them (Fritsch-Carlson)."""
    n = len(xs)
    if n == 1:
        return f"M{_n(xs[0])},{_n(ys[0])}"
    d = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) if xs[i + 1] != xs[i] else 0.0 for i in range(n - 1)]
    m = [d[0], *[(d[i - 1] + d[i]) / 2 if d[i - 1] * d[i] > 0 else 0.0 for i in range(1, n - 1)], d[-1]]
    for i in range(n - 1):
        if d[i] == 0:
            m[i] = m[i + 1] = 0.0
            continue
        a, b = m[i] / d[i], m[i + 1] / d[i]
        h = math.hypot(a, b)
        if h > 3:
            m[i], m[i + 1] = 3 * a / h * d[i], 3 * b / h * d[i]
    path = [f"M{_n(xs[0])},{_n(ys[0])}"]
    for i in range(n - 1):
        dx = (xs[i + 1] - xs[i]) / 3
        path.append(
            f"C{_n(xs[i] + dx)},{_n(ys[i] + m[i] * dx)} {_n(xs[i + 1] - dx)},{_n(ys[i + 1] - m[i + 1] * dx)} "
            f"{_n(xs[i + 1])},{_n(ys[i + 1])}"
        )
    return "".join(path)


def _runs(points: Sequence[Point]) -> list[list[Point]]:
    """Points with traffic, in runs broken by the points without any (the gaps)."""
    runs: list[list[Point]] = []
    current: list[Point] = []
    for p in points:
        if p.value is None or not p.total:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(p)
    if current:
        runs.append(current)
    return runs


def nice_top(value: float, unit: str) -> float:
    """A round number at or above ``value`` for the top of the y axis."""
    if value <= 0:
        return 0.1 if unit == "ratio" else 1.0
    if unit == "ratio" and value >= 0.6:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def _time_ticks(start: float, end: float, range_: str) -> list[tuple[float, str]]:
    """Round UTC times along the x axis, at most about five."""
    if range_ == "7d":
        day = 86_400
        return [
            (t, datetime.fromtimestamp(t, UTC).strftime("%a")) for t in range(_floor(start, day) + day, int(end), day)
        ]
    length = end - start
    every = next((e for e in (600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200) if length / e <= 5), 86_400)
    return [(t, clock_time(t)) for t in range(_floor(start, every) + every, int(end), every)]


def render_svg(series: Series) -> str:
    """A calm area chart of one series, as an SVG element string (safe to embed in HTML).

    The line is each point's value; a rose tick rises above it to the worst five-minute
    window where that is higher; incidents are shaded; the dashed line is the threshold
    the API reports; gaps are points without traffic.
    """
    x0, x1 = series.x_start, series.x_end
    width = max(x1 - x0, 1.0)
    unit = series.unit
    tops = [v for p in series.points if p.total for v in (p.value, p.worst) if v is not None]
    lines = [v for v in (series.threshold, series.baseline) if v is not None]
    top = nice_top(max([*tops, *lines, 0.0]) * 1.08, unit)

    def x(t: float) -> float:
        return (t - x0) / width * _UNITS_W

    def xp(p: Point) -> float:  # the point still filling up (this hour) is drawn at its latest moment
        return x(min(p.end if series.x_at == "end" else p.start + p.span / 2, x1))

    def y(v: float) -> float:
        return _UNITS_H - min(v, top) / top * _UNITS_H

    def px(v: float) -> float:  # the same height in the outer SVG's pixels
        return _TOP + min(v, top) / top * -_PLOT + _PLOT

    text = summary(series)
    parts = [
        (
            f'<svg class="trend" width="100%" height="{HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg" '
            f'data-check="{_esc(series.check)}" data-range="{_esc(series.range)}">'
        ),
        f"<title>{_esc(series.title)} — {_esc(series.range)}</title>",
        f"<desc>{_esc(text)}</desc>",
        (
            f'<svg class="trend-plot" x="0" y="{_TOP}" width="100%" height="{_PLOT}" '
            f'viewBox="0 0 {_UNITS_W} {_UNITS_H}" preserveAspectRatio="none" overflow="visible">'
        ),
    ]
    for shade in series.shades:
        left = max(0.0, x(shade.start))
        right = min(float(_UNITS_W), x(shade.end if shade.end is not None else x1))
        if right <= left:
            right = min(float(_UNITS_W), left + 4)
        until = f"{clock_time(shade.end)} UTC" if shade.end is not None else "now"
        parts.append(
            f'<rect class="trend-incident" data-incident="{_esc(shade.incident_id)}" x="{_n(left)}" y="0" '
            f'width="{_n(right - left)}" height="{_UNITS_H}" fill="{_SHADE}" fill-opacity="0.45">'
            f"<title>{_esc(shade.summary)} ({_esc(shade.severity)}), {clock_time(shade.start)} UTC to {until}</title></rect>"
        )
    for frac in (0.5, 1.0):
        gy = _n(y(top * frac))
        parts.append(
            f'<line class="trend-grid" x1="0" y1="{gy}" x2="{_UNITS_W}" y2="{gy}" stroke="{_GRID}" stroke-width="1" {_CRISP}/>'
        )
    parts.append(
        f'<line class="trend-base" x1="0" y1="{_UNITS_H}" x2="{_UNITS_W}" y2="{_UNITS_H}" stroke="#cfd6de" stroke-width="1" {_CRISP}/>'
    )
    labels: list[str] = []  # drawn last, over the curve, at real pixel sizes
    if series.baseline is not None:
        by = _n(y(series.baseline))
        parts.append(
            f'<line class="trend-baseline" x1="0" y1="{by}" x2="{_UNITS_W}" y2="{by}" stroke="{_BASELINE}" '
            f'stroke-width="1" stroke-dasharray="1 3" {_CRISP}/>'
        )
    if series.threshold is not None:
        ty = y(series.threshold)
        parts.append(
            f'<line class="trend-threshold" x1="0" y1="{_n(ty)}" x2="{_UNITS_W}" y2="{_n(ty)}" '
            f'stroke="{_THRESHOLD}" stroke-width="1.25" stroke-dasharray="5 4" {_CRISP}/>'
        )
        label = series.threshold_label or "threshold"
        labels.append(
            f'<text class="trend-label trend-threshold-label" x="100%" dx="-4" y="{_n(px(series.threshold) - 4)}" '
            f'text-anchor="end" font-size="{_FONT}" fill="{_MUTED}" {_HALO}>'
            f"{_esc(label)} {_esc(format_value(series.threshold, unit))}</text>"
        )
    if series.has_data:
        for run in _runs(series.points):
            xs = [xp(p) for p in run]
            ys = [y(p.value or 0.0) for p in run]
            if len(run) == 1:
                parts.append(
                    f'<path class="trend-dot" d="M{_n(xs[0])},{_n(ys[0])}h0" stroke="{_LINE}" stroke-width="6" '
                    f'stroke-linecap="round" fill="none" {_CRISP}/>'
                )
            else:
                line = _monotone(xs, ys)
                parts.append(
                    f'<path class="trend-area" d="{line}L{_n(xs[-1])},{_UNITS_H}L{_n(xs[0])},{_UNITS_H}Z" '
                    f'fill="{_AREA}" fill-opacity="0.45" stroke="none"/>'
                )
                parts.append(
                    f'<path class="trend-line" d="{line}" fill="none" stroke="{_LINE}" stroke-width="2" '
                    f'stroke-linejoin="round" stroke-linecap="round" {_CRISP}/>'
                )
            for p, px_, py in zip(run, xs, ys, strict=True):
                if p.worst is not None and p.value is not None and p.worst > p.value * 1.05 + 1e-9:
                    parts.append(
                        f'<path class="trend-worst" d="M{_n(px_)},{_n(py)}V{_n(y(p.worst))}" stroke="{_WORST}" '
                        f'stroke-width="2.5" stroke-linecap="round" {_CRISP}/>'
                    )
    parts.append("</svg>")
    if not series.has_data:
        labels.append(
            f'<text class="trend-empty" x="50%" y="{_TOP + _PLOT // 2 + 4}" text-anchor="middle" '
            f'font-size="{_FONT + 1}" fill="{_MUTED}">No traffic recorded yet</text>'
        )
    for value in (top, top / 2):
        labels.append(
            f'<text class="trend-axis trend-y" x="2" y="{_n(px(value) + 13)}" font-size="{_FONT}" fill="{_MUTED}" {_HALO}>'
            f"{_esc(format_value(value, unit))}{'' if unit != 'per 5 min' or value != top else ' /5 min'}</text>"
        )
    ticks = _time_ticks(x0, x1, series.range)
    for t, label in ticks:
        frac = x(t) / _UNITS_W * 100
        if frac < 6 or frac > 84:
            continue  # keep clear of the ends (the right one says "now")
        labels.append(
            f'<text class="trend-axis trend-x" x="{frac:.2f}%" y="{HEIGHT - 14}" text-anchor="middle" '
            f'font-size="{_FONT}" fill="{_MUTED}">{_esc(label)}</text>'
        )
    end_label = "now" if series.range in RANGES else clock_time(x1)
    labels.append(
        f'<text class="trend-axis trend-x" x="100%" dx="-2" y="{HEIGHT - 14}" text-anchor="end" '
        f'font-size="{_FONT}" fill="{_MUTED}">{_esc(end_label)}</text>'
    )
    parts.extend(labels)
    parts.append("</svg>")
    return "".join(parts)
