"""With the broken distribution installed, the monitor starts, reports it, and carries on.

Run these in an environment where ``nextmonth-health-broken-example`` is installed (the
repository's ``.ci/plugins`` makes a throwaway one): the plugins are found by the real
``importlib.metadata`` entry-point scan, exactly as a user's broken install would be.
"""

from __future__ import annotations

import importlib.metadata
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


def build(clock: FakeClock, **settings: Any) -> nmh.Monitor:
    # Entry points on: everything installed in this environment is discovered.
    return nmh.Monitor("acme", store="memory://", clock=clock, check_timeout=0.2, **settings)


def failures_by_name(monitor: nmh.Monitor) -> dict[str, Any]:
    return {f.name: f for f in monitor.plugin_failures}


def test_the_distribution_declares_three_entry_points():
    eps = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.dist and ep.dist.name == DIST]
    assert sorted((ep.name, ep.value) for ep in eps) == [
        ("broken_hang", "nextmonth_health_broken_example.hanging_check"),
        ("broken_hook", "nextmonth_health_broken_example.raising_hook"),
        ("broken_import", "nextmonth_health_broken_example.import_error"),
    ]


def test_the_monitor_starts_and_reports_the_import_error_and_the_raising_hook(fake_clock: FakeClock):
    monitor = build(fake_clock)
    failures = failures_by_name(monitor)
    assert set(failures) == {"broken_import", "broken_hook"}
    load, hook = failures["broken_import"], failures["broken_hook"]
    assert (load.where, load.distribution) == ("load", DIST)
    assert load.error == "ImportError: nextmonth_health_broken_example needs 'a_library_that_is_not_installed'"
    assert (hook.where, hook.distribution) == ("register_health_checks", DIST)
    assert hook.error == "RuntimeError: broken_hook could not read its configuration"
    assert set(monitor.status().plugin_failures) == set(monitor.plugin_failures)
    names = [c.name for c in monitor.checks]
    assert BUNDLED_CHECKS | {"broken_hang"} <= set(names)  # the hanging one loads: it only breaks at run time
    assert [s.name for s in monitor.sinks][:2] == ["admin_panel", "log"]


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
    with pytest.raises(ImportError, match="a_library_that_is_not_installed"):
        build(fake_clock, strict_plugins=True)
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", "broken_import")
    with pytest.raises(RuntimeError, match="could not read its configuration"):
        build(fake_clock, strict_plugins=True)


def test_the_block_list_keeps_all_three_out(fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", "broken_import,broken_hook,broken_hang")
    monitor = build(fake_clock)
    assert monitor.plugin_failures == ()
    assert "broken_hang" not in [c.name for c in monitor.checks]


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
        assert set(failures_by_name(monitor)) == {"broken_import", "broken_hook"}
        with anyio.fail_after(5):
            evaluation = await monitor.evaluate()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    [reading] = [r for r in evaluation.readings if r.check == "cdn_delay"]
    assert reading.status is nmh.Health.OK
    assert [f.check for f in evaluation.failures] == ["broken_hang"]
