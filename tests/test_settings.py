"""Configuration mistakes fail fast at ``Monitor(...)``, with a message that says what to fix."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

import nextmonth_health as nmh
from nextmonth_health import ConfigError
from nextmonth_health.settings import DEFAULT_ROUTES, Settings
from nextmonth_health.testing import FakeClock


def make(**kwargs: Any) -> nmh.Monitor:
    kwargs.setdefault("store", "memory://")
    kwargs.setdefault("clock", FakeClock())
    kwargs.setdefault("load_entrypoints", False)
    return nmh.Monitor("acme", **kwargs)


def config_error(**kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    return str(info.value)


def test_config_error_is_a_value_error_and_exported_at_the_root():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, nmh.NextMonthHealthError)
    assert nmh.ConfigError is ConfigError


def test_defaults_build_and_match_the_seed():
    monitor = make()
    s = monitor.settings
    assert isinstance(s, Settings)
    assert (s.bucket_seconds, s.window_seconds, s.baseline_seconds) == (10, 300, 3600)
    assert (s.page_load_slow_seconds, s.upload_failure_ratio, s.escalate_after) == (3.0, 0.10, 600.0)
    assert dict(s.routes) == dict(DEFAULT_ROUTES)


# Unknown settings.


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("bucket_second", "bucket_seconds"),
        ("windows_seconds", "window_seconds"),
        ("upload_failure_rate", "upload_failure_ratio"),
        ("page_load_slow", "page_load_slow_seconds"),
    ],
)
def test_unknown_setting_suggests_the_closest_name(typo, meant):
    message = config_error(**{typo: 1})
    assert f"unknown setting {typo!r}" in message
    assert f"did you mean {meant!r}" in message


def test_unknown_setting_with_nothing_close_lists_the_known_ones():
    message = config_error(zzzzqqq=1)
    assert "unknown setting 'zzzzqqq'" in message
    assert "known settings:" in message
    assert "bucket_seconds" in message and "window_seconds" in message


# Wrong types and values.


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("tick_seconds", "15", "tick_seconds must be a positive number"),
        ("tick_seconds", 0, "tick_seconds must be a positive number"),
        ("tick_seconds", -1.0, "tick_seconds must be a positive number"),
        ("tick_seconds", math.nan, "tick_seconds must be a positive number"),
        ("tick_seconds", math.inf, "tick_seconds must be a positive number"),
        ("tick_seconds", True, "tick_seconds must be a positive number"),
        ("tick_seconds", None, "tick_seconds must be a positive number"),
        ("bucket_seconds", 10.5, "bucket_seconds must be a whole number of at least 1"),
        ("bucket_seconds", 0, "bucket_seconds must be a whole number of at least 1"),
        ("buffer_capacity", "500", "buffer_capacity must be a whole number of at least 1"),
        ("max_sites", False, "max_sites must be a whole number of at least 1"),
        ("api_error_min_count", 2.0, "api_error_min_count must be a whole number of at least 1"),
        ("page_load_slow_seconds", "3s", "page_load_slow_seconds must be a positive number"),
    ],
)
def test_wrong_types_and_values_name_the_setting_and_what_is_accepted(name, value, says):
    message = config_error(**{name: value})
    assert says in message
    assert repr(value) in message


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, math.nan, "0.1", True, None])
@pytest.mark.parametrize("name", ["alpha", "upload_failure_ratio", "api_error_critical_ratio"])
def test_ratios_must_lie_strictly_between_zero_and_one(name, value):
    assert f"{name} must be a ratio between 0 and 1" in config_error(**{name: value})


# Thresholds that contradict each other.


@pytest.mark.parametrize(
    ("overrides", "low", "high"),
    [
        ({"api_error_recovery_ratio": 0.3}, "api_error_recovery_ratio", "api_error_ratio"),
        ({"api_error_recovery_ratio": 0.2, "api_error_ratio": 0.2}, "api_error_recovery_ratio", "api_error_ratio"),
        ({"api_error_ratio": 0.3, "api_error_critical_ratio": 0.3}, "api_error_ratio", "api_error_critical_ratio"),
        ({"upload_recovery_ratio": 0.10}, "upload_recovery_ratio", "upload_failure_ratio"),
        ({"upload_failure_ratio": 0.5}, "upload_failure_ratio", "upload_critical_ratio"),
        ({"page_load_recovery_seconds": 3.0}, "page_load_recovery_seconds", "page_load_slow_seconds"),
        ({"page_load_recovery_seconds": 4.0}, "page_load_recovery_seconds", "page_load_slow_seconds"),
        ({"page_load_slow_seconds": 7.0}, "page_load_slow_seconds", "page_load_critical_seconds"),
        ({"session_recovery_factor": 3.0}, "session_recovery_factor", "session_spike_factor"),
        ({"session_spike_factor": 12.0}, "session_spike_factor", "session_critical_factor"),
    ],
)
def test_recovery_lines_must_sit_below_trigger_lines(overrides, low, high):
    message = config_error(**overrides)
    assert f"{low} (" in message
    assert f"must be below {high} (" in message


def test_consistent_threshold_changes_are_accepted():
    monitor = make(upload_recovery_ratio=0.2, upload_failure_ratio=0.3, upload_critical_ratio=0.5)
    assert (monitor.settings.upload_failure_ratio, monitor.settings.upload_critical_ratio) == (0.3, 0.5)


def test_history_must_cover_window_plus_baseline():
    message = config_error(history_seconds=3000)
    assert "history_seconds (3000) must be at least window_seconds + baseline_seconds (3900)" in message
    message = config_error(baseline_seconds=7200)
    assert "history_seconds (7200)" in message and "(7500)" in message
    assert make(history_seconds=3900).settings.history_seconds == 3900


def test_window_and_baseline_must_be_whole_buckets():
    message = config_error(window_seconds=305)
    assert "whole multiples of bucket_seconds" in message
    assert make(bucket_seconds=60, window_seconds=300).settings.bucket_seconds == 60


# Routes and path lists.


@pytest.mark.parametrize(
    ("routes", "says"),
    [
        ({"media-upload": "uploads"}, "'media-upload' must start with '/' (did you mean '/media-upload'?)"),
        ({5: "uploads"}, "routes: 5 is not a route; a route is a path starting with '/' ('/payments') or a method"),
        ({"/media-upload": ""}, "the area for '/media-upload' must be a non-empty string"),
        ({"/media-upload": None}, "the area for '/media-upload' must be a non-empty string"),
        ("/media-upload", "routes must map a route to an area"),
        (["/media-upload"], "routes must map a route to an area"),
        ({"PSOT /payments/webhook": "payments"}, "'PSOT' is not an HTTP method; did you mean 'POST'?"),
        ({"post /payments/webhook": "payments"}, "write the method in capitals: 'POST /payments/webhook'"),
        ({"FETCH /payments": "payments"}, "methods: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE"),
        ({"POST payments/webhook": "payments"}, "the path after the method must start with '/'"),
        ({"/payments/webhook POST": "payments"}, "to give a method, put it first: 'POST /payments/webhook'"),
        ({"/payments/webhook\tPOST": "payments"}, "has a control character in its path"),
        (
            {"/payments?kind=card": "payments"},
            "without a query or fragment (requests are matched on their path alone): '/payments'",
        ),
    ],
)
def test_bad_routes_say_what_a_route_looks_like(routes, says):
    assert says in config_error(routes=routes)


@pytest.mark.parametrize("value", ["/bookings", ["bookings"], [None], 5, None])
def test_bad_page_lists_say_what_is_expected(value):
    assert "expected a list of paths starting with '/'" in config_error(dashboard_pages=value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("/bookings", "critical_routes: expected a list of routes ('/bookings', 'POST /payments/webhook')"),
        (5, "critical_routes: expected a list of routes"),
        (None, "critical_routes: expected a list of routes"),
        (["bookings"], "critical_routes: 'bookings' must start with '/' (did you mean '/bookings'?)"),
        ([None], "critical_routes: None is not a route"),
        (["PSOT /payments"], "critical_routes: 'PSOT /payments': 'PSOT' is not an HTTP method; did you mean 'POST'?"),
    ],
)
def test_bad_critical_routes_say_what_is_expected(value, says):
    assert says in config_error(critical_routes=value)


def test_critical_routes_may_name_a_method():
    monitor = make(critical_routes=["/bookings", "POST /payments/webhook"])
    assert monitor.settings.critical_routes == ("/bookings", "POST /payments/webhook")
    assert monitor.settings.route_for("POST /payments/webhook/7") == "POST /payments/webhook"
    assert monitor.settings.route_for("GET /payments/webhook") is None


def test_dashboard_pages_cannot_be_empty():
    assert "dashboard_pages" in config_error(dashboard_pages=[])


def test_routes_accept_any_mapping_and_are_read_only():
    monitor = make(routes={"/files": "uploads"}, critical_routes=("/files",))
    assert monitor.settings.routes["/files"] == "uploads"
    assert monitor.settings.critical_routes == ("/files",)
    with pytest.raises(TypeError):
        monitor.settings.routes["/x"] = "y"  # type: ignore[index]


def test_routes_add_to_the_defaults_and_win_where_they_meet():
    monitor = make(routes={"/files": "uploads", "/portal": "clients", "POST /payments/webhook": "payments"})
    assert dict(monitor.settings.routes) == {
        **DEFAULT_ROUTES,
        "/files": "uploads",
        "/portal": "clients",
        "POST /payments/webhook": "payments",
    }
    assert monitor.settings.replace_routes is False


def test_replace_routes_makes_routes_the_whole_table():
    monitor = make(routes={"/files": "uploads"}, replace_routes=True, critical_routes=("/files",))
    assert dict(monitor.settings.routes) == {"/files": "uploads"}
    assert monitor.settings.route_for("/bookings/3") is None
    assert monitor.settings.area_for("/files/9") == "uploads"


@pytest.mark.parametrize("where", ["monitor", "site"])
def test_replace_routes_without_routes_says_what_it_needs(where):
    if where == "monitor":
        message = config_error(replace_routes=True)
    else:
        message = config_error(sites={"tiny": {"replace_routes": True}})
        assert message.startswith("sites['tiny']: ")
    assert "replace_routes=True needs routes: the routes to watch instead of the bundled ones" in message


def test_replace_routes_must_be_a_bool():
    assert "replace_routes must be True or False, got 'yes'" in config_error(routes={"/x": "y"}, replace_routes="yes")


def test_a_sites_routes_add_to_the_monitors_unless_it_replaces_them():
    monitor = make(
        routes={"/files": "uploads"},
        sites={
            "shop": {"routes": {"/cart": "checkout"}},
            "tiny": {"routes": {"/cart": "checkout"}, "replace_routes": True},
            "plain": {"alpha": 0.001},
        },
    )
    assert dict(monitor.settings_for("shop").routes) == {**DEFAULT_ROUTES, "/files": "uploads", "/cart": "checkout"}
    assert dict(monitor.settings_for("tiny").routes) == {"/cart": "checkout"}
    assert monitor.settings_for("plain").routes == monitor.settings.routes
    replaced = make(
        routes={"/files": "uploads"}, replace_routes=True, sites={"shop": {"routes": {"/cart": "checkout"}}}
    )
    assert dict(replaced.settings_for("shop").routes) == {"/files": "uploads", "/cart": "checkout"}


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ("quiet", "notice_overrides must map an area"),
        ({"uploads": "quiet"}, "notice_overrides['uploads'] must be a mapping with 'title' and/or 'message'"),
        ({"uploads": {}}, "notice_overrides['uploads'] must be a mapping with 'title' and/or 'message'"),
        ({"uploads": {"body": "x"}}, "notice_overrides['uploads'] must be a mapping with 'title' and/or 'message'"),
        ({"uploads": {"title": 5}}, "notice_overrides['uploads']"),
        ({"uploads": {"message": ""}}, "notice_overrides['uploads']"),
    ],
)
def test_bad_notice_overrides(overrides, says):
    assert says in config_error(notice_overrides=overrides)


def test_plugin_settings_must_be_a_mapping():
    assert "plugin_settings" in config_error(plugin_settings=5)
    assert dict(make(plugin_settings={"cdn": {"url": "https://cdn"}}).settings.plugin_settings) == {
        "cdn": {"url": "https://cdn"}
    }


# Per-site overrides.


def test_site_overrides_apply_only_to_their_site():
    monitor = make(
        api_error_min_count=7,
        sites={"tiny": {"api_error_min_count": 10, "upload_min_attempts": 3}, "quiet": {"alpha": 0.0001}},
    )
    tiny = monitor.settings_for("tiny")
    assert (tiny.api_error_min_count, tiny.upload_min_attempts) == (10, 3)
    assert tiny.alpha == monitor.settings.alpha
    assert monitor.settings_for("quiet").alpha == 0.0001
    assert monitor.settings_for("quiet").api_error_min_count == 7  # inherits the monitor-wide value
    for other in ("acme", None, "unknown-site"):
        assert monitor.settings_for(other) is monitor.settings
        assert monitor.settings_for(other).api_error_min_count == 7
        assert monitor.settings_for(other).upload_min_attempts == 10


def test_site_overrides_can_name_the_default_site():
    monitor = make(sites={"acme": {"page_load_slow_seconds": 4.0}})
    assert monitor.settings_for().page_load_slow_seconds == 4.0
    assert monitor.settings.page_load_slow_seconds == 3.0


def test_site_override_with_an_unknown_name_names_the_site_and_suggests():
    message = config_error(sites={"tiny": {"api_error_min_cnt": 10}})
    assert message.startswith("sites['tiny']: ")
    assert "unknown setting 'api_error_min_cnt'" in message
    assert "did you mean 'api_error_min_count'" in message


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"api_error_min_count": 0}, "api_error_min_count must be a whole number of at least 1"),
        ({"upload_failure_ratio": 2}, "upload_failure_ratio must be a ratio between 0 and 1"),
        ({"upload_recovery_ratio": 0.2}, "upload_recovery_ratio (0.2) must be below upload_failure_ratio (0.1)"),
        ({"routes": {"bookings": "bookings"}}, "'bookings' must start with '/'"),
        ({"routes": {"PSOT /pay": "payments"}}, "'PSOT' is not an HTTP method; did you mean 'POST'?"),
        ({"critical_routes": 5}, "critical_routes: expected a list of routes"),
        ({"baseline_seconds": 7200}, "history_seconds"),
    ],
)
def test_site_override_with_a_bad_value_names_the_site(override, says):
    message = config_error(sites={"tiny": override})
    assert message.startswith("sites['tiny']: ")
    assert says in message


@pytest.mark.parametrize("name", ["buffer_capacity", "max_sites", "tick_seconds", "flush_seconds", "history_seconds"])
def test_site_overrides_of_monitor_wide_settings_are_refused(name):
    value = {"history_seconds": 10_000, "tick_seconds": 5.0, "flush_seconds": 2.0}.get(name, 100)
    message = config_error(sites={"tiny": {name: value}})
    assert message.startswith("sites['tiny']: ")
    assert f"{name} applies to the whole monitor" in message
    assert make(**{name: value}).settings_for("tiny") is not None


@pytest.mark.parametrize(
    ("sites", "says"),
    [
        ({"tiny": 5}, "sites['tiny'] must be a mapping of setting names to values"),
        ({"tiny": ["api_error_min_count"]}, "sites['tiny'] must be a mapping of setting names to values"),
        (["tiny"], "sites must map a site name to its setting overrides"),
        ("tiny", "sites must map a site name to its setting overrides"),
        ({"": {"alpha": 0.01}}, "sites: site names must be non-empty strings"),
        ({5: {"alpha": 0.01}}, "sites: site names must be non-empty strings"),
    ],
)
def test_bad_sites_argument(sites, says):
    assert says in config_error(sites=sites)


# Stores, clocks, site names.


@pytest.mark.parametrize("url", ["postgres://db/health", "memory", "memory:/", "", "sqlite3:///x.db"])
def test_bad_store_url_lists_the_known_schemes(url):
    message = config_error(store=url)
    assert f"unknown store URL {url!r}" in message
    assert "memory://" in message


@pytest.mark.parametrize("store", [5, object(), b"memory://"])
def test_store_must_be_a_url_or_a_store(store):
    assert "store must be a URL string like 'memory://' or a Store object" in config_error(store=store)


def test_a_store_object_is_used_as_given():
    from nextmonth_health.store import MemoryStore

    store = MemoryStore()
    assert make(store=store).store is store
    assert make(store="memory://").store.url == "memory://"


def test_a_store_object_whose_write_takes_no_batch_is_refused_at_start_up():
    from nextmonth_health.store import MemoryStore

    class OldStore(MemoryStore):
        def write(self, buckets):  # type: ignore[override]
            super().write(buckets)

    class OpenStore(MemoryStore):
        def write(self, buckets, **options):  # type: ignore[override]
            super().write(buckets)

    message = config_error(store=OldStore())
    assert "OldStore.write must accept a keyword argument 'batch'" in message
    assert "write(self, buckets, *, batch=None)" in message
    store = OpenStore()
    assert make(store=store).store is store


class SyncSleepClock:
    def now(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.mark.parametrize("clock", [object(), time.time, time, 12.0, SyncSleepClock()], ids=repr)
def test_bad_clock_says_what_a_clock_needs(clock):
    assert "clock must have now() and async sleep()" in config_error(clock=clock)


def test_fake_clock_and_default_system_clock_are_accepted():
    clock = FakeClock()
    assert make(clock=clock).clock is clock
    assert isinstance(nmh.Monitor("acme", store="memory://", load_entrypoints=False).clock, nmh.SystemClock)


@pytest.mark.parametrize("site", ["", None, 5, "x" * 101])
def test_bad_default_site_name(site):
    with pytest.raises(ConfigError, match="site must be a non-empty name of at most 100 characters"):
        nmh.Monitor(site, store="memory://", clock=FakeClock(), load_entrypoints=False)


def test_settings_are_frozen():
    monitor = make()
    with pytest.raises(AttributeError):
        monitor.settings.bucket_seconds = 5  # type: ignore[misc]


def test_every_setting_explains_itself():
    import attrs

    for field in attrs.fields(Settings):
        assert len(field.metadata.get("help", "")) > 10, field.name
