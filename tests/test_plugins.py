"""The plugin system, with real pluggy and real distributions on ``sys.path``.

In-code plugins go through ``Monitor(plugins=[...])``; installed ones are throwaway
distributions built in ``tmp_path`` (a module plus a ``.dist-info`` with
``entry_points.txt``), discovered by the real ``importlib.metadata``. Tests that make a
plugin raise on purpose build their own Monitor (the ``monitor`` fixture would fail them
by design) and assert on what it recorded instead.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pluggy
import pytest

import nextmonth_health as nmh
from nextmonth_health import ConfigError, Health, Reading, Severity, hookimpl
from nextmonth_health.hooks import specs as hookspecs
from nextmonth_health.hooks.manager import ENTRY_POINT_GROUP, PluginFailure
from nextmonth_health.plugins.cinematic import TEMPLATES
from nextmonth_health.testing import FakeClock, capture_logs

from .dists import Dist

pytestmark = pytest.mark.anyio

ENV_VARS = (
    "NEXTMONTH_HEALTH_LOAD_PLUGINS",
    "NEXTMONTH_HEALTH_DISABLE_PLUGINS",
    "NEXTMONTH_HEALTH_STRICT_PLUGINS",
    "NEXTMONTH_HEALTH_TRACE_HOOKS",
)
BUNDLED_CHECKS = {"api_errors", "dashboard_load", "session_failures", "upload_failures"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def build(*plugins: Any, entrypoints: bool = False, **kwargs: Any) -> nmh.Monitor:
    return nmh.Monitor(
        "acme",
        store="memory://",
        clock=FakeClock(),
        plugins=plugins,
        load_entrypoints=entrypoints,
        **kwargs,
    )


class ScriptedCheck:
    """A check that reads whatever status it is told to, for one area."""

    interval: float | None = None

    def __init__(self, name: str, status: str = "ok", area: str = "portal", timeout: float | None = None) -> None:
        self.name = name
        self.status = status
        self.area = area
        self.timeout = timeout
        self.calls = 0

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        self.calls += 1
        return [
            Reading(
                check=self.name,
                site=view.site,
                key="",
                area=self.area,
                status=self.status,
                subject=self.name,
            )
        ]


class RegistersChecks:
    def __init__(self, *checks: Any) -> None:
        self.checks = checks

    @hookimpl
    def register_health_checks(self, register: Callable[[Any], None]) -> None:
        for check in self.checks:
            register(check)


class RegistersSinks:
    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    @hookimpl
    def register_alert_sinks(self, register: Callable[[Any], None]) -> None:
        for sink in self.sinks:
            register(sink)


class RegistersRenderers:
    def __init__(self, *renderers: Any) -> None:
        self.renderers = renderers

    @hookimpl
    def register_message_renderers(self, register: Callable[[Any], None]) -> None:
        for renderer in self.renderers:
            register(renderer)


class RegistersRoutes:
    def __init__(self, *tables: dict[str, str]) -> None:
        self.tables = tables

    @hookimpl
    def register_routes(self, register: Callable[[Any], None]) -> None:
        for table in self.tables:
            register(table)


class RegistersSignals:
    def __init__(self, *signals: Any) -> None:
        self.signals = signals

    @hookimpl
    def register_signals(self, register: Callable[[Any], None]) -> None:
        for signal in self.signals:
            register(signal)


class ListSink:
    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.received: list[nmh.Transition] = []

    def send(self, transition: nmh.Transition) -> None:
        self.received.append(transition)


class FixedRenderer:
    def __init__(self, name: str, areas: set[str] | None, title: str = "All good soon") -> None:
        self.name = name
        self.areas = areas
        self.title = title

    def render(self, incident: nmh.Incident) -> nmh.Notice:
        return nmh.Notice(
            area=incident.area,
            site=incident.site,
            title=self.title,
            message="Thank you for waiting.",
            severity=incident.severity,
        )


def names(objects: Any) -> list[str]:
    return [o.name for o in objects]


# The marker and the manager.


def test_hookimpl_is_reexported_at_the_package_root():
    assert nmh.hookimpl is hookspecs.hookimpl
    assert "hookimpl" in nmh.__all__
    assert hookspecs.hookimpl.project_name == hookspecs.hookspec.project_name == "nextmonth_health"
    assert ENTRY_POINT_GROUP == "nextmonth_health"


def test_bundled_features_are_ordinary_plugins():
    monitor = build()
    assert set(names(monitor.checks)) == BUNDLED_CHECKS
    assert names(monitor.sinks) == ["log"]
    assert names(monitor.renderers) == ["cinematic"]
    registered = {monitor.plugin_manager.get_name(p) for p in monitor.plugin_manager.get_plugins()}
    assert "nextmonth_health.plugins.cinematic" in registered
    assert monitor.plugin_failures == ()


# In-code plugins: one test per hook.


async def test_register_health_checks_from_an_in_code_plugin_object():
    check = ScriptedCheck("nightly_backup", status="degraded", area="portal")
    monitor = build(RegistersChecks(check))
    assert set(names(monitor.checks)) == BUNDLED_CHECKS | {"nightly_backup"}
    evaluation = await monitor.evaluate()
    assert check.calls == 1
    ours = [r for r in evaluation.readings if r.check == "nightly_backup"]
    assert [(r.site, r.status) for r in ours] == [("acme", Health.DEGRADED)]
    assert [t.incident.check for t in evaluation.opened] == ["nightly_backup"]
    assert {r.check for r in evaluation.readings} == BUNDLED_CHECKS | {"nightly_backup"}


async def test_register_alert_sinks_from_an_in_code_plugin_object():
    sink = ListSink()
    monitor = build(RegistersSinks(sink), RegistersChecks(ScriptedCheck("probe", status="critical")))
    assert names(monitor.sinks) == ["log", "list"]
    await monitor.evaluate()
    assert [(t.kind, t.incident.check) for t in sink.received] == [("opened", "probe")]
    assert sink.received[0].alert is not None
    assert sink.received[0].alert.incident_id == sink.received[0].incident.id


async def test_register_message_renderers_from_an_in_code_plugin_object():
    monitor = build(
        RegistersRenderers(FixedRenderer("calm", areas=None)),
        RegistersChecks(ScriptedCheck("probe", "degraded")),
    )
    assert names(monitor.renderers) == ["calm", "cinematic"]  # later registered, asked first
    await monitor.evaluate()
    [notice] = monitor.notices("portal")
    assert (notice.title, notice.area, notice.site, notice.severity) == (
        "All good soon",
        "portal",
        "acme",
        "degraded",
    )


async def test_register_routes_from_an_in_code_plugin_object():
    seen: list[tuple[str | None, str | None]] = []

    class Webhooks:
        name = "webhooks"

        def evaluate(self, view: nmh.SiteView) -> list[Reading]:
            window = view.window("request", "POST /payments/webhook")
            status = "degraded" if window.bad >= 3 else "ok"
            return [
                Reading(
                    self.name,
                    view.site,
                    "POST /payments/webhook",
                    "payments",
                    status,
                    "Webhook failures",
                )
            ]

    class SeesRoutes:
        @hookimpl
        def register_health_checks(self, register, monitor):  # type: ignore[no-untyped-def]
            seen.append(
                (
                    monitor.settings.route_for("POST /payments/webhook"),
                    monitor.settings.area_for("/refunds/7"),
                )
            )
            register(Webhooks())

    monitor = build(
        RegistersRoutes({"POST /payments/webhook": "payments"}, {"/refunds": "payments"}),
        SeesRoutes(),
    )
    assert seen == [("POST /payments/webhook", "payments")]  # checks registered after see them
    assert dict(monitor.settings.routes) == {
        **nmh.settings.DEFAULT_ROUTES,
        "POST /payments/webhook": "payments",
        "/refunds": "payments",
    }
    for _ in range(4):
        monitor.record_request("POST /payments/webhook/stripe", 503, 0.2)
        monitor.record_request("GET /payments/webhook", 200, 0.2)  # not the webhook's route: 'other'
    evaluation = await monitor.evaluate()
    [reading] = [r for r in evaluation.readings if r.check == "webhooks"]
    assert reading.status is Health.DEGRADED
    assert [(t.incident.check, t.incident.key) for t in evaluation.opened] == [("webhooks", "POST /payments/webhook")]


async def test_register_signals_from_an_in_code_plugin_object():
    class QueueCheck:
        name = "queue_wait"
        interval = timeout = None

        def evaluate(self, view: nmh.SiteView) -> list[Reading]:
            window = view.window("acme.queue", "mail")
            slow = window.samples > 0 and (window.quantile(0.5) or 0) > 5
            return [
                Reading(
                    check=self.name,
                    site=view.site,
                    key="mail",
                    area="portal",
                    status="degraded" if slow else "ok",
                    subject="Slow mail queue",
                    value=window.quantile(0.5),
                )
            ]

    monitor = build(RegistersSignals("acme.queue"), RegistersChecks(QueueCheck()))
    assert monitor.signals[-1] == "acme.queue" and monitor.recorder.declared == {"acme.queue"}
    for _ in range(5):
        monitor.record("acme.queue", "mail", value=30.0, user="u-1")
    evaluation = await monitor.evaluate()
    [reading] = [r for r in evaluation.readings if r.check == "queue_wait"]
    assert reading.status is Health.DEGRADED and reading.value == pytest.approx(30.0, rel=0.05)
    assert [t.incident.check for t in evaluation.opened] == ["queue_wait"]
    assert monitor.status().drops == {}


def test_hooks_receive_the_monitor_being_built():
    seen: list[Any] = []

    class WantsMonitor:
        @hookimpl
        def register_health_checks(self, register, monitor):  # type: ignore[no-untyped-def]
            seen.append(monitor)
            register(ScriptedCheck(f"probe_{monitor.site}"))

    monitor = build(WantsMonitor())
    assert seen == [monitor]
    assert "probe_acme" in names(monitor.checks)


def test_a_plugin_module_can_be_given_by_name_or_as_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "nmh_inline_plugin.py").write_text(
        textwrap.dedent(
            """
            from nextmonth_health import Reading, hookimpl

            class Inline:
                name = "inline"
                interval = None
                timeout = None

                def evaluate(self, view):
                    return [Reading(check="inline", site=view.site, key="", area="portal", status="ok", subject="x")]

            @hookimpl
            def register_health_checks(register):
                register(Inline())
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nmh_inline_plugin", raising=False)
    try:
        assert "inline" in names(build("nmh_inline_plugin").checks)
        module = importlib.import_module("nmh_inline_plugin")
        assert "inline" in names(build(module).checks)
        assert names(build(module, "nmh_inline_plugin").checks).count("inline") == 1  # registered once
    finally:
        sys.modules.pop("nmh_inline_plugin", None)


