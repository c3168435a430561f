"""Trend series from the store's roll-ups, and the server-drawn SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.web.trends import (
    HEIGHT,
    Point,
    Series,
    Shade,
    format_value,
    render_svg,
    summary,
    trend_series,
)

SVG = "{http://www.w3.org/2000/svg}"
HOUR = 3600


def series(
    values: list[float | None],
    unit: str = "ratio",
    threshold: float | None = 0.25,
    title: str = "API error ratio on /media-upload",
    range_: str = "24h",
    worst: list[float | None] | None = None,
    shades: tuple[Shade, ...] = (),
) -> Series:
    worst = worst or values
    points = tuple(
        Point(int(START) + i * HOUR, HOUR, v, w, 0 if v is None else 10)
        for i, (v, w) in enumerate(zip(values, worst, strict=True))
    )
    return Series("api_errors", "/media-upload", title, unit, range_, threshold, points, "critical line", shades=shades)


def numbers(path: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]


@pytest.fixture
def monitor() -> nmh.Monitor:
    return nmh.Monitor("acme", store="memory://", clock=FakeClock(START - 3 * 86_400), load_entrypoints=False)


def hours_of_traffic(monitor: nmh.Monitor, hours: int) -> None:
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    for hour in range(hours):
        for i in range(10):
            monitor.record_request("/media-upload", 500 if i < hour % 3 else 200, 0.1, user=f"u{i}")
            monitor.record_request("/dashboard", 200, 0.5 + hour % 2, user=f"u{i}")
            monitor.record_upload(i != 0, user=f"u{i}")
            if hour % 24 != 3:  # nobody signs in at 3 in the morning: a gap, not "no failures"
                monitor.record_login(i > 1, user=f"u{i}")
        if hour % 24 != 3:
            monitor.record_session_expired(user="u1")
        monitor.flush()
        clock.advance(HOUR)


def test_series_come_from_the_rollups_hourly_for_the_week(monitor: nmh.Monitor) -> None:
    hours_of_traffic(monitor, 3 * 24)
    week = {(s.check, s.key): s for s in trend_series(monitor, "acme", range_="7d")}
    assert set(week) == {
        ("api_errors", "/media-upload"),
        ("api_errors", "/bookings"),
        ("api_errors", "/portal"),
        ("dashboard_load", "/dashboard"),
        ("session_failures", ""),
        ("upload_failures", ""),
    }
    media = week["api_errors", "/media-upload"]
    now = monitor.clock.now()
    assert len(media.points) == 168 and {p.span for p in media.points} == {HOUR}
    assert media.points[-1].start == int(now) - int(now) % HOUR
    assert media.points[-1].total == 0 and media.points[-1].value is None  # this hour has no traffic yet
    assert [p.value for p in media.points[-4:-1]] == [pytest.approx(v) for v in (0.0, 0.1, 0.2)]
    # The last day still has its five-minute roll-ups: its hours' worst window is known.
    assert media.points[-2].worst == pytest.approx(0.2) and media.points[-30].worst is None
    assert not week["api_errors", "/portal"].has_data
    load = week["dashboard_load", "/dashboard"].points[-3:-1]
    assert [p.value for p in load] == [pytest.approx(0.5, rel=0.03), pytest.approx(1.5, rel=0.03)]  # p75, ~2.5 %
    sessions = week["session_failures", ""]
    assert sessions.unit == "per 5 min" and sessions.threshold is None
    assert sessions.points[-2].value == pytest.approx(3 / 12)  # two failed sign-ins and an expiry in the hour
    quiet_hour = next(p for p in sessions.points if p.total == 0 and p.start > sessions.points[-30].start)
    assert quiet_hour.value is None, "an hour without sign-ins is a gap, not zero failures"
    assert week["upload_failures", ""].points[-2].value == pytest.approx(0.1)
    assert sum(p.total for p in week["upload_failures", ""].points) == 3 * 24 * 10
    with pytest.raises(ValueError, match="range"):
        trend_series(monitor, "acme", range_="1y")
    with pytest.raises(ValueError, match="check"):
        trend_series(monitor, "acme", "cdn_delay")


def test_a_short_spike_is_never_averaged_away(monitor: nmh.Monitor) -> None:
    """Ten minutes of 43 % errors in an hour of 2 %: the hour reads about 8 %, its worst
    five-minute window 43 %, and the day's chart has the five-minute points themselves."""
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    clock.set(START - START % HOUR)
    for minute in range(60):
        bad = 43 if 20 <= minute < 30 else 2
        for i in range(100):
            monitor.record_request("/media-upload", 503 if i < bad else 200, 0.1, user=f"u{i}")
        monitor.flush()
        clock.advance(60)
    clock.advance(60)
    [hour] = [p for p in trend_series(monitor, "acme", "api_errors", "7d")[0].points if p.total]
    assert hour.value == pytest.approx((10 * 43 + 50 * 2) / 6000)
    assert hour.worst == pytest.approx(0.43)
    day = trend_series(monitor, "acme", "api_errors", "24h")[0]
    fine = [p for p in day.points if p.span == 300 and p.total]
    assert len(fine) == 12 and max(p.value for p in fine) == pytest.approx(0.43)
    assert [p.value == p.worst for p in fine] == [True] * 12
    svg = render_svg(day)
    assert "Peak 43% at" in svg


