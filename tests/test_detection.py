"""A fast slice of the detection benchmark (``benchmarks/detection.py``): a quiet day opens
nothing, and each check finds its outage quickly, counts the people it hurt and resolves.

The traffic is the benchmark's own (Poisson arrivals over 400 people, everyday failure
rates, simulated seconds through the real ``record_*`` calls and the real monitor), so
what holds here holds for the numbers the benchmark reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from detection import OUTAGES, Outage, quiet, score_outages

#: One outage per check, the retry storm and the whole-site outage.
SLICE = {
    "5xx 40 % /media-upload @ 0.5/s",
    "uploads 60 % failing @ 0.25/s",
    "dashboard p75 9 s @ 0.5/s",
    "sign-in broken @ 0.25/s",
    "expiry storm x10 @ 4/s",
    "whole site 502, night (0.02/s a route)",
    "one client retrying 30/s on /bookings",
}


def test_a_quiet_day_from_an_empty_store_opens_nothing_at_two_levels() -> None:
    result = quiet(1.0, ["typical", "rough"], sizes=("tiny", "medium"))
    assert result["events"] > 500_000
    for name, site in result["sites"].items():
        assert site["incidents"] == [], name


@pytest.fixture(scope="module")
def outages() -> dict[str, dict]:
    chosen = [o for o in OUTAGES if o.name in SLICE]
    assert len(chosen) == len(SLICE)
    scored = score_outages(1, chosen)["outages"]
    return {name: rows[0] for name, rows in scored.items()}


@pytest.mark.parametrize("outage", [o for o in OUTAGES if o.name in SLICE], ids=lambda o: o.name)
def test_each_outage_is_noticed_counted_and_resolved(outages: dict[str, dict], outage: Outage) -> None:
    row = outages[outage.name]
    assert row["false_before"] == 0 and row["other"] == [], row
    assert "notice" in row, f"{outage.name} was never noticed"
    assert row["notice"] <= (300 if outage.name.startswith("whole") else 180), row
    assert row["resolve"] is not None and row["resolve"] <= 600, row
    if outage.alert:
        assert row["alert"] is not None and row["alert"] <= 180, row
    elif outage.alert is False:
        assert row["alert"] is None, "one client's storm never pages anyone"
    if outage.count_people:
        assert abs(row["counted"] - row["truth"]) <= 0.05 * row["truth"], row


def test_a_sharp_api_outage_is_on_the_notice_within_a_minute(outages: dict[str, dict]) -> None:
    row = outages["5xx 40 % /media-upload @ 0.5/s"]
    assert row["notice"] <= 60 and row["alert"] <= 180, row