def test_a_plugin_name_that_cannot_be_imported_is_a_config_error():
    with pytest.raises(ConfigError, match=r"plugins: cannot import 'no_such_nmh_plugin'"):
        build("no_such_nmh_plugin")


async def test_a_plugin_check_with_a_bundled_name_replaces_the_bundled_one():
    mine = ScriptedCheck("api_errors", status="degraded", area="uploads")
    monitor = build(RegistersChecks(mine))
    assert names(monitor.checks).count("api_errors") == 1
    assert [c for c in monitor.checks if c.name == "api_errors"] == [mine]
    evaluation = await monitor.evaluate()
    api = [r for r in evaluation.readings if r.check == "api_errors"]
    assert [(r.key, r.area, r.subject) for r in api] == [("", "uploads", "api_errors")]  # ours, not one per route
    assert mine.calls == 1


def test_two_instances_of_one_plugin_class_both_register():
    monitor = build(RegistersChecks(ScriptedCheck("one")), RegistersChecks(ScriptedCheck("two")))
    assert {"one", "two"} <= set(names(monitor.checks))


def test_among_in_code_plugins_the_last_listed_wins_a_name():
    first, second = ScriptedCheck("probe"), ScriptedCheck("probe")
    monitor = build(RegistersChecks(first), RegistersChecks(second))
    assert [c for c in monitor.checks if c.name == "probe"] == [second]


