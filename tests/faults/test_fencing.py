"""One alert, even when a leader is paused mid-pass past its lease.

A check that blocks until the test lets it go stands for a slow probe, a long GC or a frozen
VM. Meanwhile a second evaluator takes the lease and escalates the incident; when the first
wakes, its writes carry a stale fencing token, the store refuses them, and its sinks hear
nothing. Run on every store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import nextmonth_health as nmh
from nextmonth_health.store import MemoryStore
from nextmonth_health.testing import FakeClock

pytestmark = pytest.mark.anyio


class Probe:
    """An active check whose verdict the test sets, and which can be held mid-run."""

    name = "cdn_probe"
    interval = None
    timeout = 600.0

    def __init__(self) -> None:
        self.status = "degraded"
        self.hold: anyio.Event | None = None
        self.entered = anyio.Event()

    async def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        status = self.status
        if self.hold is not None:
            self.entered.set()
            await self.hold.wait()
        return [
            nmh.Reading(
                check=self.name,
                site=view.site,
                key="",
                area="portal",
                status=status,
                subject="CDN",
                affected_users=5,
            )
        ]


class Heard:
    name = "heard"

    def __init__(self) -> None:
        self.transitions: list[nmh.Transition] = []

    def send(self, transition: nmh.Transition) -> None:
        self.transitions.append(transition)


class Plugin:
    def __init__(self, probe: Probe, sink: Heard) -> None:
        self.probe, self.sink = probe, sink

    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(self.probe)

    @nmh.hookimpl
    def register_alert_sinks(self, register: Callable[[Any], None]) -> None:
        register(self.sink)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A factory of store handles that all reach one store, as two processes would."""
    if request.param == "memory":
        store = MemoryStore()
        yield lambda: store
    elif request.param == "sqlite":
        yield lambda: f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        server = request.getfixturevalue("redis_db")
        yield lambda: server.url()


def evaluator(store: Any, clock: FakeClock) -> tuple[nmh.Monitor, Probe, Heard]:
    probe, sink = Probe(), Heard()
    monitor = nmh.Monitor("acme", store=store, clock=clock, plugins=[Plugin(probe, sink)], load_entrypoints=False)
    return monitor, probe, sink


async def test_a_leader_paused_past_its_lease_cannot_alert_a_second_time(
    shared_store: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    paused, paused_probe, paused_heard = evaluator(shared_store(), clock)
    standby, standby_probe, standby_heard = evaluator(shared_store(), clock)
    [opened] = (await paused.evaluate()).opened  # the leader opens a degraded incident
    assert opened.incident.severity == "degraded" and (await standby.evaluate()).sites == ()

    clock.advance(15)
    paused_probe.status = standby_probe.status = "critical"
    paused_probe.hold = anyio.Event()
    with caplog.at_level(logging.WARNING, logger="nextmonth_health"):
        async with anyio.create_task_group() as tg:
            results: list[nmh.Evaluation] = []

            async def leader_pass() -> None:
                results.append(await paused.evaluate())

            tg.start_soon(leader_pass)
            await paused_probe.entered.wait()  # the leader's pass is under way, and stalls
            clock.advance(60)  # past its 45 s lease
            escalation = await standby.evaluate()
            assert [t.kind for t in escalation.transitions] == ["escalated"], "the standby took over"
            paused_probe.hold.set()  # the leader wakes and finishes its stale pass
    [stale] = results
    assert stale.transitions == (), "the stale pass ends without effect"
    escalations = [t for t in (*paused_heard.transitions, *standby_heard.transitions) if t.kind == "escalated"]
    assert len(escalations) == 1 and escalations[0].alert is not None, "one alert, not two"
    assert [a.severity for a in standby.incidents()] == ["critical"] and len(standby.alerts()) == 1
    assert any("nextmonth_health.stale_pass" in r.getMessage() for r in caplog.records)

    paused_probe.hold = None
    clock.advance(15)
    assert (await paused.evaluate()).sites == (), "the standby leads now"
    for monitor in (paused, standby):
        monitor.store.close()
