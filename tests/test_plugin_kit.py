"""The plugin kit: ``nextmonth_health.plugin``'s helpers and ``nextmonth_health.testing``'s fixtures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import pytest
from attrs import frozen

import nextmonth_health as nmh
from nextmonth_health.plugin import (
    ProbeCheck,
    check_option_names,
    hookimpl,
    number_option,
    plugin_configs,
    whole_option,
)
from nextmonth_health.testing import FakeClock, HttpReceiver, RecordingSink

pytestmark = pytest.mark.anyio

KNOWN = {"payments": True, "refunds": True, "interval": 60.0}


def parse(raw: Any, where: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    check_option_names(where, raw, KNOWN)
    return {**KNOWN, **raw}


def test_a_misspelt_option_names_the_site_and_the_likely_option() -> None:
    with pytest.raises(nmh.ConfigError) as caught:
        nmh.Monitor(
            "acme",
            store="memory://",
            load_entrypoints=False,
            sites={"shop": {"plugin_settings": {"pay": {"payment": False}}}},
            plugins=[PayPlugin()],
            strict_plugins=True,
        )
    assert "sites['shop']: plugin_settings['pay']: unknown option 'payment'; did you mean 'payments'?" in str(
        caught.value
    )


def test_an_option_far_from_any_lists_the_known_ones() -> None:
    with pytest.raises(nmh.ConfigError, match=r"unknown option 'zzz'; known options: payments, refunds, interval"):
        check_option_names("plugin_settings['pay']", {"zzz": 1}, KNOWN)


def test_plugin_configs_reads_the_monitor_and_every_site() -> None:
    monitor = nmh.Monitor(
        "acme",
        store="memory://",
        load_entrypoints=False,
        plugin_settings={"pay": {"refunds": False}},
        sites={"shop": {"plugin_settings": {"pay": {"payments": False}}}, "blog": {}},
    )
    configs = plugin_configs(monitor, "pay", parse)
    assert configs[None] == {**KNOWN, "refunds": False}
    assert configs["shop"] == {**KNOWN, "payments": False}
    layered = plugin_configs(monitor, "pay", parse, layered=True)
    assert layered["shop"] == {**KNOWN, "refunds": False, "payments": False}


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "interval must be a positive number, got 0"), ("1", "interval must be a number"), (math.inf, "a number")],
)
def test_number_option_says_what_it_wants(value: Any, message: str) -> None:
    with pytest.raises(nmh.ConfigError, match=message):
        number_option("here", "interval", value)


def test_whole_option_refuses_bools_and_small_values() -> None:
    assert whole_option("here", "n", 3) == 3
    for bad in (True, 0, 2.0):
        with pytest.raises(nmh.ConfigError, match="n must be a whole number of at least 1"):
            whole_option("here", "n", bad)


class PayPlugin:
    @hookimpl
    def register_health_checks(self, register: Any, monitor: nmh.Monitor) -> None:
        configs = plugin_configs(monitor, "pay", parse)
        if any(configs.values()):
            register(PingCheck({site: c and PingConfig() for site, c in configs.items()}))


@frozen
class PingConfig:
    urls: tuple[str, ...] = ()
    interval: float = 60.0
    timeout: float = 1.0
    history: int = 3


class PingCheck(ProbeCheck[PingConfig, str, int]):
    """Fetches each URL; a sample is the status (599 on a timeout)."""

    name = "ping"

    def items(self, config: PingConfig) -> Sequence[str]:
        return config.urls

    def target(self, url: str, config: PingConfig) -> str:
        return url

    async def probe(self, url: str, config: PingConfig, session: Any) -> int:
        with anyio.move_on_after(config.timeout):
            async with httpx.AsyncClient() as client:
                return (await client.get(url, timeout=config.timeout)).status_code
        return 599

    def readings(self, view: nmh.SiteView, config: PingConfig) -> list[nmh.Reading]:
        return [
            nmh.Reading(
                check=self.name,
                site=view.site,
                key=url,
                area="site",
                status="degraded" if self.samples(url)[-2:] == [500, 500] else "ok",
                subject=f"Ping {url}",
            )
            for url in config.urls
        ]


async def test_a_probe_check_shares_probes_across_sites_and_keeps_its_history(
    make_monitor: Any, http_receiver: HttpReceiver, recording_sink: RecordingSink, passes: Any
) -> None:
    shared = PingConfig(urls=(http_receiver.url("/a"),), interval=30.0, timeout=1.0)
    check = PingCheck({None: shared, "blog": PingConfig(urls=(), timeout=3.0), "quiet": None})
    assert (check.interval, check.timeout) == (30.0, 3.0 + PingCheck.backstop)

    class Plugin:
        @hookimpl
        def register_health_checks(self, register: Any) -> None:
            register(check)

    monitor = make_monitor(Plugin(), recording_sink, sites={"shop": {}, "quiet": {}})
    http_receiver.route("/a", 500)
    transitions = await passes(3, monitor=monitor, tick=30.0)
    assert http_receiver.hits == {"/a": 3}  # one fetch a pass, for both sites reading it
    assert check.samples(http_receiver.url("/a")) == [500, 500, 500]
    assert {(t.kind, t.incident.site) for t in transitions} == {("opened", "test-site"), ("opened", "shop")}
    assert sorted(recording_sink.kinds()) == [f"opened ping/{http_receiver.url('/a')}"] * 2


async def test_a_hanging_probe_is_a_sample_not_a_stalled_pass(make_monitor: Any, http_receiver: HttpReceiver) -> None:
    http_receiver.route("/slow", delay=30.0)  # released at teardown
    check = PingCheck({None: PingConfig(urls=(http_receiver.url("/slow"),), timeout=0.3)})

    class Plugin:
        @hookimpl
        def register_health_checks(self, register: Any) -> None:
            register(check)

    monitor = make_monitor(Plugin())
    with anyio.fail_after(5):
        await monitor.evaluate()
    assert check.samples(http_receiver.url("/slow")) == [599]


async def test_passes_moves_the_fake_clock_a_tick_after_each(monitor: nmh.Monitor, passes: Any) -> None:
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    started = clock.now()
    assert await passes(2) == []
    assert clock.now() == started + 2 * monitor.settings.tick_seconds


def test_the_receiver_scripts_replies_and_records_requests(http_receiver: HttpReceiver) -> None:
    http_receiver.reply(429, headers={"Retry-After": "3"})
    first = httpx.post(http_receiver.url("/hook"), json={"n": 1})
    second = httpx.get(http_receiver.url("/asset.js?v=2"))
    assert (first.status_code, first.headers["Retry-After"], second.status_code) == (429, "3", 200)
    assert [(r.method, r.path, r.query) for r in http_receiver.received] == [
        ("POST", "/hook", ""),
        ("GET", "/asset.js", "v=2"),
    ]
    assert http_receiver.bodies() == [{"n": 1}, b""]
