"""``status``: per site, the open incidents, the notices users see and the alerts, from the store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

from ..redis_server import RedisServer, redis_db, redis_server  # noqa: F401 (fixtures)
from .conftest import Run, one_line_error


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
    assert result.returncode == 0, result.stderr
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


def test_status_of_one_site_and_from_the_config(run: Run, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'health.db'}"
    record_an_outage(store)
    (tmp_path / "health.toml").write_text(f'store = "{store}"\nsite = "quiet-shop"\n', encoding="utf-8")
    result = run("status", "--json", "--config", "health.toml", "--site", "acme-studio")
    assert [s["site"] for s in json.loads(result.stdout)["sites"]] == ["acme-studio"]
    result = run("status", "--json", env={"NEXTMONTH_HEALTH_STORE": store})
    assert len(json.loads(result.stdout)["sites"]) == 2


def test_status_needs_a_store_that_exists(run: Run, tmp_path: Path) -> None:
    one_line_error(run("status", "--store", f"sqlite:///{tmp_path / 'nope.db'}"), "no store at", "--store")
    assert not (tmp_path / "nope.db").exists(), "status never creates a store"
    one_line_error(run("status", "--store", "memory://"), "memory://")
    one_line_error(run("status"), "no store at")  # the default file in the working directory


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