def test_a_registered_object_that_is_not_a_check_fails_fast():
    class NoEvaluate:
        name = "half"

    with pytest.raises(ConfigError, match="lacks what a check needs"):
        build(RegistersChecks(NoEvaluate()))
    with pytest.raises(ConfigError, match="lacks what a sink needs"):
        build(RegistersSinks(object()))


# Failing plugins are isolated.


class RaisesInHook:
    @hookimpl
    def register_health_checks(self, register):  # type: ignore[no-untyped-def]
        raise RuntimeError("plugin could not read its config")


def test_a_plugin_whose_hook_raises_is_isolated_and_reported():
    good = ScriptedCheck("still_here")
    monitor = build(RaisesInHook(), RegistersChecks(good), RegistersSinks(ListSink()))
    assert set(names(monitor.checks)) == BUNDLED_CHECKS | {"still_here"}
    assert "list" in names(monitor.sinks)
    [failure] = monitor.plugin_failures
    assert isinstance(failure, PluginFailure)
    assert failure.name == f"{__name__}.RaisesInHook"  # readable, not pluggy's default id()
    assert failure.where == "register_health_checks"
    assert failure.error == "RuntimeError: plugin could not read its config"
    assert failure.distribution is None
    assert monitor.status().plugin_failures == (failure,)


def test_strict_plugins_raises_the_hook_error():
    with pytest.raises(RuntimeError, match="could not read its config"):
        build(RaisesInHook(), strict_plugins=True)


def test_strict_plugins_env_raises_the_hook_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="could not read its config"):
        build(RaisesInHook())
    assert build(RaisesInHook(), strict_plugins=False).plugin_failures[0].where == "register_health_checks"


def test_a_misspelt_hook_in_an_in_code_plugin_fails_fast_with_a_suggestion():
    class Misspelt:
        @hookimpl
        def register_health_check(self, register):  # type: ignore[no-untyped-def]  # missing the final "s"
            register(ScriptedCheck("never"))

    with pytest.raises(ConfigError) as info:
        build(Misspelt())
    assert str(info.value) == (
        f"plugin '{__name__}.{Misspelt.__qualname__}': 'register_health_check' is not a nextmonth_health hook;"
        " did you mean 'register_health_checks'?"
    )


def test_a_hook_asking_for_an_argument_the_spec_lacks_fails_fast_with_a_suggestion():
    class WrongArgument:
        @hookimpl
        def register_alert_sinks(self, register, monitr):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(ConfigError) as info:
        build(WrongArgument())
    assert str(info.value).endswith(
        ": register_alert_sinks asks for 'monitr', which the hook does not pass; did you mean 'monitor'?"
    )


