"""``status``: per site, the open incidents, the notices users see and the alerts, from the store."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import anyio

import nextmonth_health as nmh
from nextmonth_health.store import open_store
from nextmonth_health.testing import FakeClock
from nextmonth_health.values import timestamp

from ..redis_server import RedisServer
from .conftest import Run, cli_env, one_line_error


def record_an_outage(store: str) -> None:
    """A web worker whose uploads fail for twelve people, and one evaluation pass."""
    monitor = nmh.Monitor("acme-studio", store=store, clock=FakeClock(), load_entrypoints=False)
    for n in range(12):
        monitor.record_request("/media-upload", status=503, duration=0.3, user=f"u-{n}")
        monitor.record_upload(ok=False, user=f"u-{n}")
    monitor.record_request("/portal", status=200, duration=0.1, user="u-1", site="quiet-shop")
    anyio.run(monitor.evaluate)
    monitor.store.close()


def test_status_shows_open_incidents_notices_and_alerts(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)
    result = run("status", "--store", store, "--json")
    assert result.returncode == 2, result.stderr  # critical incidents are open
    report = json.loads(result.stdout)
    assert report["store"] == store and report["store_caveats"] == []
    sites = {s["site"]: s for s in report["sites"]}
    assert set(sites) == {"acme-studio", "quiet-shop"}
    acme = sites["acme-studio"]
    assert {i["check"] for i in acme["open_incidents"]} == {"api_errors", "upload_failures"}
    assert all(i["severity"] == "critical" and i["affected_users"] == 12 for i in acme["open_incidents"])
    assert [n["area"] for n in acme["notices"]] == ["uploads"] and acme["notices"][0]["title"]
    assert len(acme["alerts"]) == 1 and "Impact detected for 12 users" in acme["alerts"][0]["message"]
    assert acme["alerts"][0]["active"] and not acme["alerts"][0]["acknowledged"]
    assert acme["last_evaluation"].startswith("2026-01-05T09:00:00") and report["last_evaluation_known"] is True
    assert sites["quiet-shop"]["open_incidents"] == []


def test_status_text(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)
    out = run("status", "--store", store).stdout
    assert "acme-studio   last evaluation: 2026-01-05 09:00:00 UTC" in out
    assert "Open incidents (2):" in out and "Notices users see:" in out
    assert "Alerts (1 active, 1 unread, 0 resolved):" in out
    assert "quiet-shop" in out and "All well: no open incidents." in out
    assert out.rstrip().endswith("State: critical (exit status 2)")  # not the last alert's state


def test_status_of_one_site_and_from_the_config(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)
    (tmp_path / "health.toml").write_text(f'store = "{store}"\nsite = "quiet-shop"\n', encoding="utf-8")
    result = run("status", "--json", "--config", "health.toml", "--site", "acme-studio")
    assert [s["site"] for s in json.loads(result.stdout)["sites"]] == ["acme-studio"]
    result = run("status", "--json", env={"NEXTMONTH_HEALTH_STORE": store})
    assert len(json.loads(result.stdout)["sites"]) == 2


def test_status_needs_a_store_that_exists(run: Run, tmp_path: Path) -> None:
    """Cannot tell: exit 3, Nagios's UNKNOWN (2 would read as critical)."""
    one_line_error(run("status", "--store", f"sqlite:///{tmp_path / 'nope.db'}"), "no store at", "--store", code=3)
    assert not (tmp_path / "nope.db").exists(), "status never creates a store"
    one_line_error(run("status", "--store", "memory://"), "memory://", code=3)
    one_line_error(run("status"), "no store at", code=3)  # the default file in the working directory
    one_line_error(run("status", "--store", "nope://x"), "nope", code=3)
    (tmp_path / "garbage.db").write_bytes(b"this is not a database, just words " * 100)
    one_line_error(run("status", "--store", f"sqlite:///{tmp_path / 'garbage.db'}"), "garbage.db", code=3)
    assert run("status", "--no-such-option").returncode == 3


def an_incident(store: str, severity: str) -> None:
    """An open upload incident of ``severity`` in the store, as the evaluator saves one."""
    opened = timestamp(FakeClock().now())
    with open_store(store) as kept:
        kept.save_incident(
            nmh.Incident(
                id=f"inc-{severity}", site="acme-studio", check="upload_failures", area="uploads", key="",
                severity=severity, status="open", affected_users=12, opened_at=opened,
                summary="Media upload failures", updated_at=opened,
            )
        )  # fmt: skip


