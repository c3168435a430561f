"""Routes with and without a method: how requests fold into them, on every store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nextmonth_health as nmh
from nextmonth_health import signals as sig
from nextmonth_health.record.routes import METHODS, RouteTable, parse_route, split_request
from nextmonth_health.settings import DEFAULT_ROUTES
from nextmonth_health.testing import FakeClock

from .redis_server import RedisServer

TABLE = {
    "/payments": "payments",
    "POST /payments/webhook": "payments",
    "DELETE /payments": "refunds",
    "/payments/webhook/": "payments",
    "/": "site",
}


def keys_recorded(monitor: nmh.Monitor, signal: str = sig.REQUEST) -> dict[str, int]:
    found: dict[str, int] = {}
    for bucket in monitor.store.read(monitor.site, signal, 0, 10**10):
        found[bucket.key] = found.get(bucket.key, 0) + bucket.total
    return found


@pytest.mark.parametrize(
    ("path", "method", "route"),
    [
        ("/payments/webhook", "POST", "POST /payments/webhook"),
        ("/payments/webhook/stripe", "POST", "POST /payments/webhook"),
        ("/payments/webhook", "GET", "/payments"),
        ("/payments/webhook", None, "/payments"),
        ("/payments/webhook/x", "GET", "/payments/webhook/"),
        ("/payments/webhook/", "POST", "POST /payments/webhook"),
        ("/payments", "DELETE", "DELETE /payments"),  # method-specific beats method-less on one prefix
        ("/payments/7", "DELETE", "DELETE /payments"),
        ("/payments", "PATCH", "/payments"),
        ("/paymentsX", "POST", "/"),
        ("/elsewhere", None, "/"),
    ],
)
def test_the_longest_prefix_wins_and_a_method_only_matches_its_own(path, method, route):
    assert RouteTable.build(TABLE).match(path, method) == route


def _reference(table: dict[str, str], path: str, method: str | None) -> str | None:
    """The rule spelt out: of every route that matches, the longest prefix (trailing slashes
    aside), then method-specific, then the longer as written."""
    best, rank = None, (-1, False, -1)
    for route in table:
        route_method, prefix = parse_route(route)
        if route_method not in (None, method):
            continue
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            candidate = (len(prefix.rstrip("/")), route_method is not None, len(prefix))
            if candidate > rank:
                best, rank = route, candidate
    return best


_segments = st.sampled_from(["a", "b", "api", "v2", "", "files"])
_paths = st.lists(_segments, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
_routes = st.tuples(st.sampled_from([None, "GET", "POST"]), _paths).map(
    lambda mp: mp[1] if mp[0] is None else f"{mp[0]} {mp[1]}"
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_routes, st.just("area"), max_size=8), _paths, st.sampled_from([None, "GET", "POST", "PUT"]))
def test_the_precompiled_lookup_matches_the_rule_spelt_out(table, path, method):
    assert RouteTable.build(table).match(path, method) == _reference(table, path, method)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("/bookings/42", (None, "/bookings/42")),
        ("POST /payments/webhook", ("POST", "/payments/webhook")),
        ("M-SEARCH /upnp", ("M-SEARCH", "/upnp")),  # any method a client sends folds somewhere
        ("POST payments", None),
        ("POST  /x", None),
        ("bookings", None),
        ("", None),
    ],
)
def test_recorded_requests_are_a_path_or_a_method_and_a_path(text, parts):
    assert split_request(text) == parts


def test_a_path_may_hold_a_space_but_a_method_goes_first():
    assert parse_route("/files/annual report") == (None, "/files/annual report")
    assert (
        RouteTable.build({"/files/annual report": "files"}).match("/files/annual report/2024") == "/files/annual report"
    )
    with pytest.raises(nmh.ConfigError, match="to give a method, put it first: 'POST /payments/webhook'"):
        parse_route("/payments/webhook post")


def test_every_standard_method_is_accepted():
    for method in METHODS:
        assert parse_route(f"{method} /x") == (method, "/x")


def test_defaults_have_no_method_so_the_middleware_records_none():
    assert RouteTable.build(DEFAULT_ROUTES).has_methods is False
    assert RouteTable.build({"POST /payments/webhook": "payments"}).has_methods is True
    assert RouteTable.build({}, ["PUT /files"]).has_methods is True


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'health.db'}"
    server: RedisServer = request.getfixturevalue("redis_db")
    return server.url()


def test_method_routes_keep_keys_of_their_own_on_every_store(store_url: str):
    monitor = nmh.Monitor(
        "acme",
        store=store_url,
        clock=FakeClock(),
        load_entrypoints=False,
        routes={"POST /payments/webhook": "payments"},
    )
    for request, status in [
        ("POST /payments/webhook", 200),
        ("POST /payments/webhook/stripe?attempt=2", 503),
        ("GET /payments/webhook", 200),
        ("/payments/webhook", 200),
        ("GET /bookings/7", 200),
        ("PATCH /portal/home", 200),
        ("POST payments", 200),  # neither a path nor a method and a path: dropped, counted
    ]:
        monitor.record_request(request, status=status, duration=0.1)
    monitor.flush()
    assert keys_recorded(monitor) == {"POST /payments/webhook": 2, "other": 2, "/bookings": 1, "/portal": 1}
    assert monitor.status().drops == {"invalid": 1}
    assert monitor.settings.area_for("POST /payments/webhook/stripe") == "payments"
    assert monitor.settings.area_for("GET /payments/webhook") is None
