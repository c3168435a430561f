"""Durations and moments as the operator types them: read, or refused saying what to write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nextmonth_health.cli._when import parse_duration, parse_moment, span

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("90s", 90),
        ("1d", 86_400),
        ("1d2h3m4s", 93_784),
        ("1h 30m", 5400),
        ("2H", 7200),
    ],
)
def test_durations_read_as_written(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(span(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "said"),
    [("90", "has no unit: write 90s, 90m, 90h or 90d"), ("", "30m, 2h, 1h30m, 90s or 1d"),
     ("30m1h", "is not a duration"), ("1.5h", "is not a duration"), ("-5m", "is not a duration")],
)  # fmt: skip
def test_durations_refused_say_what_to_write(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_duration(text)


def test_moments_need_a_zone_or_are_relative_to_now() -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert parse_moment("now", NOW) == start
    assert parse_moment("+30m", NOW) == start + timedelta(minutes=30)
    assert parse_moment("2026-01-05T22:00Z", NOW) == datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    moved = parse_moment("2026-01-05T23:00+01:00", NOW)
    assert moved == datetime(2026, 1, 5, 22, 0, tzinfo=UTC) and moved.tzinfo is UTC
    with pytest.raises(
        ValueError,
        match=r"has no time zone: add Z for UTC .*2026-01-05T22:00:00Z or 2026-01-05T22:00:00\+01:00",
    ):
        parse_moment("2026-01-05T22:00", NOW)
    with pytest.raises(ValueError, match="has no time zone"):
        parse_moment("2026-01-05", NOW)
    with pytest.raises(ValueError, match="not a time: write ISO 8601 with its zone"):
        parse_moment("tomorrow", NOW)
    with pytest.raises(ValueError, match=r"'\+soon' is not a time: after \+ comes a duration"):
        parse_moment("+soon", NOW)