def test_five_minute_detail_goes_as_far_back_as_the_store_keeps_it(monitor: nmh.Monitor) -> None:
    hours_of_traffic(monitor, 30)
    day = trend_series(monitor, "acme", "upload_failures", "24h")[0]
    spans = [p.span for p in day.points]
    # Five-minute roll-ups are kept a day: the chart is five-minute points but for the hour
    # the day's cut falls in.
    assert spans.count(HOUR) <= 1 and spans == sorted(spans, reverse=True) and spans.count(300) >= 23 * 12
    assert ("hourly before" in day.note) == (spans[0] == HOUR)
    longer = nmh.Monitor(
        "acme", store=monitor.store, clock=monitor.clock, load_entrypoints=False, history_seconds=2 * 86_400
    )
    assert {p.span for p in trend_series(longer, "acme", "upload_failures", "24h")[0].points} == {300}


def test_a_chart_is_well_formed_svg_with_units_and_a_summary() -> None:
    svg = render_svg(series([0.0, 0.02, None, 0.5, 0.1, 0.0], worst=[0.0, 0.3, None, 0.5, 0.1, 0.0]))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("width") == "100%" and root.get("height") == str(HEIGHT)
    assert root.find(f"{SVG}title").text == "API error ratio on /media-upload — 24h"
    desc = root.find(f"{SVG}desc").text
    assert desc.startswith("API error ratio on /media-upload, the last 24 hours. Peak 50% at")
    assert "Critical line at 25%." in desc and "1 of 6 points had no traffic (drawn as gaps)." in desc
    areas = root.findall(f".//{SVG}path[@class='trend-area']")
    assert len(areas) == 2  # the gap (an hour without traffic) splits the area
    assert len(root.findall(f".//{SVG}path[@class='trend-worst']")) == 1  # 30 % worst window above a 2 % hour
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "critical line 25%" in labels and "50%" in labels and "now" in labels  # the y axis has units
    assert all(float(t.get("font-size")) >= 11 for t in root.iter(f"{SVG}text")), "readable on a phone"
    assert "style" not in svg and "script" not in svg


def test_incidents_are_shaded_and_titled() -> None:
    shade = Shade("abc", START + 2 * HOUR, START + 3 * HOUR, "critical", "API Errors on /media-upload route")
    root = ET.fromstring(render_svg(series([0.0, 0.1, 0.4, 0.1, 0.0], shades=(shade,))))
    [rect] = root.findall(f".//{SVG}rect[@class='trend-incident']")
    assert rect.get("data-incident") == "abc" and float(rect.get("width")) > 0
    assert rect.find(f"{SVG}title").text.startswith("API Errors on /media-upload route (critical)")
    assert "Incident (critical) shaded from" in root.find(f"{SVG}desc").text


def test_curves_stay_inside_the_plot() -> None:
    svg = render_svg(series([0.0, 1.0, 0.0, 1.0, 0.9, 0.0, 0.0, 0.3], threshold=None))
    plot = ET.fromstring(svg).find(f"{SVG}svg")
    assert plot.get("viewBox") == "0 0 1000 100" and plot.get("preserveAspectRatio") == "none"
    for path in plot.iter(f"{SVG}path"):
        coords = numbers(path.get("d") or "")
        xs, ys = coords[0::2], coords[1::2]
        assert min(xs) >= 0 and max(xs) <= 1000
        assert min(ys) >= 0 and max(ys) <= 100  # monotone interpolation never overshoots


def test_text_is_escaped() -> None:
    svg = render_svg(series([0.1, 0.2], title='<script>alert(1)</script> & "quotes"'))
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in svg
    assert ET.fromstring(svg).find(f"{SVG}title").text.startswith('<script>alert(1)</script> & "quotes"')


def test_an_empty_series_says_so() -> None:
    svg = render_svg(series([None] * 24))
    assert "No traffic recorded yet" in svg and "trend-area" not in svg
    assert "no traffic recorded in the last 24 hours." in svg


def test_a_lone_point_is_a_dot_with_axes_around_it() -> None:
    lone = series([None] * 167 + [1.0], range_="7d")
    svg = render_svg(lone)
    assert 'class="trend-dot"' in svg and ">100%</text>" in svg and ">now</text>" in svg
    assert "Latest 100%." in summary(lone)


def test_values_read_like_words() -> None:
    assert format_value(None, "ratio") == "–"
    assert [format_value(v, "ratio") for v in (0, 0.004, 0.1, 0.256)] == ["0%", "0.4%", "10%", "26%"]
    assert [format_value(v, "seconds") for v in (0.25, 3.41)] == ["0.25 s", "3.4 s"]
    assert [format_value(v, "per 5 min") for v in (7.0, 0.25, 12.5)] == ["7", "0.2", "12"]