def test_an_in_code_plugin_that_implements_no_hook_fails_fast():
    class Unmarked:
        def register_health_checks(self, register):  # type: ignore[no-untyped-def]  # no @hookimpl
            register(ScriptedCheck("never"))

    with pytest.raises(
        ConfigError,
        match=r": no hook implementation: 'register_health_checks' is not marked"
        r" @nextmonth_health\.hookimpl$",
    ):
        build(Unmarked())
    with pytest.raises(ConfigError) as info:
        build(ScriptedCheck("passed_as_a_plugin"))  # the check itself, not a plugin that registers it
    assert str(info.value) == (
        f"plugin '{__name__}.ScriptedCheck': no hook implementation: it looks like a check,"
        " which a plugin's register_health_checks hook registers"
    )
    with pytest.raises(ConfigError) as info:
        build(object())
    hooks = ", ".join(sorted(hookspec_names()))
    assert str(info.value).endswith(
        f": no hook implementation: nothing in it is marked @nextmonth_health.hookimpl (the hooks are {hooks})"
    )


def test_an_optional_hook_a_plugin_implements_for_a_later_version_is_accepted():
    class Forward(RegistersChecks):
        @hookimpl(optionalhook=True)
        def register_something_new(self, register):  # type: ignore[no-untyped-def]
            pass

    monitor = build(Forward(ScriptedCheck("forward")))
    assert "forward" in names(monitor.checks) and monitor.plugin_failures == ()


def test_the_manager_uses_real_pluggy_validation():
    monitor = build()
    assert isinstance(monitor.plugin_manager, pluggy.PluginManager)
    assert monitor.plugin_manager.project_name == "nextmonth_health"
    monitor.plugin_manager.check_pending()  # everything registered matches a spec


# Installed plugins: real distributions on sys.path.


def check_module(check_name: str, status: str = "degraded") -> str:
    return f"""
        from nextmonth_health import Reading, hookimpl

        class Probe:
            name = {check_name!r}
            interval = None
            timeout = None

            def evaluate(self, view):
                return [Reading(check=self.name, site=view.site, key="", area="portal",
                                status={status!r}, subject="A probe from an installed plugin")]

        @hookimpl
        def register_health_checks(register):
            register(Probe())
        """


async def test_an_installed_plugin_is_discovered_and_its_check_runs(make_dist: Dist):
    make_dist("nmh-cdn-probe", {"cdn": "nmh_ep_cdn"}, {"nmh_ep_cdn": check_module("cdn_delay")})
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert "cdn" in eps.names
    monitor = build(entrypoints=True)
    assert "cdn_delay" in names(monitor.checks)
    assert monitor.plugin_manager.get_plugin("cdn") is sys.modules["nmh_ep_cdn"]
    assert monitor.plugin_failures == ()
    evaluation = await monitor.evaluate()
    [reading] = [r for r in evaluation.readings if r.check == "cdn_delay"]
    assert reading.status is Health.DEGRADED
    assert [t.incident.check for t in evaluation.opened] == ["cdn_delay"]
    assert "cdn_delay" not in names(build(entrypoints=False).checks)


def test_an_installed_plugin_module_and_attribute_entry_point(make_dist: Dist):
    make_dist(
        "nmh-object-plugin",
        {"objplugin": "nmh_ep_obj:PLUGIN"},
        {
            "nmh_ep_obj": """
                from nextmonth_health import hookimpl

                class Sink:
                    name = "pager"
                    def send(self, transition):
                        pass

                class Plugin:
                    @hookimpl
                    def register_alert_sinks(self, register):
                        register(Sink())

                PLUGIN = Plugin()
            """
        },
    )
    assert "pager" in names(build(entrypoints=True).sinks)


BROKEN = """
    raise ImportError("this plugin needs a library that is not installed")
"""


def test_an_entry_point_whose_import_raises_is_reported_with_its_distribution(make_dist: Dist):
    make_dist("nmh-broken-plugin", {"broken": "nmh_ep_broken"}, {"nmh_ep_broken": BROKEN})
    make_dist(
        "nmh-good-plugin",
        {"good": "nmh_ep_good"},
        {"nmh_ep_good": check_module("good_probe", "ok")},
    )
    monitor = build(entrypoints=True)
    assert "good_probe" in names(monitor.checks)
    assert set(names(monitor.checks)) >= BUNDLED_CHECKS
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "broken",
        "load",
        "nmh-broken-plugin",
    )
    assert failure.error == "ImportError: this plugin needs a library that is not installed"
    assert monitor.status().plugin_failures == (failure,)


def test_an_entry_point_whose_hook_raises_is_reported_with_its_distribution(make_dist: Dist):
    make_dist(
        "nmh-raising-hook",
        {"raising": "nmh_ep_raising"},
        {
            "nmh_ep_raising": """
                from nextmonth_health import hookimpl

                @hookimpl
                def register_alert_sinks(register):
                    raise KeyError("webhook_url")
            """
        },
    )
    monitor = build(entrypoints=True)
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "raising",
        "register_alert_sinks",
        "nmh-raising-hook",
    )
    assert names(monitor.sinks) == ["log"]


