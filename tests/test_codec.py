"""One JSON shape for the value types: every field out and back, whatever its value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nextmonth_health.codec import VALUE_TYPES, from_dict, to_dict
from nextmonth_health.values import (
    Alert,
    Health,
    Incident,
    IncidentStatus,
    MaintenanceWindow,
    Notice,
    Reading,
    Severity,
    Silence,
    Transition,
    TransitionKind,
)

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
)
text = st.text(max_size=30)
ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=32)
maybe_moment = st.none() | moments
numbers = st.none() | st.floats(allow_nan=False, allow_infinity=False)

incidents = st.builds(
    Incident,
    id=ids,
    site=text,
    check=text,
    area=text,
    key=text,
    severity=st.sampled_from(Severity),
    status=st.sampled_from(IncidentStatus),
    affected_users=st.integers(0, 10**6),
    opened_at=moments,
    summary=text,
    updated_at=moments,
    resolved_at=maybe_moment,
    escalated_at=maybe_moment,
    recovering_since=maybe_moment,
    value=numbers,
    threshold=numbers,
    alert_id=st.none() | ids,
    affected_now=st.integers(0, 10**6),
    maintenance_id=st.none() | ids,
)
alerts = st.builds(
    Alert,
    incident_id=ids,
    site=text,
    message=text,
    created_at=moments,
    updated_at=moments,
    check=text,
    key=text,
    area=text,
    affected_users=st.integers(0, 10**6),
    resolved_at=maybe_moment,
    acknowledged_at=maybe_moment,
    incident_ids=st.lists(ids, max_size=4).map(tuple),
    notified_at=maybe_moment,
    reminders=st.integers(0, 99),
)
transitions = st.builds(
    Transition,
    kind=st.sampled_from(TransitionKind),
    incident=incidents,
    previous=st.none() | incidents,
    alert=st.none() | alerts,
    quiet=st.booleans(),
    muted=st.none() | st.sampled_from(["maintenance", "silence"]),
)
windows = st.builds(
    MaintenanceWindow,
    id=ids,
    site=text,
    starts_at=moments,
    ends_at=moments,
    reason=text,
    area=st.none() | text,
    created_at=maybe_moment,
)
silences = st.builds(
    Silence,
    id=ids,
    site=text,
    check=text,
    starts_at=moments,
    ends_at=moments,
    key=st.none() | text,
    reason=text,
    created_at=maybe_moment,
)
notices = st.builds(
    Notice,
    area=text,
    site=text,
    title=text,
    message=text,
    severity=st.sampled_from(Severity),
    kind=st.sampled_from(["care", "maintenance"]),
)
readings = st.builds(
    Reading,
    check=text,
    site=text,
    key=text,
    area=text,
    status=st.sampled_from(Health),
    subject=text,
    value=numbers,
    threshold=numbers,
    affected_users=st.integers(0, 10**6),
    detail=st.dictionaries(text, st.integers() | text | st.booleans(), max_size=3),
    affected_now=st.none() | st.integers(0, 99),
)
values = st.one_of(incidents, alerts, transitions, windows, silences, notices, readings)


@given(values)
def test_every_value_goes_out_as_json_and_comes_back_equal(value: object) -> None:
    wire = json.loads(json.dumps(to_dict(value)))
    back = from_dict(type(value), wire)
    assert back == value


def test_every_value_type_is_covered() -> None:
    assert set(VALUE_TYPES) == {Alert, Incident, MaintenanceWindow, Notice, Reading, Silence, Transition}


def test_datetimes_go_out_in_utc_and_enums_as_their_values() -> None:
    at = datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    alert = Alert(incident_id="i1", site="s", message="m", created_at=at, updated_at=at, incident_ids=("i1", "i2"))
    body = to_dict(Transition(kind=TransitionKind.REMINDED, incident=incident_at(at), alert=alert))
    assert body["kind"] == "reminded" and body["alert"]["created_at"] == "2026-01-05T09:00:00+00:00"
    assert body["alert"]["incident_ids"] == ["i1", "i2"] and body["incident"]["severity"] == "critical"


def test_older_and_newer_data_still_reads() -> None:
    """Missing keys take their defaults; keys this version does not know are left aside."""
    stored = to_dict(incident_at(datetime(2026, 1, 5, tzinfo=UTC)))
    del stored["maintenance_id"], stored["affected_now"]
    stored["a_field_from_the_future"] = 1
    back = from_dict(Incident, stored)
    assert back.maintenance_id is None and back.affected_now == 0
    with pytest.raises(ValueError, match="Incident"):
        from_dict(Incident, {"id": "i1"})


def incident_at(at: datetime) -> Incident:
    return Incident(
        id="i1",
        site="s",
        check="api_errors",
        area="uploads",
        key="/media-upload",
        severity="critical",
        status="open",
        affected_users=12,
        opened_at=at,
        summary="API Errors",
        updated_at=at,
    )


@given(values)
def test_times_as_unix_seconds_come_back_equal_too(value: object) -> None:
    """The Redis store's shape: the same, with times its scripts can compare."""
    wire = json.loads(json.dumps(to_dict(value, epoch=True)))
    assert from_dict(type(value), wire) == value
