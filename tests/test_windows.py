"""What a check sees through its SiteView, on every store, as the evaluator builds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health.signals import LOGIN, REQUEST
from nextmonth_health.testing import FakeClock

pytestmark = pytest.mark.anyio


class Looking:
    """A check that asks its view questions and keeps the answers."""

    name = "looking"
    interval = None
    timeout = None

    def __init__(self, ask: Callable[[nmh.SiteView], Any]) -> None:
        self.ask = ask
        self.answers: list[Any] = []

    def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        self.answers.append(self.ask(view))
        return []

    @nmh.hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        register(self)


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/views.db"


async def test_keys_without_traffic_do_not_change_the_counts_of_others(store_url: str) -> None:
    def ask(view: nmh.SiteView) -> list[tuple[str, int, int]]:
        asked = ["/portal", "/bookings", "/nothing", "/media-upload", "/bookings", "/nowhere", "/portal"]
        return [(key, view.window(REQUEST, key).total, view.window(REQUEST, key).bad) for key in asked]

    check = Looking(ask)
    clock = FakeClock()
    monitor = nmh.Monitor("acme", store=store_url, clock=clock, plugins=[check], load_entrypoints=False)
    for n in range(10):
        monitor.record_request("/bookings", 500 if n < 2 else 200, 0.1, user=f"u{n}")
    for n in range(4):
        monitor.record_request("/portal", 200, 0.1, user=f"u{n}")
    clock.advance(10)
    await monitor.evaluate()
    clock.advance(15)
    await monitor.evaluate()
    assert len(check.answers) == 2
    for answers in check.answers:
        assert answers == [
            ("/portal", 4, 0),
            ("/bookings", 10, 2),
            ("/nothing", 0, 0),
            ("/media-upload", 0, 0),
            ("/bookings", 10, 2),
            ("/nowhere", 0, 0),
            ("/portal", 4, 0),
        ]


async def test_windows_baselines_and_users_agree_across_stores(store_url: str) -> None:
    def ask(view: nmh.SiteView) -> dict[str, Any]:
        window = view.window(REQUEST)
        return {
            "window": (window.total, window.bad, window.samples),
            "keys": sorted(view.keys(REQUEST)),
            "several": view.window(REQUEST, ["/bookings", "/portal"]).total,
            "short": view.window(REQUEST, "/bookings", seconds=60).total,
            "baseline": (view.baseline(REQUEST).total, view.baseline(REQUEST, "/bookings").bad),
            "logins": (view.window(LOGIN).total, view.window(LOGIN).bad),
            "users": view.users((REQUEST, "/bookings", True), (LOGIN, None, True)),
        }

    check = Looking(ask)
    clock = FakeClock()
    monitor = nmh.Monitor("acme", store=store_url, clock=clock, plugins=[check], load_entrypoints=False)
    for n in range(20):  # the baseline hour: 20 requests, 1 error
        monitor.record_request("/bookings", 500 if n == 0 else 200, 0.05, user=f"b{n}")
        clock.advance(180)
    clock.advance(300)
    for n in range(6):  # the window: two minutes ago, and just now
        monitor.record_request("/bookings", 502 if n % 2 else 200, 0.2, user=f"w{n}")
        monitor.record_request("/portal", 200, 0.1, user=f"w{n}")
        monitor.record_login(n != 5, user=f"w{n}")
        clock.advance(20)
    evaluation = await monitor.evaluate()
    assert not evaluation.failures
    [seen] = check.answers
    assert seen == {
        "window": (12, 3, 12),
        "keys": ["/bookings", "/portal"],
        "several": 12,
        "short": 2,  # the last minute (to the end of the current bucket): the 80 s and 100 s ones
        "baseline": (seen["baseline"][0], seen["baseline"][1]),
        "logins": (6, 1),
        "users": 3,  # w1, w3 and w5 got a 5xx; w5 also failed to sign in
    }
    assert seen["baseline"][0] >= 15 and seen["baseline"][1] <= 1


async def test_affected_takes_a_health_or_its_string_as_reading_does(store_url: str) -> None:
    hurt = (REQUEST, "/bookings", True)

    def ask(view: nmh.SiteView) -> dict[str, tuple[Any, ...]]:
        answers: dict[str, tuple[Any, ...]] = {
            status: (
                view.affected(status, "looking", "/bookings", hurt),
                view.affected(nmh.Health(status), "looking", "/bookings", hurt),
                view.affected_now(status, "looking", "/bookings", hurt),
                view.affected_now(nmh.Health(status), "looking", "/bookings", hurt),
            )
            for status in ("ok", "elevated", "degraded", "critical", "unknown")
        }
        answers["degradd"] = (raised(lambda: view.affected("degradd", "looking", "/bookings", hurt)),)
        return answers

    class Degraded(Looking):
        def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
            super().evaluate(view)
            users = view.affected("degraded", self.name, "/bookings", hurt)
            return [
                nmh.Reading(
                    check=self.name,
                    site=view.site,
                    key="/bookings",
                    area="bookings",
                    status="degraded",
                    subject="Errors on /bookings",
                    affected_users=users,
                )
            ]

    check = Degraded(ask)
    clock = FakeClock()
    monitor = nmh.Monitor("acme", store=store_url, clock=clock, plugins=[check], load_entrypoints=False)
    for n in range(4):
        monitor.record_request("/bookings", 500, 0.1, user=f"u{n}")
    clock.advance(10)
    [opened] = (await monitor.evaluate()).opened
    assert opened.incident.affected_users == 4
    clock.advance(15)
    await monitor.evaluate()
    misspelt = raised(lambda: nmh.Reading(check="c", site="s", key="", area="a", status="degradd", subject="x"))
    assert misspelt == "ValueError: 'degradd' is not a valid Health"
    before, during = check.answers
    assert before == {
        "ok": (0, 0, None, None),
        "elevated": (0, 0, None, None),
        "degraded": (4, 4, None, None),
        "critical": (4, 4, None, None),
        "unknown": (0, 0, None, None),
        "degradd": (misspelt,),
    }
    assert during == {  # the incident is open
        "ok": (0, 0, None, None),
        "elevated": (4, 4, 4, 4),
        "degraded": (4, 4, 4, 4),
        "critical": (4, 4, 4, 4),
        "unknown": (0, 0, 4, 4),
        "degradd": (misspelt,),
    }


def raised(call: Callable[[], Any]) -> str:
    """What ``call`` raised, as ``"Type: message"``."""
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "nothing raised"