def test_an_installed_plugin_registering_a_malformed_object_is_left_out(make_dist: Dist):
    make_dist(
        "nmh-half-check",
        {"half": "nmh_ep_half"},
        {
            "nmh_ep_half": """
                from nextmonth_health import hookimpl

                class Half:
                    name = "half"

                @hookimpl
                def register_health_checks(register):
                    register(Half())
            """
        },
    )
    monitor = build(entrypoints=True)
    assert "half" not in names(monitor.checks) and set(names(monitor.checks)) >= BUNDLED_CHECKS
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.distribution) == ("half", "nmh-half-check")
    assert "lacks what a check needs: evaluate" in failure.error
    with pytest.raises(ConfigError, match="lacks what a check needs: evaluate"):
        build(entrypoints=True, strict_plugins=True)


def test_an_installed_plugin_declaring_a_bad_signal_is_reported_and_the_rest_kept(make_dist: Dist):
    make_dist(
        "nmh-queues",
        {"queues": "nmh_ep_queues"},
        {
            "nmh_ep_queues": """
                from nextmonth_health import hookimpl

                @hookimpl
                def register_signals(register):
                    register("request")
                    register("queues.wait")
            """
        },
    )
    monitor = build(entrypoints=True)
    assert monitor.signals[-1] == "queues.wait" and "request" not in monitor.recorder.declared
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution) == (
        "queues",
        "register_signals",
        "nmh-queues",
    )
    assert failure.error.startswith("declared the signal 'request', which is built in")
    with pytest.raises(ConfigError, match="^plugin 'queues' declared the signal 'request', which is built in"):
        build(entrypoints=True, strict_plugins=True)


