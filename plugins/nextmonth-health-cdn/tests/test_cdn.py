"""nextmonth-health-cdn, installed: discovery through its entry point, then real fetches.

The asset server is a real HTTP server on 127.0.0.1 (conftest.py) with injected delays
and statuses; latencies are real and small. The monitor's clock is a ``FakeClock``, moved
by the probe interval between passes so the check is due on every one.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import anyio
import anyio.abc
import nextmonth_health as nmh
import pytest
from nextmonth_health.testing import FakeClock, run_passes

import nextmonth_health_cdn
from nextmonth_health_cdn import CdnCheck, Sample, judge, p95

pytestmark = pytest.mark.anyio

INTERVAL = 30.0
# Latency margins wide enough for a loaded 2-CPU CI machine, where a loopback fetch can
# take a few hundred milliseconds: a slow asset answers after DELAY, slow is above SLOW,
# and a fetch under RECOVERY is healthy.
DELAY, SLOW, RECOVERY = 0.5, 0.35, 0.25


def cdn_settings(*urls: Any, **options: Any) -> dict[str, Any]:
    return {
        "urls": list(urls),
        "interval": INTERVAL,
        "timeout": 1.0,
        "slow_seconds": SLOW,
        "recovery_seconds": RECOVERY,
        "history": 5,
        "min_probes": 3,
        **options,
    }


def build(clock: FakeClock, *, entrypoints: bool = False, **settings: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme",
        store="memory://",
        clock=clock,
        plugins=() if entrypoints else [nextmonth_health_cdn],
        load_entrypoints=entrypoints,
        **settings,
    )


def cdn_check(monitor: nmh.Monitor) -> CdnCheck:
    [check] = [c for c in monitor.checks if c.name == "cdn_delay"]
    assert isinstance(check, CdnCheck)
    return check


#: Judgement over several slow passes is the same on both backends; fetching and
#: cancelling is what differs, and the other tests cover that on both.
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def cdn_readings(evaluation: nmh.Evaluation) -> list[nmh.Reading]:
    return [r for r in evaluation.readings if r.check == "cdn_delay"]


# Discovery and settings.


@pytest.fixture
def only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", "cdn")
    monkeypatch.delenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", raising=False)


def test_the_distribution_declares_its_entry_point():
    [ep] = [ep for ep in importlib.metadata.entry_points(group="nextmonth_health") if ep.name == "cdn"]
    assert ep.value == "nextmonth_health_cdn"
    assert ep.dist is not None and ep.dist.name == "nextmonth-health-cdn"


@pytest.mark.usefixtures("only_this_plugin")
def test_an_installed_monitor_discovers_the_check(fake_clock: FakeClock, http_receiver):
    monitor = build(fake_clock, entrypoints=True, plugin_settings={"cdn": cdn_settings(http_receiver.url("/app.js"))})
    assert monitor.plugin_failures == ()
    assert monitor.plugin_manager.get_plugin("cdn") is nextmonth_health_cdn
    check = cdn_check(monitor)
    assert (check.interval, check.timeout) == (INTERVAL, 3.0)


@pytest.mark.usefixtures("only_this_plugin")
def test_with_no_settings_the_plugin_registers_nothing(fake_clock: FakeClock):
    monitor = build(fake_clock, entrypoints=True)
    assert monitor.plugin_manager.get_plugin("cdn") is nextmonth_health_cdn
    assert "cdn_delay" not in [c.name for c in monitor.checks]
    assert monitor.plugin_failures == ()


@pytest.mark.usefixtures("only_this_plugin")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"urls": ["ftp://assets.example.com/a.js"]}, r"is not an http\(s\) URL with a host"),
        ({"urls": []}, "must list at least one asset URL"),
        ({"urls": ["https://a.example.com/x.js"], "timout": 2}, "unknown option 'timout'; did you mean 'timeout'"),
        ({"urls": ["https://a.example.com/x.js"], "slow_seconds": 5, "timeout": 2}, "slow_seconds < timeout"),
        ({"urls": ["https://a.example.com/x.js"], "interval": -1}, "interval must be a positive number"),
        ({"urls": [{"url": "https://a.example.com/x.js", "area": ""}]}, "must be a non-empty string"),
    ],
)
def test_bad_settings_are_reported_at_start_up(fake_clock: FakeClock, options: dict[str, Any], message: str):
    monitor = build(fake_clock, entrypoints=True, plugin_settings={"cdn": options})
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "cdn",
        "register_health_checks",
        "nextmonth-health-cdn",
    )
    assert failure.error.startswith("ConfigError: plugin_settings['cdn']")
    assert re.search(message, failure.error)
    assert "cdn_delay" not in [c.name for c in monitor.checks]  # and the bundled checks are all there
    with pytest.raises(nmh.ConfigError, match=message):
        build(fake_clock, entrypoints=True, strict_plugins=True, plugin_settings={"cdn": options})


def test_a_site_without_settings_gets_no_readings(fake_clock: FakeClock, http_receiver):
    monitor = build(fake_clock, sites={"other": {"plugin_settings": {"cdn": cdn_settings(http_receiver.url("/o.js"))}}})
    check = cdn_check(monitor)
    assert check.config_for("acme") is None
    assert check.config_for("other") is not None


# Behaviour against the asset server.


async def test_a_fast_asset_reads_ok_with_a_key_that_keeps_no_secrets(fake_clock, http_receiver, internal_errors):
    url = http_receiver.url("/static/app.js?token=s3cret#frag").replace("http://", "http://user:pw@")
    monitor = build(fake_clock, plugin_settings={"cdn": cdn_settings(url)})
    internal_errors(monitor)
    [evaluation] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    [reading] = cdn_readings(evaluation)
    assert reading.key == f"{http_receiver.netloc}/static/app.js"
    assert "s3cret" not in repr(reading) and "pw" not in reading.key
    assert (reading.status, reading.area, reading.site) == (nmh.Health.OK, "portal", "acme")
    assert reading.subject == f"CDN delays on {http_receiver.netloc}"
    assert reading.value is not None and reading.value < RECOVERY
    assert dict(reading.detail) == {"probes": 1, "failures": 0, "timeouts": 0, "last": "200"}
    assert http_receiver.hits == {"/static/app.js": 1}


@asyncio_only
async def test_slow_assets_open_a_degraded_incident_for_their_area(fake_clock, http_receiver, internal_errors):
    http_receiver.route("/img/logo.png", delay=DELAY)
    settings = cdn_settings(
        http_receiver.url("/app.js"), {"url": http_receiver.url("/img/logo.png"), "area": "bookings"}
    )
    monitor = build(fake_clock, plugin_settings={"cdn": settings})
    internal_errors(monitor)
    for n in range(3):
        monitor.record_page_load("/bookings/calendar", seconds=1.0, user=f"u-{n}")
        monitor.record_request("/portal/home", status=200, duration=0.1, user="portal-only")
    first, second, third = (await run_passes(monitor, 3, tick=INTERVAL)).evaluations
    assert {r.key.split("/", 1)[1]: r.status for r in cdn_readings(first)} == {
        "app.js": "ok",
        "img/logo.png": "elevated",
    }
    assert not first.opened and not second.opened  # two fetches are not yet min_probes
    [opened] = third.opened
    incident = opened.incident
    assert (incident.check, incident.area, incident.severity) == ("cdn_delay", "bookings", "degraded")
    assert incident.key == f"{http_receiver.netloc}/img/logo.png"
    assert incident.summary == f"CDN delays on {http_receiver.netloc}"
    assert incident.affected_users == 3  # the users active in the bookings area
    assert incident.threshold == SLOW and incident.value is not None and incident.value >= DELAY
    assert monitor.notices("bookings") and not monitor.notices("portal")


@asyncio_only
async def test_one_slow_fetch_is_elevated_and_opens_nothing(fake_clock, http_receiver, internal_errors):
    monitor = build(fake_clock, plugin_settings={"cdn": cdn_settings(http_receiver.url("/app.js"))})
    internal_errors(monitor)
    await run_passes(monitor, 3, tick=INTERVAL)
    http_receiver.route("/app.js", delay=DELAY)
    [blip] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    http_receiver.route("/app.js", delay=0.0)
    after = (await run_passes(monitor, 2, tick=INTERVAL)).evaluations
    assert [r.status for e in [blip, *after] for r in cdn_readings(e)] == ["elevated"] * 3
    assert monitor.incidents() == []


async def test_a_hung_cdn_reads_slow_and_never_stalls_the_pass(fake_clock, http_receiver, internal_errors, stopwatch):
    http_receiver.route("/hangs.js", delay=30.0)  # released at teardown
    monitor = build(
        fake_clock,
        plugin_settings={"cdn": cdn_settings(http_receiver.url("/hangs.js"), http_receiver.url("/ok.js"), timeout=0.5)},
    )
    internal_errors(monitor)
    durations = []
    evaluations = []
    for _ in range(3):
        with anyio.fail_after(5), stopwatch() as watch:
            evaluations.append(await monitor.evaluate())
        durations.append(watch.seconds)
        fake_clock.advance(INTERVAL)
    # Cut off at the probe's own 0.5 s; the runner's backstop would wait 2.5 s, the server 30 s.
    assert all(0.48 <= d < 1.5 for d in durations), durations
    assert all(e.failures == () for e in evaluations)  # a timeout is a reading, not a failed check
    hung = {r.key.rsplit("/", 1)[1]: r for r in cdn_readings(evaluations[-1])}
    assert hung["hangs.js"].status is nmh.Health.DEGRADED
    assert hung["hangs.js"].value == pytest.approx(0.5)
    assert dict(hung["hangs.js"].detail) == {"probes": 3, "failures": 0, "timeouts": 3, "last": "timeout"}
    assert hung["ok.js"].status is nmh.Health.OK  # fetched concurrently, unharmed
    assert [t.incident.key.rsplit("/", 1)[1] for t in evaluations[-1].opened] == ["hangs.js"]


async def test_failing_fetches_degrade_and_an_asset_that_is_down_alerts(fake_clock, http_receiver, internal_errors):
    http_receiver.route("/app.js", status=503)
    monitor = build(fake_clock, plugin_settings={"cdn": cdn_settings(http_receiver.url("/app.js"), min_probes=4)})
    internal_errors(monitor)
    evaluations = (await run_passes(monitor, 4, tick=INTERVAL)).evaluations
    assert [r.status for e in evaluations for r in cdn_readings(e)] == ["elevated", "elevated", "elevated", "critical"]
    [opened] = evaluations[-1].opened
    assert opened.alert is not None and "CDN delays on" in opened.alert.message
    http_receiver.route("/app.js", status=200)
    partly = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    assert [r.status for r in cdn_readings(partly[0])] == ["degraded"]  # 4 of 5 failed: still bad
    assert cdn_readings(partly[0])[0].detail["last"] == "200"


async def test_connection_errors_count_as_failures(fake_clock, internal_errors):
    with anyio.fail_after(5):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()  # nothing listens there now
    monitor = build(fake_clock, plugin_settings={"cdn": cdn_settings(f"http://127.0.0.1:{port}/app.js")})
    internal_errors(monitor)
    evaluations = (await run_passes(monitor, 3, tick=INTERVAL)).evaluations
    reading = cdn_readings(evaluations[-1])[0]
    assert reading.status is nmh.Health.CRITICAL
    assert reading.detail["last"] == "ConnectError" and reading.value is None


@asyncio_only
async def test_recovery_waits_for_slow_fetches_to_age_out_then_resolves(fake_clock, http_receiver, internal_errors):
    http_receiver.route("/app.js", delay=DELAY)
    monitor = build(
        fake_clock, cooldown_seconds=60, plugin_settings={"cdn": cdn_settings(http_receiver.url("/app.js"), history=4)}
    )
    internal_errors(monitor)
    assert [len(e.opened) for e in (await run_passes(monitor, 3, tick=INTERVAL)).evaluations] == [0, 0, 1]
    http_receiver.route("/app.js", delay=0.0)
    statuses, resolved = [], []
    for e in (await run_passes(monitor, 10, tick=INTERVAL)).evaluations:
        statuses += [r.status.value for r in cdn_readings(e)]
        resolved += e.resolved
    # history 4: three slow fetches keep it degraded, then elevated, until all have aged out
    # (["degraded", "degraded", "elevated", "ok", ...] on a quiet machine).
    assert statuses[:2] == ["degraded", "degraded"] and "degraded" not in statuses[2:]
    assert statuses[-1] == "ok"
    [transition] = resolved
    assert transition.incident.check == "cdn_delay"
    assert not monitor.notices("portal")


async def test_sites_sharing_an_asset_share_one_fetch_per_pass(fake_clock, http_receiver, internal_errors):
    settings = {"cdn": cdn_settings(http_receiver.url("/shared.js"))}
    monitor = build(fake_clock, plugin_settings=settings, sites={"beta": {}, "gamma": {"plugin_settings": {}}})
    internal_errors(monitor)
    [evaluation] = (await run_passes(monitor, 1, tick=INTERVAL)).evaluations
    assert sorted(r.site for r in cdn_readings(evaluation)) == ["acme", "beta"]  # gamma opted out
    assert http_receiver.hits == {"/shared.js": 1}


# The judgement itself.


def test_p95_interpolates():
    assert p95([]) is None
    assert p95([0.1]) == 0.1
    assert p95([float(n) for n in range(1, 21)]) == pytest.approx(19.05)


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([Sample(0.01)] * 5, "ok"),
        ([Sample(0.01)] * 3 + [Sample(0.09)] * 2, "elevated"),  # p95 above the recovery line
        ([Sample(0.01)] * 4 + [Sample(0.5)], "elevated"),  # one slow fetch is not a trend
        ([Sample(0.01)] * 3 + [Sample(0.5)] * 2, "degraded"),
        ([Sample(0.01)] * 3 + [Sample(1.0, timed_out=True)] * 2, "degraded"),
        ([Sample(0.5)] * 2, "elevated"),  # fewer than min_probes: never a problem yet
        ([Sample(0.01)] * 3 + [Sample(0.01, failed=True)] * 2, "degraded"),
        ([Sample(0.01)] * 7 + [Sample(0.01, failed=True)] * 2 + [Sample(0.01)], "elevated"),  # 20 % < 30 %
        ([Sample(0.01)] * 2 + [Sample(0.01, failed=True)] * 3, "critical"),
    ],
)
def test_judge(samples: list[Sample], expected: str):
    status, _ = judge(samples, slow=0.15, recovery=0.08, failure_ratio=0.3, min_probes=3)
    assert status == expected
