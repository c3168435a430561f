"""With the broken distribution installed, the monitor starts, reports it, and carries on.

Run these in an environment where ``nextmonth-health-broken-example`` is installed (the
repository's ``.ci/plugins`` makes a throwaway one): the plugins are found by the real
``importlib.metadata`` entry-point scan, exactly as a user's broken install would be.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import anyio
import nextmonth_health as nmh
import pytest
from nextmonth_health.testing import FakeClock

DIST = "nextmonth-health-broken-example"
BUNDLED_CHECKS = {"api_errors", "dashboard_load", "session_failures", "upload_failures"}
ENTRY_POINTS = ("broken_import", "broken_hook", "broken_hang", "broken_typo", "broken_argument", "broken_unmarked")
MODULE = "nextmonth_health_broken_example"
#: What each plugin whose hooks do not fit is reported with: left out whole, before registering.
HOOK_ERRORS = {
    "broken_typo": "'register_health_check' is not a nextmonth_health hook; did you mean 'register_health_checks'?",
    "broken_argument": "register_alert_sinks asks for 'monitr', which the hook does not pass; did you mean 'monitor'?",
    "broken_unmarked": "no hook implementation: 'register_health_checks' is not marked @nextmonth_health.hookimpl",
}


def build(clock: FakeClock, **settings: Any) -> nmh.Monitor:
    # Entry points on: everything installed in this environment is discovered.
    return nmh.Monitor("acme", store="memory://", clock=clock, check_timeout=0.2, **settings)


def failures_by_name(monitor: nmh.Monitor) -> dict[str, Any]:
    return {f.name: f for f in monitor.plugin_failures}


def test_the_distribution_declares_six_entry_points():
    eps = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.dist and ep.dist.name == DIST]
    assert sorted((ep.name, ep.value) for ep in eps) == [
        ("broken_argument", f"{MODULE}.wrong_argument"),
        ("broken_hang", f"{MODULE}.hanging_check"),
        ("broken_hook", f"{MODULE}.raising_hook"),
        ("broken_import", f"{MODULE}.import_error"),
        ("broken_typo", f"{MODULE}.misspelt_hook"),
        ("broken_unmarked", f"{MODULE}.no_hookimpl"),
    ]


def test_the_monitor_starts_and_reports_each_broken_plugin(fake_clock: FakeClock):
    monitor = build(fake_clock)
    failures = failures_by_name(monitor)
    assert set(failures) == {"broken_import", "broken_hook", *HOOK_ERRORS}
    load, hook = failures["broken_import"], failures["broken_hook"]
    assert (load.where, load.distribution, load.entry_point) == ("load", DIST, f"{MODULE}.import_error")
    assert load.error == "ImportError: nextmonth_health_broken_example needs 'a_library_that_is_not_installed'"
    assert (hook.where, hook.distribution, hook.entry_point) == (
        "register_health_checks",
        DIST,
        f"{MODULE}.raising_hook",
    )
    assert hook.error == "RuntimeError: broken_hook could not read its configuration"
    for name, error in HOOK_ERRORS.items():
        failure = failures[name]
        assert (failure.where, failure.distribution, failure.error) == ("hooks", DIST, error)
        assert (
            failure.message
            == f"plugin {name!r} (entry point {name} = {failure.entry_point}, distribution {DIST}): {error}"
        )
        assert monitor.plugin_manager.get_plugin(name) is None  # left out whole
    assert set(monitor.status().plugin_failures) == set(monitor.plugin_failures)
    names = [c.name for c in monitor.checks]
    assert BUNDLED_CHECKS | {"broken_hang"} <= set(names)  # the hanging one loads: it only breaks at run time
    assert [s.name for s in monitor.sinks][:1] == ["log"]


@pytest.mark.anyio
async def test_the_hanging_check_times_out_and_every_other_check_keeps_working(fake_clock: FakeClock):
    monitor = build(fake_clock)
    [hanging] = [c for c in monitor.checks if c.name == "broken_hang"]
    for n in range(12):  # a real problem for a bundled check to find
        monitor.record_request("/media-upload", status=503, duration=0.2, user=f"u-{n}")
    durations, evaluations = [], []
    for _ in range(2):
        started = time.perf_counter()
        with anyio.fail_after(5):
            evaluations.append(await monitor.evaluate())
        durations.append(time.perf_counter() - started)
        fake_clock.advance(15)
    assert all(0.19 <= d < 1.5 for d in durations), durations
    for evaluation in evaluations:
        [failure] = evaluation.failures
        assert (failure.site, failure.check) == ("acme", "broken_hang")
        assert failure.error.startswith("TimeoutError")
        assert BUNDLED_CHECKS <= {r.check for r in evaluation.readings}
        assert "broken_hang" not in {r.check for r in evaluation.readings}
    [opened] = evaluations[0].opened
    assert (opened.incident.check, opened.incident.key, opened.incident.area) == (
        "api_errors",
        "/media-upload",
        "uploads",
    )
    assert monitor.notices("uploads")
    assert (hanging.started, hanging.cancelled) == (2, 2)  # cancelled, not left running
    assert monitor.errors.counts["check.broken_hang"] == 2


def test_strict_mode_raises_the_first_failure(fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch):
    reported = failures_by_name(build(fake_clock))
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", ",".join(HOOK_ERRORS))
    with pytest.raises(ImportError, match="a_library_that_is_not_installed"):
        build(fake_clock, strict_plugins=True)
    for name in HOOK_ERRORS:
        only = {"broken_hang", name}
        monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", ",".join(sorted(set(ENTRY_POINTS) - only)))
        with pytest.raises(nmh.ConfigError) as info:
            build(fake_clock, strict_plugins=True)
        assert str(info.value) == reported[name].message
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", ",".join(["broken_import", *HOOK_ERRORS]))
    with pytest.raises(RuntimeError, match="could not read its configuration"):
        build(fake_clock, strict_plugins=True)


def test_the_block_list_keeps_all_six_out(fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", ",".join(ENTRY_POINTS))
    monitor = build(fake_clock)
    assert monitor.plugin_failures == ()
    assert "broken_hang" not in [c.name for c in monitor.checks]


def test_the_plugins_command_lists_each_broken_one_and_exits_1(tmp_path: Any):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTMONTH_HEALTH_")}
    env["NEXTMONTH_HEALTH_LOAD_PLUGINS"] = ",".join(ENTRY_POINTS)
    version = importlib.metadata.version(DIST)

    def plugins(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nextmonth_health", "plugins", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)

    text = plugins()
    assert text.returncode == 1, text.stderr
    for name, error in HOOK_ERRORS.items():
        ep = importlib.metadata.entry_points(group="nextmonth_health")[name]
        assert (
            f"{name}  installed from {DIST} {version} (entry point {name} = {ep.value})  BROKEN\n"
            f"  error: hooks: {error}\n"
        ) in text.stdout
    assert "Traceback" not in text.stderr
    report = json.loads(plugins("--json").stdout)
    status = {p["name"]: p["status"] for p in report["plugins"]}
    assert {name: status[name] for name in ENTRY_POINTS} == {
        "broken_import": "broken",
        "broken_hook": "broken",
        "broken_hang": "ok",
        "broken_typo": "broken",
        "broken_argument": "broken",
        "broken_unmarked": "broken",
    }
    assert status["nextmonth_health.plugins.api_errors"] == "ok"


class _Assets(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.anyio
async def test_another_installed_plugin_keeps_working_beside_the_broken_one(fake_clock: FakeClock):
    pytest.importorskip("nextmonth_health_cdn", reason="nextmonth-health-cdn is not installed here")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Assets)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/app.js"
        monitor = build(fake_clock, plugin_settings={"cdn": {"urls": [url]}})
        assert set(failures_by_name(monitor)) == {"broken_import", "broken_hook", *HOOK_ERRORS}
        with anyio.fail_after(5):
            evaluation = await monitor.evaluate()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    [reading] = [r for r in evaluation.readings if r.check == "cdn_delay"]
    assert reading.status is nmh.Health.OK
    assert [f.check for f in evaluation.failures] == ["broken_hang"]