def test_trace_hooks_logs_what_each_plugin_registered(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_TRACE_HOOKS", "1")
    with capture_logs() as logs:
        build(RegistersChecks(ScriptedCheck("traced")))
    calls = [e for e in logs if e["event"] == "nextmonth_health.hook_call"]
    assert {"hook": "register_health_checks", "registered": ["traced"]}.items() <= next(
        e for e in calls if e["registered"] == ["traced"]
    ).items()
    assert {e["hook"] for e in calls} == {
        "register_health_checks",
        "register_alert_sinks",
        "register_message_renderers",
    }
    monkeypatch.delenv("NEXTMONTH_HEALTH_TRACE_HOOKS")
    with capture_logs() as quiet:
        build()
    assert not [e for e in quiet if e["event"] == "nextmonth_health.hook_call"]


def test_strict_plugins_env_makes_a_broken_entry_point_raise(make_dist: Dist, monkeypatch: pytest.MonkeyPatch):
    make_dist("nmh-broken-plugin", {"broken": "nmh_ep_broken_strict"}, {"nmh_ep_broken_strict": BROKEN})
    monkeypatch.setenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", "1")
    with pytest.raises(ImportError, match="needs a library"):
        build(entrypoints=True)
    with pytest.raises(ImportError, match="needs a library"):
        build(entrypoints=True, strict_plugins=True)
    monkeypatch.setenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", "0")
    assert build(entrypoints=True).plugin_failures[0].name == "broken"


def test_strict_plugins_argument_overrides_the_env(make_dist: Dist, monkeypatch: pytest.MonkeyPatch):
    make_dist("nmh-broken-plugin", {"broken": "nmh_ep_broken_arg"}, {"nmh_ep_broken_arg": BROKEN})
    monkeypatch.setenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", "1")
    assert build(entrypoints=True, strict_plugins=False).plugin_failures[0].name == "broken"


@pytest.fixture
def three_plugins(make_dist: Dist) -> None:
    make_dist("nmh-alpha", {"alpha": "nmh_ep_alpha"}, {"nmh_ep_alpha": check_module("alpha_probe", "ok")})
    make_dist("nmh-beta", {"beta": "nmh_ep_beta"}, {"nmh_ep_beta": check_module("beta_probe", "ok")})
    make_dist("nmh-gamma", {"gamma": "nmh_ep_gamma"}, {"nmh_ep_gamma": BROKEN})


@pytest.mark.usefixtures("three_plugins")
def test_all_installed_plugins_load_without_env():
    monitor = build(entrypoints=True)
    assert {"alpha_probe", "beta_probe"} <= set(names(monitor.checks))
    assert [f.name for f in monitor.plugin_failures] == ["gamma"]


@pytest.mark.usefixtures("three_plugins")
@pytest.mark.parametrize(
    ("allow", "loaded"),
    [
        ("alpha", {"alpha_probe"}),
        (" beta , alpha ", {"alpha_probe", "beta_probe"}),
        ("", set()),
        ("zeta", set()),
    ],
)
def test_load_plugins_env_is_an_allow_list(monkeypatch: pytest.MonkeyPatch, allow: str, loaded: set[str]):
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", allow)
    monitor = build(entrypoints=True)
    assert set(names(monitor.checks)) == BUNDLED_CHECKS | loaded
    assert monitor.plugin_failures == ()  # the broken one was never imported
    assert "nmh_ep_gamma" not in sys.modules


@pytest.mark.usefixtures("three_plugins")
def test_disable_plugins_env_is_a_block_list(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", "gamma,beta")
    monitor = build(entrypoints=True)
    assert set(names(monitor.checks)) == BUNDLED_CHECKS | {"alpha_probe"}
    assert monitor.plugin_failures == ()
    assert "nmh_ep_gamma" not in sys.modules and "nmh_ep_beta" not in sys.modules


@pytest.mark.usefixtures("three_plugins")
def test_block_list_wins_over_allow_list(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEXTMONTH_HEALTH_LOAD_PLUGINS", "alpha,beta")
    monkeypatch.setenv("NEXTMONTH_HEALTH_DISABLE_PLUGINS", "beta")
    assert set(names(build(entrypoints=True).checks)) == BUNDLED_CHECKS | {"alpha_probe"}


TYPO = """
    from nextmonth_health import hookimpl

    class Sink:
        name = "typo_sink"
        def send(self, transition):
            pass

    @hookimpl
    def register_health_check(register):  # missing the final "s"
        pass

    @hookimpl
    def register_alert_sinks(register):  # fine on its own, left out with its plugin
        register(Sink())
"""
TYPO_ERROR = "'register_health_check' is not a nextmonth_health hook; did you mean 'register_health_checks'?"


@pytest.fixture
def typo_and_sibling(make_dist: Dist) -> None:
    """One distribution, two entry points: one misspelt hook, and a sibling that works."""
    make_dist(
        "nmh-typo",
        {"typo": "nmh_ep_typo", "sibling": "nmh_ep_sibling"},
        {"nmh_ep_typo": TYPO, "nmh_ep_sibling": check_module("sibling_probe", "degraded")},
    )


@pytest.mark.usefixtures("typo_and_sibling")
async def test_an_installed_plugin_with_a_misspelt_hook_is_reported_and_left_out_while_its_sibling_loads():
    with capture_logs() as logs:
        monitor = build(entrypoints=True)
    [failure] = monitor.plugin_failures
    assert failure == PluginFailure("typo", "hooks", TYPO_ERROR, "nmh-typo", "nmh_ep_typo")
    assert failure.message == f"plugin 'typo' (entry point typo = nmh_ep_typo, distribution nmh-typo): {TYPO_ERROR}"
    assert monitor.status().plugin_failures == (failure,)
    [logged] = [e for e in logs if e["event"] == "nextmonth_health.plugin_failed"]
    assert {
        "log_level": "warning",
        "plugin": "typo",
        "where": "hooks",
        "distribution": "nmh-typo",
        "entry_point": "nmh_ep_typo",
        "error": TYPO_ERROR,
    }.items() <= logged.items()
    pm = monitor.plugin_manager
    assert pm.get_plugin("typo") is None and pm.get_plugin("sibling") is sys.modules["nmh_ep_sibling"]
    assert "typo_sink" not in names(monitor.sinks)  # the whole plugin is out, not only its bad hook
    pm.check_pending()
    evaluation = await monitor.evaluate()
    assert [t.incident.check for t in evaluation.opened] == ["sibling_probe"]


@pytest.mark.usefixtures("typo_and_sibling")
def test_strict_mode_raises_a_misspelt_installed_hook_with_the_same_message(monkeypatch: pytest.MonkeyPatch):
    reported = build(entrypoints=True).plugin_failures[0].message
    with pytest.raises(ConfigError) as info:
        build(entrypoints=True, strict_plugins=True)
    assert str(info.value) == reported
    monkeypatch.setenv("NEXTMONTH_HEALTH_STRICT_PLUGINS", "1")
    with pytest.raises(ConfigError) as info:
        build(entrypoints=True)
    assert str(info.value) == reported


def test_the_docs_show_what_an_installed_misspelt_hook_is_reported_as(make_dist: Dist):
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    marker = (
        "<!-- tested-by: tests/test_plugins.py::test_the_docs_show_what_an_installed_misspelt_hook_is_reported_as -->"
    )
    [shown] = re.findall(rf"{re.escape(marker)}\n```text\n(.*?)\n```", docs, re.DOTALL)
    make_dist(
        "acme-health",
        {"acme": "acme_health"},
        {
            "acme_health": "from nextmonth_health import hookimpl\n\n@hookimpl\ndef register_health_check(register):\n    pass\n"
        },
    )
    [failure] = build(entrypoints=True).plugin_failures
    assert failure.message == shown


def test_an_installed_hook_asking_for_an_argument_the_spec_lacks_is_reported_and_left_out(make_dist: Dist):
    make_dist(
        "nmh-wrong-argument",
        {"monitr": "nmh_ep_monitr"},
        {
            "nmh_ep_monitr": """
                from nextmonth_health import hookimpl

                @hookimpl
                def register_health_checks(register):  # fine on its own, left out with its plugin
                    raise AssertionError("never called")

                @hookimpl
                def register_alert_sinks(register, monitr):
                    pass
            """
        },
    )
    monitor = build(entrypoints=True)
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.distribution, failure.entry_point) == (
        "monitr",
        "hooks",
        "nmh-wrong-argument",
        "nmh_ep_monitr",
    )
    assert (
        failure.error == "register_alert_sinks asks for 'monitr', which the hook does not pass; did you mean 'monitor'?"
    )
    assert set(names(monitor.checks)) == BUNDLED_CHECKS and monitor.plugin_manager.get_plugin("monitr") is None
    with pytest.raises(ConfigError, match="asks for 'monitr'"):
        build(entrypoints=True, strict_plugins=True)


def test_an_installed_plugin_that_implements_no_hook_is_reported(make_dist: Dist):
    make_dist(
        "nmh-lazy",
        {"unmarked": "nmh_ep_unmarked", "empty": "nmh_ep_empty"},
        {
            "nmh_ep_unmarked": """
                def register_health_checks(register):  # the decorator is missing
                    raise AssertionError("never called")
            """,
            "nmh_ep_empty": '"""A plugin whose author has not written it yet."""',
        },
    )
    monitor = build(entrypoints=True)
    errors = {f.name: (f.where, f.distribution, f.error) for f in monitor.plugin_failures}
    hooks = ", ".join(sorted(hookspec_names()))
    assert errors == {
        "unmarked": (
            "hooks",
            "nmh-lazy",
            "no hook implementation: 'register_health_checks' is not marked @nextmonth_health.hookimpl",
        ),
        "empty": (
            "hooks",
            "nmh-lazy",
            f"no hook implementation: nothing in it is marked @nextmonth_health.hookimpl (the hooks are {hooks})",
        ),
    }
    assert monitor.plugin_manager.get_plugin("unmarked") is None


def test_an_installed_plugin_object_that_raises_when_looked_at_is_reported(make_dist: Dist):
    make_dist(
        "nmh-odd",
        {"odd": "nmh_ep_odd:PLUGIN", "fine": "nmh_ep_fine"},
        {
            "nmh_ep_odd": """
                class Odd:
                    def __dir__(self):
                        raise RuntimeError("lazy attributes failed")

                PLUGIN = Odd()
            """,
            "nmh_ep_fine": check_module("fine_probe", "ok"),
        },
    )
    monitor = build(entrypoints=True)
    [failure] = monitor.plugin_failures
    assert (failure.name, failure.where, failure.error) == ("odd", "hooks", "RuntimeError: lazy attributes failed")
    assert "fine_probe" in names(monitor.checks)
    with pytest.raises(RuntimeError, match="lazy attributes failed"):
        build(entrypoints=True, strict_plugins=True)


def test_an_installed_plugin_also_named_in_code_is_registered_once_and_not_reported(make_dist: Dist):
    make_dist("nmh-both", {"both": "nmh_ep_both"}, {"nmh_ep_both": check_module("both_probe", "ok")})
    monitor = build("nmh_ep_both", entrypoints=True)
    assert monitor.plugin_failures == ()
    assert names(monitor.checks).count("both_probe") == 1


# Checks that fail at evaluation time.


class RaisingCheck:
    name = "boom"
    interval = None
    timeout = None

    def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        raise ZeroDivisionError("division by zero in a plugin")


class HangingCheck:
    name = "hangs"
    interval = None
    timeout = 0.05  # real seconds: the one short real wait in the suite

    async def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


class AsyncCheck:
    name = "async_probe"
    interval = None
    timeout = None

    async def evaluate(self, view: nmh.SiteView) -> list[Reading]:
        await anyio.lowlevel.checkpoint()
        return [
            Reading(
                check=self.name,
                site=view.site,
                key="",
                area="portal",
                status="degraded",
                subject="db",
            )
        ]


async def test_a_check_that_raises_becomes_a_failure_and_others_still_read():
    monitor = build(RegistersChecks(RaisingCheck(), ScriptedCheck("after", "degraded")))
    evaluation = await monitor.evaluate()
    assert [(f.site, f.check, f.error) for f in evaluation.failures] == [
        ("acme", "boom", "ZeroDivisionError: division by zero in a plugin")
    ]
    assert {r.check for r in evaluation.readings} == BUNDLED_CHECKS | {"after"}
    assert [t.incident.check for t in evaluation.opened] == ["after"]
    assert monitor.errors.counts["check.boom"] == 1
    await monitor.evaluate()
    assert monitor.errors.counts["check.boom"] == 2


async def test_a_hanging_async_check_is_cancelled_by_its_timeout():
    monitor = build(RegistersChecks(HangingCheck(), AsyncCheck(), ScriptedCheck("sync_probe", "ok")))
    with anyio.fail_after(5):  # a safety net: the pass itself must not hang
        evaluation = await monitor.evaluate()
    [failure] = evaluation.failures
    assert (failure.site, failure.check) == ("acme", "hangs")
    assert failure.error.startswith("TimeoutError")
    assert {r.check for r in evaluation.readings} == BUNDLED_CHECKS | {"async_probe", "sync_probe"}
    assert [t.incident.check for t in evaluation.opened] == ["async_probe"]
    assert monitor.errors.counts["check.hangs"] == 1


async def test_a_check_returning_malformed_readings_is_a_failure():
    class WrongSite(ScriptedCheck):
        def evaluate(self, view: nmh.SiteView) -> list[Reading]:
            return [
                Reading(
                    check=self.name,
                    site="someone-else",
                    key="",
                    area="portal",
                    status="critical",
                    subject="x",
                )
            ]

    class NotReadings(ScriptedCheck):
        def evaluate(self, view: nmh.SiteView) -> list[Any]:
            return ["critical"]

    monitor = build(RegistersChecks(WrongSite("wrong_site"), NotReadings("not_readings")))
    evaluation = await monitor.evaluate()
    errors = {f.check: f.error for f in evaluation.failures}
    assert errors["wrong_site"].startswith("ValueError")
    assert errors["not_readings"] == "TypeError: check 'not_readings' returned str, not a Reading"
    assert evaluation.opened == []


async def test_a_failed_check_neither_opens_nor_resolves_incidents():
    check = ScriptedCheck("flappy", status="degraded")
    monitor = build(RegistersChecks(check))
    assert len((await monitor.evaluate()).opened) == 1

    def explode(view: nmh.SiteView) -> list[Reading]:
        raise RuntimeError("probe lost")

    check.evaluate = explode  # type: ignore[method-assign]
    for _ in range(40):
        monitor.clock.advance(60)  # type: ignore[attr-defined]
        evaluation = await monitor.evaluate()
        assert evaluation.transitions == ()
    [incident] = monitor.incidents(include_resolved=False)
    assert (incident.check, incident.severity) == (
        "flappy",
        Severity.DEGRADED,
    )  # not escalated, not resolved


# Renderers.


class ExplodingRenderer:
    name = "exploding"
    areas = None

    def render(self, incident: nmh.Incident) -> nmh.Notice:
        raise RuntimeError("template missing")


class DeclinesRenderer:
    name = "declines"
    areas = None

    def render(self, incident: nmh.Incident) -> None:
        return None


async def test_a_raising_renderer_falls_back_to_the_bundled_notice():
    monitor = build(
        RegistersRenderers(ExplodingRenderer()),
        RegistersChecks(ScriptedCheck("probe", "degraded", "uploads")),
    )
    await monitor.evaluate()
    [notice] = monitor.notices("uploads")
    assert (notice.title, notice.message) == TEMPLATES["uploads"][Severity.DEGRADED]
    assert monitor.errors.counts["renderer.exploding"] == 1


async def test_a_renderer_returning_none_lets_the_next_one_answer():
    monitor = build(
        RegistersRenderers(FixedRenderer("second", None, title="Second voice")),
        RegistersRenderers(DeclinesRenderer()),  # plugins listed last are asked first
        RegistersChecks(ScriptedCheck("probe", "critical", "bookings")),
    )
    assert names(monitor.renderers) == ["declines", "second", "cinematic"]
    await monitor.evaluate()
    [notice] = monitor.notices("bookings")
    assert notice.title == "Second voice"
    assert monitor.errors.total == 0


# Every hook has a test.

HOOK_TESTS: dict[str, Callable[..., Any]] = {
    "register_health_checks": test_register_health_checks_from_an_in_code_plugin_object,
    "register_alert_sinks": test_register_alert_sinks_from_an_in_code_plugin_object,
    "register_message_renderers": test_register_message_renderers_from_an_in_code_plugin_object,
    "register_routes": test_register_routes_from_an_in_code_plugin_object,
    "register_signals": test_register_signals_from_an_in_code_plugin_object,
}


def hookspec_names() -> set[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {name for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, marker)}


def test_every_hook_has_a_test():
    specs = hookspec_names()
    assert {"register_health_checks", "register_alert_sinks", "register_message_renderers"} <= specs
    assert set(HOOK_TESTS) == specs, f"hooks without a test: {sorted(specs - set(HOOK_TESTS))}"
    module = sys.modules[__name__]
    for hook, test in HOOK_TESTS.items():
        assert test.__name__.startswith("test_")
        assert getattr(module, test.__name__) is test
        registered_by = {
            "register_health_checks": RegistersChecks,
            "register_alert_sinks": RegistersSinks,
            "register_message_renderers": RegistersRenderers,
            "register_routes": RegistersRoutes,
            "register_signals": RegistersSignals,
        }.get(hook)
        source = inspect.getsource(test)
        assert registered_by is not None and registered_by.__name__ in source, hook
        assert hook in inspect.getsource(registered_by)


def test_every_hookspec_is_documented():
    for name in hookspec_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert ":param register:" in doc and ".. versionadded::" in doc, name
