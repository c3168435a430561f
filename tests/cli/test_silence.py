"""``silence add | list | end`` and ``ack``: quiet for a check, and reminders stopped, from
another process than the one that evaluates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nextmonth_health.store import open_store

from .conftest import Run, one_line_error, usage_error
from .planned import SITE, a_site, watching


def test_silences_added_by_one_process_hold_alerts_in_another_until_lifted(run: Run, shared_store: str) -> None:
    store = shared_store
    a_site(store)
    made = []
    add = ("silence", "add", "--store", store, "--site", SITE, "--reason", "Rob is on it", "--json")
    for check in ("api_errors", "upload_failures"):
        result = run(*add, "--check", check)
        assert result.returncode == 0, result.stderr
        made.append(json.loads(result.stdout))
    assert [(s["check"], s["key"], s["state"]) for s in made] == [
        ("api_errors", None, "running"),
        ("upload_failures", None, "running"),
    ]
    listed = json.loads(run("silence", "list", "--store", store, "--json").stdout)["silences"]
    assert {s["id"] for s in listed} == {s["id"] for s in made}

    with watching(store) as watched:
        watched.fault(300)
        assert any(i.is_open for i in watched.monitor.incidents()), "still recorded and in view"
        assert watched.told() == [], "silenced: nothing pushed"
        [site] = json.loads(run("status", "--store", store, "--json").stdout)["sites"]
        assert site["open_incidents"] and all(i["silenced"] for i in site["open_incidents"])
        assert {s["id"] for s in site["silences"]} == {s["id"] for s in made}
        out = run("status", "--store", store).stdout
        assert "  Silences (2):" in out and "[silenced]" in out

        for silence in made:
            lifted = run("silence", "end", "--store", store, silence["id"][:8])
            assert lifted.returncode == 0, lifted.stderr
            assert lifted.stdout.endswith(
                f"of {silence['check']} on every key at acme-studio is lifted: alerts about it are sent again.\n"
            )
        watched.fault(30)
        assert watched.told() == ["reminded"], "quiet over: told once"
    assert json.loads(run("silence", "list", "--store", store, "--json").stdout)["silences"] == []


def test_a_silence_of_one_key_for_a_while(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    a_site(store)
    result = run(
        "silence",
        "add",
        "--store",
        store,
        "--site",
        SITE,
        "--check",
        "api_errors",
        "--key",
        "/media-upload",
        "--for",
        "45m",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Silenced api_errors on /media-upload at acme-studio."
    assert lines[1].endswith(" UTC (45m)") and lines[-1].startswith("To lift it early: nextmonth-health silence end ")
    table = run("silence", "list", "--store", store).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "SITE", "CHECK", "KEY"]
    assert "  acme-studio  api_errors  /media-upload  " in table[1] and table[1].endswith("running  -")
    [made] = json.loads(run("silence", "list", "--store", store, "--json").stdout)["silences"]
    assert made["key"] == "/media-upload"
    one_line_error(run("silence", "end", "--store", store, "0000"), "no silence has an id starting with '0000'")
    run("silence", "end", "--store", store, made["id"])
    again = run("silence", "end", "--store", store, made["id"])
    assert again.returncode == 0 and "was already over" in again.stdout
    assert made["id"][:8] in run("silence", "list", "--all", "--store", store).stdout


def test_bad_silences_say_what_to_fix(run_all: Any, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    a_site(store)
    add = ("silence", "add", "--store", store, "--site", SITE)
    usage, error = run_all(
        (*add,),
        (*add, "--check", "api_error"),
    )
    usage_error(usage, "Missing option '--check'")
    one_line_error(error, "no check named 'api_error'", "did you mean 'api_errors'?", "plugin")
    refused = run_all(
        (*add, "--check", "api_errors", "--for", "30d"),
        (*add, "--check", "api_errors", "--for", "2 hours"),
    )
    one_line_error(refused[0], "cannot make that silence", "at most a week")
    usage_error(refused[1], "'--for'", "is not a duration")


def test_ack_stops_reminders_in_every_process(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    a_site(store)
    with watching(store, alert_repeat_seconds=600) as watched:
        watched.fault(60)
        assert set(watched.told()) == {"opened"}
        watched.fault(600)
        assert watched.told().count("reminded") == 1, "unacknowledged: reminded"
        told = watched.told()
        [alert] = watched.monitor.alerts()
        folded = next(i.id for i in watched.monitor.incidents() if i.id != alert.incident_id)
        assert folded in alert.incident_ids, "two checks, one area: one alert"
        one_line_error(
            run("ack", "--store", store, "0000"),
            "no alert belongs to an incident whose id starts with '0000'",
        )

        acked = run("ack", "--store", store, folded[:6])
        assert acked.returncode == 0, acked.stderr
        assert acked.stdout.startswith(
            f"Acknowledged the alert {alert.incident_id[:8]} at acme-studio (uploads, 12 people) at "
        )
        assert acked.stdout.rstrip().endswith("no more reminders.")
        watched.fault(1200)
        assert watched.told() == told, "acknowledged elsewhere: no more reminders here"
    again = run("ack", "--store", store, alert.incident_id)
    assert again.returncode == 0 and "was already acknowledged at" in again.stdout
    with open_store(store) as kept:
        assert kept.alerts()[0].acknowledged_at is not None
    [site] = json.loads(run("status", "--store", store, "--json").stdout)["sites"]
    assert site["alerts"][0]["acknowledged"] is True
    assert f"    {alert.incident_id[:8]}  " in run("status", "--store", store).stdout, "ids to ack by"
