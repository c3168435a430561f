"""Trend series for the four bundled checks, and soft SVG charts of them drawn on the server.

Series come from the store's hourly roll-ups (``Store.read_hourly``), which outlive the raw
buckets, so the 7-day view costs one read per signal. Charts are plain SVG strings: no
JavaScript, no CDN, every piece of text escaped, a ``<title>`` and ``<desc>`` for screen
readers. A missing value (an hour without traffic) leaves a gap rather than a fake zero.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from attrs import frozen

from .. import signals as sig
from ..signals import Bucket

if TYPE_CHECKING:
    from ..monitor import Monitor

__all__ = ["CHECKS", "RANGES", "Point", "Series", "format_value", "render_svg", "trend_series"]

HOUR = 3600
#: Range name -> number of hourly points.
RANGES: dict[str, int] = {"24h": 24, "7d": 7 * 24}
#: The bundled checks with trends, in the order the dashboard shows them.
CHECKS: tuple[str, ...] = ("api_errors", "dashboard_load", "session_failures", "upload_failures")


@frozen
class Point:
    """One hour: its start (Unix seconds), the value shown (None: no data), the events behind it."""

    start: int
    value: float | None
    total: int


@frozen
class Series:
    """One chart: a check (and key) over a range, with the line it is judged against."""

    check: str
    key: str
    title: str
    unit: str  # "ratio", "seconds" or "count"
    range: str
    threshold: float | None
    points: tuple[Point, ...]

    @property
    def has_data(self) -> bool:
        return any(p.total for p in self.points)

    @property
    def latest(self) -> float | None:
        """The most recent hour's value, if that hour had any traffic."""
        last = self.points[-1] if self.points else None
        return last.value if last is not None and last.total else None

    def as_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "range": self.range,
            "threshold": self.threshold,
            "points": [
                {"t": datetime.fromtimestamp(p.start, UTC).isoformat(), "value": p.value, "total": p.total}
                for p in self.points
            ],
        }


def _hours(now: float, range_: str) -> list[int]:
    count = RANGES[range_]
    last = int(now) - int(now) % HOUR
    return [last - (count - 1 - i) * HOUR for i in range(count)]


def _by_hour(monitor: Monitor, site: str, signal: str, hours: list[int], keys: Sequence[str] | None) -> dict[int, Bucket]:
    """Hourly roll-ups of a signal, merged across ``keys`` (all keys when None)."""
    merged: dict[int, Bucket] = {}
    wanted = None if keys is None else set(keys)
    for bucket in monitor.store.read_hourly(site, signal, hours[0], hours[-1] + HOUR):
        if wanted is not None and bucket.key not in wanted:
            continue
        into = merged.get(bucket.start)
        if into is None:
            into = merged[bucket.start] = Bucket(site, signal, "", bucket.start)
        into.add_counts(bucket)
    return merged


def _ratio_points(merged: dict[int, Bucket], hours: list[int]) -> tuple[Point, ...]:
    points = []
    for start in hours:
        b = merged.get(start)
        points.append(Point(start, b.ratio if b is not None and b.total else None, b.total if b is not None else 0))
    return tuple(points)


def trend_series(monitor: Monitor, site: str, check: str | None = None, range_: str = "24h") -> list[Series]:
    """The trend charts of a site: every bundled check, or just ``check``; hourly over ``range_``.

    :raises ValueError: for an unknown range or check.
    """
    if range_ not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)}")
    if check is not None and check not in CHECKS:
        raise ValueError(f"check must be one of {', '.join(CHECKS)}")
    s = monitor.settings_for(site)
    hours = _hours(monitor.clock.now(), range_)
    wanted = CHECKS if check is None else (check,)
    out: list[Series] = []
    if "api_errors" in wanted:
        requests = monitor.store.read_hourly(site, sig.REQUEST, hours[0], hours[-1] + HOUR)
        for route in s.critical_routes:
            merged: dict[int, Bucket] = {}
            for bucket in requests:
                if bucket.key == route:
                    merged.setdefault(bucket.start, Bucket(site, sig.REQUEST, route, bucket.start)).add_counts(bucket)
            out.append(
                Series("api_errors", route, f"API error ratio on {route}", "ratio", range_,
                       s.api_error_critical_ratio, _ratio_points(merged, hours))
            )
    if "dashboard_load" in wanted:
        pages = s.dashboard_pages
        merged = _by_hour(monitor, site, sig.PAGE_LOAD, hours, pages)
        if not any(b.samples for b in merged.values()):
            merged = _by_hour(monitor, site, sig.REQUEST, hours, pages)  # server timing, as the check falls back
        points = tuple(
            Point(h, merged[h].quantile(0.75) if h in merged else None, merged[h].samples if h in merged else 0)
            for h in hours
        )
        key = pages[0] if len(pages) == 1 else ",".join(pages)
        out.append(
            Series("dashboard_load", key, f"Dashboard load time (p75) on {key}", "seconds", range_,
                   s.page_load_slow_seconds, points)
        )
    if "session_failures" in wanted:
        logins = _by_hour(monitor, site, sig.LOGIN, hours, None)
        expiries = _by_hour(monitor, site, sig.SESSION_EXPIRED, hours, None)
        counted = []
        for h in hours:
            login, expired = logins.get(h), expiries.get(h)
            failures = (login.bad if login else 0) + (expired.total if expired else 0)
            total = (login.total if login else 0) + (expired.total if expired else 0)
            counted.append(Point(h, float(failures), total))
        out.append(
            Series("session_failures", "", "Session failures (failed sign-ins and expiries)", "count", range_,
                   None, tuple(counted))
        )
    if "upload_failures" in wanted:
        uploads = _by_hour(monitor, site, sig.UPLOAD, hours, None)
        out.append(
            Series("upload_failures", "", "Upload failure ratio", "ratio", range_,
                   s.upload_failure_ratio, _ratio_points(uploads, hours))
        )
    return out


