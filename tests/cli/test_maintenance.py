"""``maintenance add | list | end``: a window made by one process holds in every other."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from nextmonth_health.store import open_store
from nextmonth_health.values import MaintenanceWindow, timestamp

from .conftest import Run, one_line_error, usage_error
from .planned import SITE, a_site, watching


def add(run: Run, store: str, *args: str) -> dict[str, Any]:
    result = run("maintenance", "add", "--store", store, "--site", SITE, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_window_added_by_one_process_is_listed_by_another_and_honoured_by_a_monitor(
    run: Run, shared_store: str
) -> None:
    store = shared_store
    a_site(store)
    window = add(run, store, "--area", "uploads", "--for", "30m", "--reason", "Deploying v2.3")
    assert window["site"] == SITE and window["area"] == "uploads" and window["state"] == "running"

    listed = run("maintenance", "list", "--store", store, "--json")
    assert [w["id"] for w in json.loads(listed.stdout)["windows"]] == [window["id"]], listed.stderr
    text = run("maintenance", "list", "--store", store).stdout.splitlines()
    assert text[0].split() == ["ID", "SITE", "AREA", "FROM", "(UTC)", "UNTIL", "(UTC)", "STATE", "REASON"]
    assert text[1].startswith(window["id"][:8] + "  acme-studio  uploads") and text[1].endswith(
        "running  Deploying v2.3"
    )

    with watching(store) as watched:
        watched.fault(120)
        incidents = watched.monitor.incidents()
        assert incidents and {i.maintenance_id for i in incidents} == {window["id"]}, "recorded, marked"
        assert watched.told() == [], "nothing pushed during the planned work"
        assert watched.monitor.notices("uploads")[0].kind == "maintenance"

        [site] = json.loads(run("status", "--store", store, "--json").stdout)["sites"]
        assert [w["id"] for w in site["maintenance"]] == [window["id"]]
        assert {i["maintenance_id"] for i in site["open_incidents"]} == {window["id"]}
        assert [n["kind"] for n in site["notices"]] == ["maintenance"]
        assert [a["held"] for a in site["alerts"]] == ["alert not sent (held by maintenance)"]
        out = run("status", "--store", store).stdout
        assert "  Maintenance (1 running, 0 upcoming):" in out and "[during maintenance]" in out
        assert "(active, alert not sent (held by maintenance))" in out, "the alert says why Rob got no email"

        ended = run("maintenance", "end", "--store", store, window["id"][:6])
        assert ended.returncode == 0, ended.stderr
        assert f"Maintenance {window['id'][:8]} at acme-studio ended at " in ended.stdout
        watched.fault(30)
        assert watched.told() == ["reminded"], "the fault outlived the window: told once, as the first alert"
        [site] = json.loads(run("status", "--store", store, "--json").stdout)["sites"]
        assert [a["held"] for a in site["alerts"]] == [None], "told now"
        assert watched.monitor.notices("uploads")[0].kind == "care", "no planned work any more"
    assert json.loads(run("maintenance", "list", "--store", store, "--json").stdout)["windows"] == []
    [gone] = json.loads(run("maintenance", "list", "--all", "--store", store, "--json").stdout)["windows"]
    assert gone["state"] == "ended"


def test_windows_to_come_are_listed_and_cancelled(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    a_site(store)
    a_site(store, "quiet-shop")
    later = add(run, store, "--start", "+1h", "--until", "+2h30m")
    assert later["state"] == "upcoming" and later["area"] is None
    tonight = add(run, store, "--start", "2099-01-05T23:00+01:00", "--for", "1h")
    assert (tonight["starts_at"], tonight["ends_at"]) == (
        "2099-01-05T22:00:00+00:00",
        "2099-01-05T23:00:00+00:00",
    )
    other = run("maintenance", "add", "--store", store, "--site", "quiet-shop", "--for", "1h", "--json")
    assert other.returncode == 0, other.stderr

    mine = json.loads(run("maintenance", "list", "--store", store, "--site", SITE, "--json").stdout)["windows"]
    assert [w["id"] for w in mine] == [later["id"], tonight["id"]], "soonest first, of that site"
    assert len(json.loads(run("maintenance", "list", "--store", store, "--json").stdout)["windows"]) == 3

    cancelled = run("maintenance", "end", "--store", store, later["id"])
    assert cancelled.stdout.startswith(
        f"Maintenance {later['id'][:8]} at acme-studio is cancelled: it was to start at "
    )
    again = run("maintenance", "end", "--store", store, later["id"])
    assert again.returncode == 0 and "was already over (cancelled at" in again.stdout, "ending twice is harmless"
    text = run("maintenance", "list", "--all", "--store", store, "--site", SITE).stdout
    assert "cancelled" in text and "upcoming" in text
    assert run("maintenance", "list", "--store", store, "--site", "nobody").stdout == (
        "No maintenance window is running or to come at nobody (--all shows ended ones).\n"
    )


def test_the_text_says_what_a_window_does(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    a_site(store)
    result = run(
        "maintenance",
        "add",
        "--store",
        store,
        "--site",
        SITE,
        "--for",
        "1h30m",
        "--reason",
        "Database upgrade",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Scheduled maintenance ") and lines[0].endswith(" at acme-studio, the whole site.")
    assert lines[1].startswith("  From:    ") and lines[1].endswith(" UTC (now)")
    assert lines[2].startswith("  Until:   ") and lines[2].endswith(" UTC (1h30m)")
    assert lines[3] == "  Reason:  Database upgrade"
    assert lines[-1] == f"  nextmonth-health maintenance end {lines[0].split()[2]}"


def test_bad_input_says_what_to_fix(run_all: Any, tmp_path: Path) -> None:
    """Spelling mistakes are click's usage errors, naming the option; what the Monitor
    refuses (its rules, tested in tests/test_quiet.py) and unknown names are one line."""
    store = f"sqlite:///{tmp_path / 'health.db'}"
    a_site(store)
    with open_store(store) as kept:  # two ids that share their first four characters
        for n in "12":
            start = timestamp(9e9)
            kept.save_maintenance(
                MaintenanceWindow(
                    id=f"abcd{n}" * 4,
                    site=SITE,
                    starts_at=start,
                    ends_at=start + timedelta(hours=1),
                )
            )
    add = ("maintenance", "add", "--store", store, "--site", SITE)
    usage = {
        ("maintenance", "add", "--store", store, "--for", "1h"): (
            "--site NAME",
            "known: acme-studio",
        ),
        (*add,): ("--for DURATION", "--until WHEN"),
        (*add, "--for", "1h", "--until", "+2h"): ("one of them",),
        (*add, "--for", "90"): ("'--for'", "has no unit: write 90s, 90m"),
        (*add, "--until", "2030-01-05T10:00"): ("'--until'", "has no time zone", "Z", "+01:00"),
    }
    errors = {
        ("maintenance", "add", "--store", store, "--site", "acme-studo", "--for", "1h"): ("no site named 'acme-studo'", "did you mean 'acme-studio'?"),
        (*add, "--for", "8d"): ("cannot schedule that window", "at most a week"),
        (*add, "--until", "2020-01-05T10:00Z"): ("ends before now",),
        ("maintenance", "end", "--store", store, "abc"): ("at least 4 characters",),
        ("maintenance", "end", "--store", store, "ffff"): ("no maintenance window has an id starting with 'ffff'", "list --all"),
        ("maintenance", "end", "--store", store, "abcd"): ("could be any of 2 maintenance windows", "abcd1abc", "abcd2abc", "give more"),
        ("maintenance", "list", "--store", "memory://"): ("memory://", "--store"),
        ("maintenance", "list", "--store", f"sqlite:///{tmp_path / 'nope.db'}"): ("no store at",),
    }  # fmt: skip
    results = run_all(*usage, *errors)
    for (args, needles), result in zip([*usage.items(), *errors.items()], results, strict=True):
        check = usage_error if args in usage else one_line_error
        try:
            check(result, *needles)
        except AssertionError as exc:
            raise AssertionError(f"nextmonth-health {' '.join(args)[:120]}: {exc}") from None
    assert not (tmp_path / "nope.db").exists(), "a mistyped store is never created"
    with open_store(store) as kept:
        assert len(kept.maintenance_windows()) == 2, "nothing was scheduled by a refused command"