def test_status_exit_codes_follow_the_nagios_convention(run: Run, tmp_path: Path) -> None:
    calm = f"sqlite:///{tmp_path / 'calm.db'}"
    monitor = nmh.Monitor("acme-studio", store=calm, clock=FakeClock(), load_entrypoints=False)
    monitor.record_request("/portal", status=200, duration=0.1, user="u-1")
    anyio.run(monitor.evaluate)
    monitor.store.close()
    result = run("status", "--store", calm)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("State: calm (exit status 0)")

    degraded = f"sqlite:///{tmp_path / 'degraded.db'}"
    an_incident(degraded, "degraded")
    result = run("status", "--store", degraded, "--json")
    assert (result.returncode, json.loads(result.stdout)["state"]) == (1, "degraded"), result.stderr

    critical = f"sqlite:///{tmp_path / 'critical.db'}"
    an_incident(critical, "critical")
    assert run("status", "--store", critical).returncode == 2
    assert json.loads(run("status", "--store", critical, "--json").stdout)["state"] == "critical"
    assert run("status", "--store", critical, "--site", "another-site").returncode == 0  # only that site counts

    help_text = run("status", "--help").stdout
    for line in ("0  calm", "1  a degraded incident is open", "2  a critical incident is open", "3  unknown"):
        assert line in help_text, help_text


def run_in_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """What the command writes to a terminal (a pseudo-terminal: colours are on there)."""
    parent, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "nextmonth_health", *args], cwd=cwd, env=cli_env(env), stdout=child, stderr=child
        )
        os.close(child)
        out = b""
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
        process.wait(timeout=60)
    finally:
        os.close(parent)
    return out.decode("utf-8", "replace")


def test_status_honours_no_color(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)
    coloured = run_in_a_terminal(["status", "--store", store], tmp_path, {})
    assert "\x1b[" in coloured and "acme-studio" in coloured
    plain = run_in_a_terminal(["status", "--store", store], tmp_path, {"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "acme-studio" in plain
    assert "\x1b[" in run_in_a_terminal(["status", "--store", store], tmp_path, {"NO_COLOR": ""})  # empty: not set


def test_status_says_how_a_redis_may_lose_incidents(run: Run, redis_db: RedisServer) -> None:
    store = redis_db.url()
    record_an_outage(store)
    out = run("status", "--store", store).stdout
    assert f"Store: {store}\n  Caveat: Redis at {store} keeps nothing on disk" in out
    assert "acme-studio" in out


def test_status_says_when_a_site_is_still_learning(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)  # months ago: nothing recent, nothing to learn from
    monitor = nmh.Monitor("new-shop", store=store, clock=FakeClock(time.time() - 60), load_entrypoints=False)
    for n in range(20):
        monitor.record_request("/portal", status=200, duration=0.1, user=f"u-{n}")
    monitor.flush()
    monitor.store.close()
    sites = {s["site"]: s for s in json.loads(run("status", "--store", store, "--json").stdout)["sites"]}
    assert sites["new-shop"]["learning"] is True and sites["acme-studio"]["learning"] is False
    out = run("status", "--store", store).stdout
    assert out.count("Learning what normal looks like") == 1


def test_status_shows_maintenance_and_silences_not_over_yet(run: Run, tmp_path: Path) -> None:
    """Why an open incident pages nobody, next to it: the window it happened in, or a silence."""
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)
    monitor = nmh.Monitor("acme-studio", store=store, load_entrypoints=False)
    now = timestamp(monitor.clock.now())
    running = monitor.schedule_maintenance(duration=1800, area="uploads", reason="Deploying v2.3")
    upcoming = monitor.schedule_maintenance(start=now + timedelta(hours=3), duration=3600)
    ended = monitor.schedule_maintenance(duration=600)
    monitor.end_maintenance(ended.id)
    silence = monitor.silence("api_errors", "/media-upload", reason="Rob is on it")
    monitor.store.close()

    sites = {s["site"]: s for s in json.loads(run("status", "--store", store, "--json").stdout)["sites"]}
    acme = sites["acme-studio"]
    assert [(w["id"], w["state"]) for w in acme["maintenance"]] == [(running.id, "running"), (upcoming.id, "upcoming")]
    assert [(s["id"], s["check"], s["key"]) for s in acme["silences"]] == [(silence.id, "api_errors", "/media-upload")]
    silenced = {i["check"]: i["silenced"] for i in acme["open_incidents"]}
    assert silenced == {"api_errors": True, "upload_failures": False}
    assert sites["quiet-shop"]["maintenance"] == [] and sites["quiet-shop"]["silences"] == []

    out = run("status", "--store", store).stdout
    lines = out.splitlines()
    at = lines.index("  Maintenance (1 running, 1 upcoming):")
    first, second = lines[at + 1], lines[at + 2]
    assert first.startswith(f"    {running.id[:8]}  running   uploads     from ") and first.endswith(
        " UTC  Deploying v2.3"
    )
    assert second.startswith(f"    {upcoming.id[:8]}  upcoming  whole site  from ")
    assert first.index(" until ") == second.index(" until "), "aligned"
    assert lines[at + 3] == "  Silences (1):"
    assert lines[at + 4].startswith(f"    {silence.id[:8]}  api_errors  /media-upload  until ")
    assert lines[at + 4].endswith(" UTC  Rob is on it")
    assert out.count("[silenced]") == 1