def format_value(value: float | None, unit: str) -> str:
    """A value as people read it: ``12%``, ``3.4 s``, ``7``; an en dash for none."""
    if value is None:
        return "–"
    if unit == "ratio":
        pct = value * 100
        return f"{pct:.0f}%" if pct >= 10 or pct == 0 else f"{pct:.1f}%"
    if unit == "seconds":
        return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"
    return f"{value:.0f}"


# Drawing -------------------------------------------------------------------------------

WIDTH, HEIGHT = 480, 120
_TOP, _BOTTOM, _LEFT, _RIGHT = 20, 18, 4, 4
_LINE = "#6b9bc3"
_AREA = "#a9c8e2"
_THRESHOLD = "#d9a3a8"
_MUTED = "#8a94a3"
#: A soft outline in the card's colour, so labels stay legible where they cross the curve.
_HALO = 'stroke="#fbfcfd" stroke-width="3" paint-order="stroke" stroke-linejoin="round"'


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _monotone(xs: list[float], ys: list[float]) -> str:
    """A smooth path through the points that never overshoots them (Fritsch-Carlson)."""
    n = len(xs)
    if n == 1:
        return f"M{_n(xs[0])},{_n(ys[0])}"
    d = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(n - 1)]
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


def _runs(points: Sequence[Point]) -> list[list[tuple[int, float]]]:
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, p in enumerate(points):
        if p.value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((i, p.value))
    if current:
        runs.append(current)
    return runs


def _axis_labels(series: Series) -> list[tuple[float, str, str]]:
    if series.range == "24h":
        return [(0.0, "start", "24 h ago"), (0.5, "middle", "12 h"), (1.0, "end", "now")]
    return [(0.0, "start", "7 days ago"), (3 / 7, "middle", "4 days"), (1.0, "end", "now")]


def render_svg(series: Series) -> str:
    """A calm area chart of one series, as an SVG element string (safe to embed in HTML)."""
    points = series.points
    values = [p.value for p in points if p.value is not None]
    peak = max(values, default=0.0)
    top = max(peak, series.threshold or 0.0)
    top = top * 1.15 if top > 0 else 1.0
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    base = _TOP + plot_h
    step = plot_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return _LEFT + i * step

    def y(v: float) -> float:
        return base - (v / top) * plot_h

    latest = next((p.value for p in reversed(points) if p.value is not None), None)
    summary = (
        f"Hourly, {series.range}: peak {format_value(peak if values else None, series.unit)}, "
        f"latest {format_value(latest, series.unit)}."
        if values and series.has_data
        else f"No data recorded in the last {series.range}."
    )
    parts = [
        (
            f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg" '
            f'data-check="{_esc(series.check)}" data-range="{_esc(series.range)}">'
        ),
        f"<title>{_esc(series.title)} — {_esc(series.range)}</title>",
        f"<desc>{_esc(summary)}</desc>",
        (
            f'<line class="trend-base" x1="{_LEFT}" y1="{_n(base)}" x2="{WIDTH - _RIGHT}" y2="{_n(base)}" '
            f'stroke="#dfe4ea" stroke-width="1"/>'
        ),
    ]
    labels: list[str] = []  # drawn last, over the curve
    if series.threshold is not None:
        ty = y(series.threshold)
        parts.append(
            f'<line class="trend-threshold" x1="{_LEFT}" y1="{_n(ty)}" x2="{WIDTH - _RIGHT}" y2="{_n(ty)}" '
            f'stroke="{_THRESHOLD}" stroke-width="1" stroke-dasharray="4 4"/>'
        )
        labels.append(
            f'<text class="trend-label" x="{WIDTH - _RIGHT}" y="{_n(ty - 4)}" text-anchor="end" '
            f'font-size="11" fill="{_MUTED}" {_HALO}>safe line {_esc(format_value(series.threshold, series.unit))}</text>'
        )
    if series.has_data and values:
        for run in _runs(points):
            xs = [x(i) for i, _ in run]
            ys = [y(v) for _, v in run]
            if len(run) == 1:
                parts.append(f'<circle class="trend-dot" cx="{_n(xs[0])}" cy="{_n(ys[0])}" r="2.5" fill="{_LINE}"/>')
                continue
            line = _monotone(xs, ys)
            parts.append(
                f'<path class="trend-area" d="{line}L{_n(xs[-1])},{_n(base)}L{_n(xs[0])},{_n(base)}Z" '
                f'fill="{_AREA}" fill-opacity="0.45" stroke="none"/>'
            )
            parts.append(
                f'<path class="trend-line" d="{line}" fill="none" stroke="{_LINE}" stroke-width="1.75" '
                f'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        labels.append(
            f'<text class="trend-label" x="{_LEFT}" y="13" font-size="11" fill="{_MUTED}" {_HALO}>'
            f"peak {_esc(format_value(peak, series.unit))}</text>"
        )
    else:
        parts.append(
            f'<text class="trend-empty" x="{WIDTH / 2:.0f}" y="{_n(_TOP + plot_h / 2 + 4)}" text-anchor="middle" '
            f'font-size="12" fill="{_MUTED}">No traffic recorded yet</text>'
        )
    parts.extend(labels)
    for frac, anchor, label in _axis_labels(series):
        parts.append(
            f'<text class="trend-axis" x="{_n(_LEFT + frac * plot_w)}" y="{HEIGHT - 5}" text-anchor="{anchor}" '
            f'font-size="11" fill="{_MUTED}">{_esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)

