"""Trend series from hourly roll-ups, and the server-drawn SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import nextmonth_health as nmh
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.web.trends import (
    HEIGHT,
    WIDTH,
    Point,
    Series,
    format_value,
    render_svg,
    trend_series,
)

SVG = "{http://www.w3.org/2000/svg}"
HOUR = 3600


def series(values: list[float | None], unit: str = "ratio", threshold: float | None = 0.25, title: str = "API error ratio on /media-upload", range_: str = "24h") -> Series:
    points = tuple(Point(int(START) + i * HOUR, v, 0 if v is None else 10) for i, v in enumerate(values))
    return Series("api_errors", "/media-upload", title, unit, range_, threshold, points)


def numbers(path: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path)]


@pytest.fixture
def monitor() -> nmh.Monitor:
    return nmh.Monitor("acme", store="memory://", clock=FakeClock(START - 3 * 86_400), load_entrypoints=False)


def test_series_come_from_the_hourly_rollups(monitor: nmh.Monitor) -> None:
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    for hour in range(3 * 24):
        for i in range(10):
            monitor.record_request("/media-upload", 500 if i < hour % 3 else 200, 0.1, user=f"u{i}")
            monitor.record_request("/dashboard", 200, 0.5 + hour % 2, user=f"u{i}")
            monitor.record_upload(i != 0, user=f"u{i}")
            monitor.record_login(i > 1, user=f"u{i}")
        monitor.record_session_expired(user="u1")
        monitor.flush()
        clock.advance(HOUR)
    day = {(s.check, s.key): s for s in trend_series(monitor, "acme", range_="24h")}
    assert set(day) == {
        ("api_errors", "/media-upload"), ("api_errors", "/bookings"), ("api_errors", "/portal"),
        ("dashboard_load", "/dashboard"), ("session_failures", ""), ("upload_failures", ""),
    }
    media = day["api_errors", "/media-upload"]
    assert len(media.points) == 24 and media.points[-1].start == int(clock.now()) - int(clock.now()) % HOUR
    assert media.points[-1].total == 0 and media.points[-1].value is None  # this hour has no traffic yet
    assert [p.value for p in media.points[-4:-1]] == [pytest.approx(v) for v in (0.0, 0.1, 0.2)]
    assert not day["api_errors", "/portal"].has_data
    load = day["dashboard_load", "/dashboard"].points[-3:-1]
    assert [p.value for p in load] == [pytest.approx(0.5, rel=0.03), pytest.approx(1.5, rel=0.03)]  # p75, ~2.5 %
    assert day["session_failures", ""].points[-2].value == 3  # two failed sign-ins and an expiry
    assert day["upload_failures", ""].points[-2].value == pytest.approx(0.1)
    week = trend_series(monitor, "acme", "upload_failures", "7d")
    assert [s.check for s in week] == ["upload_failures"] and len(week[0].points) == 168
    assert sum(p.total for p in week[0].points) == 3 * 24 * 10
    with pytest.raises(ValueError, match="range"):
        trend_series(monitor, "acme", range_="1y")
    with pytest.raises(ValueError, match="check"):
        trend_series(monitor, "acme", "cdn_delay")


def test_a_chart_is_well_formed_svg_with_a_title() -> None:
    svg = render_svg(series([0.0, 0.02, None, 0.5, 0.1, 0.0]))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}" and root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "API error ratio on /media-upload — 24h"
    assert root.find(f"{SVG}desc").text == "Hourly, 24h: peak 50%, latest 0%."
    areas = root.findall(f"{SVG}path[@class='trend-area']")
    assert len(areas) == 2  # the gap (an hour without traffic) splits the area
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "safe line 25%" in labels and "peak 50%" in labels and labels[-3:] == ["24 h ago", "12 h", "now"]
    assert "style" not in svg and "script" not in svg


def test_curves_stay_inside_the_plot() -> None:
    svg = render_svg(series([0.0, 1.0, 0.0, 1.0, 0.9, 0.0, 0.0, 0.3], threshold=None))
    for path in ET.fromstring(svg).iter(f"{SVG}path"):
        coords = numbers(path.get("d") or "")
        xs, ys = coords[0::2], coords[1::2]
        assert min(xs) >= 0 and max(xs) <= WIDTH
        assert min(ys) >= 0 and max(ys) <= HEIGHT  # monotone interpolation never overshoots


def test_text_is_escaped() -> None:
    svg = render_svg(series([0.1, 0.2], title='<script>alert(1)</script> & "quotes"'))
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in svg
    assert ET.fromstring(svg).find(f"{SVG}title").text.startswith('<script>alert(1)</script> & "quotes"')


def test_an_empty_series_says_so() -> None:
    svg = render_svg(series([None] * 24))
    assert "No traffic recorded yet" in svg and "trend-area" not in svg
    assert "No data recorded in the last 24h." in svg


def test_a_lone_hour_is_a_dot_and_the_week_has_its_own_axis() -> None:
    svg = render_svg(series([None] * 167 + [1.0], range_="7d"))
    assert 'class="trend-dot"' in svg and "7 days ago" in svg


def test_values_read_like_words() -> None:
    assert format_value(None, "ratio") == "–"
    assert [format_value(v, "ratio") for v in (0, 0.004, 0.1, 0.256)] == ["0%", "0.4%", "10%", "26%"]
    assert [format_value(v, "seconds") for v in (0.25, 3.41)] == ["0.25 s", "3.4 s"]
    assert format_value(7.0, "count") == "7"
