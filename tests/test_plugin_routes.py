"""Routes declared by plugins: merged with the host's, checked at start-up, named when left out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

import nextmonth_health as nmh
from nextmonth_health import ConfigError, Reading, hookimpl
from nextmonth_health.settings import DEFAULT_ROUTES
from nextmonth_health.testing import FakeClock, capture_logs

from .dists import Dist
from .test_plugins import RegistersChecks, RegistersRoutes

pytestmark = pytest.mark.anyio


def build(*plugins: Any, entrypoints: bool = False, **kwargs: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme", store="memory://", clock=FakeClock(), plugins=plugins, load_entrypoints=entrypoints, **kwargs
    )


class PaymentWebhooks:
    """A third party's check on a route no host lists by default, declared on the check."""

    name = "payment_webhooks"
    routes: ClassVar[dict[str, str]] = {"POST /payments/webhook": "payments"}

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        window = view.window("request", "POST /payments/webhook")
        status = "degraded" if window.bad >= 3 else "ok"
        return [Reading(self.name, view.site, "POST /payments/webhook", "payments", status, "Webhook failures")]


def unwatched(logs: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    return [(e["check"], e["route"], e["sites"]) for e in logs if e["event"] == "nextmonth_health.unwatched_route"]


async def test_a_checks_own_routes_are_watched_so_it_sees_its_requests():
    with capture_logs() as logs:
        monitor = build(RegistersChecks(PaymentWebhooks()))
    assert monitor.settings.routes["POST /payments/webhook"] == "payments"
    assert set(DEFAULT_ROUTES) < set(monitor.settings.routes)
    for _ in range(4):
        monitor.record_request("POST /payments/webhook", 503, 0.1, user="shop")
    evaluation = await monitor.evaluate()
    assert [(t.incident.check, t.incident.area) for t in evaluation.opened] == [("payment_webhooks", "payments")]
    assert unwatched(logs) == []


def test_the_hosts_routes_win_where_they_meet_a_plugins():
    monitor = build(
        RegistersRoutes({"/refunds": "payments", "/portal": "clients"}),
        RegistersChecks(PaymentWebhooks()),
        routes={"POST /payments/webhook": "billing", "/refunds": "billing"},
    )
    s = monitor.settings
    assert (s.area_for("POST /payments/webhook"), s.area_for("/refunds/1"), s.area_for("/portal")) == (
        "billing",
        "billing",
        "clients",  # a plugin may re-area a default; the host, anything
    )


def test_among_plugins_the_later_declaration_wins_and_checks_come_after_hooks():
    class ReAreas(PaymentWebhooks):
        routes: ClassVar[dict[str, str]] = {"POST /payments/webhook": "webhooks"}

    monitor = build(RegistersRoutes({"POST /payments/webhook": "payments"}), RegistersChecks(ReAreas()))
    assert monitor.settings.routes["POST /payments/webhook"] == "webhooks"
    later = build(RegistersRoutes({"/x": "one"}), RegistersRoutes({"/x": "two"}))
    assert later.settings.routes["/x"] == "two"


def test_a_replaced_checks_routes_are_not_watched():
    class Replacement(PaymentWebhooks):
        routes = None

    monitor = build(RegistersChecks(PaymentWebhooks()), RegistersChecks(Replacement()))
    assert next(c for c in monitor.checks if c.name == "payment_webhooks").routes is None
    assert "POST /payments/webhook" not in monitor.settings.routes


def test_plugin_routes_reach_every_site_and_a_sites_own_add_to_them():
    monitor = build(RegistersChecks(PaymentWebhooks()), sites={"shop": {"routes": {"/cart": "checkout"}}})
    shop = monitor.settings_for("shop")
    assert shop.routes["POST /payments/webhook"] == "payments" and shop.routes["/cart"] == "checkout"
    assert monitor.settings_for("elsewhere").route_for("POST /payments/webhook/x") == "POST /payments/webhook"


def test_a_host_replacing_its_routes_is_told_which_check_goes_blind_where():
    with capture_logs() as logs:
        monitor = build(
            RegistersRoutes({"/refunds": "payments"}),
            RegistersChecks(PaymentWebhooks()),
            sites={
                "tiny": {"routes": {"/cart": "checkout"}, "replace_routes": True},
                "shop": {"routes": {"/cart": "checkout"}},
            },
        )
    assert "POST /payments/webhook" not in monitor.settings_for("tiny").routes
    assert "/refunds" not in monitor.settings_for("tiny").routes
    assert unwatched(logs) == [("payment_webhooks", "POST /payments/webhook", ["tiny"])]
    [event] = [e for e in logs if e["event"] == "nextmonth_health.unwatched_route"]
    assert event["log_level"] == "warning" and "replace_routes" in event["hint"]
    with capture_logs() as logs:
        build(RegistersChecks(PaymentWebhooks()), routes={"/files": "uploads"}, replace_routes=True, sites={"shop": {}})
    assert unwatched(logs) == [("payment_webhooks", "POST /payments/webhook", ["*", "shop"])]
    with capture_logs() as logs:
        build(
            RegistersChecks(PaymentWebhooks()),
            routes={"/files": "uploads", "POST /payments/webhook": "payments"},
            replace_routes=True,
        )
    assert unwatched(logs) == []


@pytest.mark.parametrize(
    ("plugin", "says"),
    [
        (
            RegistersRoutes({"PSOT /payments/webhook": "payments"}),
            "register_routes: 'PSOT /payments/webhook': 'PSOT' is not an HTTP method; did you mean 'POST'?",
        ),
        (RegistersRoutes({"/payments": ""}), "register_routes: the area for '/payments' must be a non-empty string"),
        (RegistersRoutes(["/payments"]), "register_routes must map a route to an area"),  # type: ignore[arg-type]
    ],
)
def test_an_in_code_plugins_bad_route_fails_fast_naming_the_plugin(plugin: Any, says: str):
    with pytest.raises(ConfigError) as info:
        build(plugin)
    assert str(info.value).startswith("plugin 'tests.test_plugins.RegistersRoutes' ")
    assert says in str(info.value)


def test_a_checks_bad_routes_fail_fast_naming_the_check():
    class Lowercase(PaymentWebhooks):
        routes: ClassVar[dict[str, str]] = {"post /payments/webhook": "payments"}

    with pytest.raises(
        ConfigError,
        match="check 'payment_webhooks': routes: 'post /payments/webhook': 'post' is not "
        "an HTTP method; write the method in capitals: 'POST /payments/webhook'",
    ):
        build(RegistersChecks(Lowercase()))


WEBHOOK_PLUGIN = """
    from nextmonth_health import hookimpl

    @hookimpl
    def register_routes(register):
        register({"/payments": "payments"})
        register({"POST payments/webhook": "payments"})
"""


def test_an_installed_plugins_bad_route_is_reported_and_the_rest_loads(make_dist: Dist):
    make_dist("nmh-webhooks", {"webhooks": "nmh_ep_webhooks"}, {"nmh_ep_webhooks": WEBHOOK_PLUGIN})
    monitor = build(entrypoints=True)
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == ("webhooks", "register_routes", "nmh-webhooks")
    assert "the path after the method must start with '/'" in failure.error
    assert monitor.settings.routes["/payments"] == "payments"  # what was valid is kept
    assert dict(build().settings.routes) == dict(DEFAULT_ROUTES)
    with pytest.raises(ConfigError, match="'POST payments/webhook'"):
        build(entrypoints=True, strict_plugins=True)


def test_a_hook_may_read_the_plugin_settings_to_choose_its_routes():
    class FromSettings:
        @hookimpl
        def register_routes(self, register: Callable[[Any], None], monitor: nmh.Monitor) -> None:
            route = monitor.settings.plugin_settings.get("webhooks", {}).get("route")
            if route:
                register({route: "payments"})

    monitor = build(FromSettings(), plugin_settings={"webhooks": {"route": "PUT /hooks"}})
    assert monitor.settings.route_for("PUT /hooks/1") == "PUT /hooks"
    assert "PUT /hooks" not in build(FromSettings()).settings.routes
