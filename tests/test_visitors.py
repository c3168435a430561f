"""People counted with no user extractor: a keyed hash of address and browser, its key new each day.

The recorder hashes what the middlewares pass (address, user agent) with the day's key
from the store; every monitor sharing a store agrees on the key, nothing raw is kept, and
yesterday's key is gone from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import nextmonth_health as nmh
from nextmonth_health import asgi, wsgi
from nextmonth_health.record.visitors import DAY
from nextmonth_health.signals import REQUEST
from nextmonth_health.store import SQLiteStore
from nextmonth_health.testing import FakeClock
from nextmonth_health.web.http import TrustedProxies

from .redis_server import RedisServer

ADDRESS = "203.0.113.7"
AGENT = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


def users_behind(monitor: nmh.Monitor, *, bad: bool = False) -> int:
    buckets = [(b, bad) for b in monitor.store.read(monitor.site, REQUEST, 0, 2**40)]
    return monitor.store.count_users(buckets)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'health.db'}"


def build(store: str, clock: FakeClock, internal_errors: Callable[[Any], Any]) -> nmh.Monitor:
    monitor = nmh.Monitor("shop", store=store, clock=clock, load_entrypoints=False)
    internal_errors(monitor)
    return monitor


def test_one_visitor_counts_once_across_workers_sharing_the_store(
    sqlite_url: str, fake_clock: FakeClock, internal_errors: Callable[[Any], Any]
) -> None:
    """Two monitors on one file stand for two gunicorn workers: they agree on the day's key."""
    first, second = build(sqlite_url, fake_clock, internal_errors), build(sqlite_url, fake_clock, internal_errors)
    first.record_request("/portal", 200, 0.1, user=(ADDRESS, AGENT))
    second.record_request("/portal", 200, 0.1, user=(ADDRESS, AGENT.decode()))  # WSGI gives text
    second.record_request("/portal", 200, 0.1, user=(ADDRESS, b"curl/8.5.0"))  # another browser: another person
    second.record_request("/portal", 200, 0.1, user=("198.51.100.1", AGENT))  # another address: another person
    first.flush()
    second.flush()
    assert users_behind(first) == 3
    assert first.status().drops == {} and second.status().drops == {}


def test_the_key_rotates_daily_and_yesterdays_is_forgotten(
    sqlite_url: str, fake_clock: FakeClock, internal_errors: Callable[[Any], Any]
) -> None:
    monitor = build(sqlite_url, fake_clock, internal_errors)
    keys = monitor.recorder.visitors
    today = int(fake_clock.now() // DAY)
    morning = keys.identity((ADDRESS, AGENT), fake_clock.now())
    assert keys.identity((ADDRESS, AGENT), fake_clock.now() + 3600) == morning, "stable within the day"
    same_visitor = [keys.identity((ADDRESS, AGENT), fake_clock.now() + n * DAY) for n in range(4)]
    assert same_visitor[0] == morning and len(set(same_visitor)) == 4, "not to be followed from day to day"
    assert all(v is not None and v.startswith("v:") and len(v) == 34 for v in same_visitor)
    assert isinstance(monitor.store, SQLiteStore)
    [(kept,)] = [row for row in monitor.store._read("SELECT count(*) FROM visitor_keys")]
    assert kept == 2, "the store keeps today's key and yesterday's, nothing older"
    days = {row[0] for row in monitor.store._read("SELECT day FROM visitor_keys")}
    assert days == {today + 2, today + 3}


def test_nothing_raw_reaches_the_store(
    sqlite_url: str, tmp_path: Path, fake_clock: FakeClock, internal_errors: Callable[[Any], Any]
) -> None:
    monitor = build(sqlite_url, fake_clock, internal_errors)
    for n in range(20):
        monitor.record_request("/media-upload", 503, 0.2, user=(f"192.0.2.{n}", AGENT + str(n).encode()))
    anyio.run(monitor.evaluate)
    monitor.store.close()
    written = b"".join(path.read_bytes() for path in tmp_path.glob("health.db*"))
    assert b"192.0.2." not in written and b"Firefox" not in written and b"Mozilla" not in written
    assert users_behind(build(sqlite_url, fake_clock, internal_errors), bad=True) == 20


def test_redis_processes_share_the_key_too(
    redis_db: RedisServer, fake_clock: FakeClock, internal_errors: Callable[[Any], Any]
) -> None:
    url = redis_db.url()
    first, second = build(url, fake_clock, internal_errors), build(url, fake_clock, internal_errors)
    day = int(fake_clock.now() // DAY)
    assert first.store.visitor_key(day) == second.store.visitor_key(day) != first.store.visitor_key(day + 1)
    first.record_request("/portal", 200, 0.1, user=(ADDRESS, AGENT))
    second.record_request("/portal", 200, 0.1, user=(ADDRESS, AGENT))
    first.flush()
    second.flush()
    assert users_behind(first) == 1


def test_a_malformed_visitor_is_counted_as_dropped_not_raised(fake_clock: FakeClock) -> None:
    monitor = nmh.Monitor("shop", store="memory://", clock=fake_clock, load_entrypoints=False)
    monitor.record_request("/portal", 200, 0.1, user=(ADDRESS,))
    monitor.record_request("/portal", 200, 0.1, user=(42, AGENT))
    monitor.flush()
    assert monitor.status().drops == {"invalid": 2}


# What the middlewares pass -------------------------------------------------------------------


def asgi_scope(peer: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "client": (peer, 50_000), "headers": headers}


def test_the_client_behind_trusted_proxies_only() -> None:
    forwarded = [(b"x-forwarded-for", b"198.51.100.9, 10.0.0.5"), (b"user-agent", AGENT)]
    nobody, hops = TrustedProxies(), TrustedProxies(1)
    ours = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    assert asgi.visitor(asgi_scope("10.0.0.6", forwarded), nobody) == ("10.0.0.6", AGENT), (
        "a header is not trusted by default"
    )
    assert asgi.visitor(asgi_scope("10.0.0.6", forwarded), hops) == ("10.0.0.5", AGENT)
    assert asgi.visitor(asgi_scope("10.0.0.6", forwarded), ours) == ("198.51.100.9", AGENT)
    assert asgi.visitor(asgi_scope(ADDRESS, forwarded), ours) == (ADDRESS, AGENT), "a client cannot pick its address"
    assert TrustedProxies("10.0.0.0/8, 127.0.0.1").client("127.0.0.1", "198.51.100.9") == "198.51.100.9"
    assert TrustedProxies("*").client(ADDRESS, "198.51.100.9") == "198.51.100.9"
    environ = {"REMOTE_ADDR": "10.0.0.6", "HTTP_X_FORWARDED_FOR": "198.51.100.9", "HTTP_USER_AGENT": "Firefox"}
    assert wsgi.visitor(environ, ours) == ("198.51.100.9", "Firefox")
    assert wsgi.visitor({"REMOTE_ADDR": ADDRESS}, nobody) == (ADDRESS, "")
    assert asgi.visitor({"type": "http", "headers": []}, nobody) is None, "no address (a unix socket): nobody to count"
    for bad in (-1, True, ["not-an-address"], "10.0.0.0/33"):
        with pytest.raises(nmh.ConfigError, match="trusted_proxies"):
            TrustedProxies(bad)


@pytest.fixture
def spied(fake_clock: FakeClock) -> Iterator[tuple[nmh.Monitor, list[Any]]]:
    monitor = nmh.Monitor("shop", store="memory://", clock=fake_clock, load_entrypoints=False)
    users: list[Any] = []
    real = monitor.record_request

    def record_request(route: str, status: int, duration: float, user: Any = None, site: Any = None) -> None:
        users.append(user)
        real(route, status, duration, user, site)

    monitor.record_request = record_request  # type: ignore[method-assign]
    yield monitor, users
    monitor.stop()


def test_anonymous_requests_count_their_visitor_unless_told_not_to(
    spied: tuple[nmh.Monitor, list[Any]], serve_wsgi: Callable[[Any], str]
) -> None:
    monitor, users = spied

    def site(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    counted = serve_wsgi(wsgi.HealthMiddleware(site, monitor, start_monitor=False))
    uncounted = serve_wsgi(wsgi.HealthMiddleware(site, monitor, start_monitor=False, count_visitors=False))
    named = serve_wsgi(wsgi.HealthMiddleware(site, monitor, start_monitor=False, user=lambda environ: "u-17"))
    for base in (counted, uncounted, named):
        httpx.get(base + "/portal", headers={"User-Agent": "Firefox"})
    assert users == [("127.0.0.1", "Firefox"), None, "u-17"]
