"""Recording through a Monitor: buckets, route collapsing, users, sites, drops.

Every test records through the public ``record_*`` methods, flushes, and reads back what
the store holds. Garbage input must never raise into the caller, and every call must end
up either in a bucket or in ``status().drops`` — nothing vanishes.
"""

from __future__ import annotations

import math
import random
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nextmonth_health as nmh
from nextmonth_health import signals as sig
from nextmonth_health.settings import DEFAULT_ROUTES
from nextmonth_health.testing import START, FakeClock

EVERYTHING = (0.0, 1e12)


def buckets(monitor: nmh.Monitor, signal: str, site: str | None = None) -> list[Any]:
    return sorted(monitor.store.read(site or monitor.site, signal, *EVERYTHING), key=lambda b: (b.key, b.start))


def one(monitor: nmh.Monitor, signal: str, site: str | None = None) -> Any:
    found = buckets(monitor, signal, site)
    assert len(found) == 1, found
    return found[0]


def recorded_total(monitor: nmh.Monitor) -> int:
    return sum(
        b.total for site in monitor.store.sites() for signal in sig.SIGNALS for b in buckets(monitor, signal, site)
    )


# Buckets: wall-clock edges, one per (site, signal, key).


def test_events_in_one_bucket_fold_together(monitor, fake_clock):
    for status in (200, 201, 503):
        monitor.record_request("/bookings", status=status, duration=0.1, user="u1")
        fake_clock.advance(3)
    assert monitor.flush() == 3
    bucket = one(monitor, sig.REQUEST)
    assert (bucket.site, bucket.signal, bucket.key, bucket.start) == ("test-site", "request", "/bookings", START)
    assert (bucket.total, bucket.bad) == (3, 1)
    assert bucket.samples == 3


def test_events_going_back_and_forth_between_buckets_add_to_what_a_failed_write_left(fake_clock):
    monitor = nmh.Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
    store = monitor.store
    write = store.write

    def down(buckets: Any, **options: Any) -> None:
        raise ConnectionError("the store is down")

    def record(offset: float, status: int, user: str) -> None:
        fake_clock._now = START + offset  # threads' clocks interleave; FakeClock only goes forward
        monitor.record_request("/bookings", status=status, duration=0.1, user=user)

    store.write = down  # type: ignore[method-assign]
    for offset, status, user in ((0, 200, "u1"), (1, 503, "u2"), (10, 200, "u3"), (2, 503, "u1")):
        record(offset, status, user)
    assert monitor.flush() == 4
    assert monitor.status().drops == {}, "kept pending for the next flush"
    store.write = write  # type: ignore[method-assign]
    record(3, 200, "u4")
    record(11, 503, "u3")
    fake_clock._now = START + 4
    monitor.record_login(ok=False, user="u5")
    assert monitor.flush() == 3
    first, second = buckets(monitor, sig.REQUEST)
    assert (first.start, first.total, first.bad, first.samples) == (START, 4, 2, 4)
    assert (len(first.users), len(first.bad_users)) == (3, 2)
    assert (second.start, second.total, second.bad, second.samples) == (START + 10, 2, 1, 2)
    assert (len(second.users), len(second.bad_users)) == (1, 1)
    login = one(monitor, sig.LOGIN)
    assert (login.start, login.total, login.bad) == (START, 1, 1)
    assert (len(login.users), len(login.bad_users)) == (1, 1)


def test_a_failed_batch_is_sent_again_unchanged_before_anything_newer(fake_clock):
    """A write that failed may have been applied (a lost reply): it goes again as it was,
    under its name, and what came after waits for it, so a store can apply it once."""
    monitor = nmh.Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)
    write = monitor.store.write
    sent: list[tuple[Any, int]] = []
    failures = [ConnectionError("reply lost"), ConnectionError("still down")]

    def flaky(buckets: Any, *, batch: Any = None) -> None:
        sent.append((batch, len(buckets)))
        if failures:
            raise failures.pop(0)
        write(buckets, batch=batch)

    monitor.store.write = flaky  # type: ignore[method-assign]
    monitor.record_request("/bookings", status=503, duration=0.1, user="u1")
    monitor.record_login(ok=False, user="u1")
    monitor.flush()  # fails
    monitor.record_upload(ok=False, user="u2")
    monitor.flush()  # the failed batch fails again; the upload waits
    assert monitor.status().unsent == 3
    monitor.record_upload(ok=True, user="u3")
    monitor.flush()
    writer = monitor.recorder.writer
    assert sent == [((writer, 1), 2), ((writer, 1), 2), ((writer, 1), 2), ((writer, 2), 1)]
    assert monitor.status().unsent == 0 and monitor.status().drops == {}
    assert (one(monitor, sig.UPLOAD).total, one(monitor, sig.UPLOAD).bad) == (2, 1)
    assert recorded_total(monitor) == 4


def test_what_waits_for_a_store_that_stays_down_is_bounded_and_the_rest_counted(fake_clock, monkeypatch):
    from nextmonth_health.record import recorder

    monkeypatch.setattr(recorder, "_MAX_PENDING_BUCKETS", 3)
    monitor = nmh.Monitor("test-site", store="memory://", clock=fake_clock, load_entrypoints=False)

    def down(buckets: Any, **options: Any) -> None:
        raise ConnectionError("the store is down")

    monitor.store.write = down  # type: ignore[method-assign]
    monitor.record_request("/bookings", status=503, duration=0.1, user="u1")
    monitor.record_login(ok=False, user="u1")
    monitor.flush()
    for _ in range(2):
        monitor.record_upload(ok=False, user="u2")  # one bucket: kept
    monitor.record_session_expired(user="u3")
    monitor.record_page_load("/dashboard", 1.0, user="u3")
    monitor.flush()
    status = monitor.status()
    assert status.unsent == 3 and status.drops == {"store": 2}


def test_bucket_edges_are_wall_clock_multiples_of_ten_seconds(monitor, fake_clock):
    fake_clock.set(START + 9.999)
    monitor.record_login(ok=False, user="a")
    fake_clock.set(START + 10.0)
    monitor.record_login(ok=True, user="b")
    fake_clock.set(START + 19.5)
    monitor.record_login(ok=True, user="c")
    fake_clock.set(START + 20.0)
    monitor.record_login(ok=True, user="d")
    monitor.flush()
    found = buckets(monitor, sig.LOGIN)
    assert [(b.start, b.total, b.bad) for b in found] == [
        (START, 1, 1),
        (START + 10, 2, 0),
        (START + 20, 1, 0),
    ]
    assert all(b.start % 10 == 0 for b in found)


def test_bucket_width_follows_the_setting():
    clock = FakeClock(START + 7)
    monitor = nmh.Monitor("s", store="memory://", clock=clock, load_entrypoints=False, bucket_seconds=60)
    monitor.record_upload(ok=True)
    clock.advance(52)  # START + 59: still the first minute
    monitor.record_upload(ok=False)
    clock.advance(1)  # START + 60: the next minute
    monitor.record_upload(ok=True)
    monitor.flush()
    assert [(b.start, b.total, b.bad) for b in buckets(monitor, sig.UPLOAD)] == [(START, 2, 1), (START + 60, 1, 0)]


def test_each_site_signal_and_key_gets_its_own_bucket(monitor):
    monitor.record_request("/bookings/1", status=200, duration=0.1)
    monitor.record_request("/portal/home", status=500, duration=0.1)
    monitor.record_request("/bookings", status=200, duration=0.1, site="other-site")
    monitor.record_page_load("/bookings", seconds=1.0)
    monitor.record_login(ok=True)
    monitor.record_session_expired()
    monitor.record_upload(ok=False, size=1024)
    monitor.flush()
    assert [(b.key, b.total, b.bad) for b in buckets(monitor, sig.REQUEST)] == [("/bookings", 1, 0), ("/portal", 1, 1)]
    assert [(b.key, b.total) for b in buckets(monitor, sig.REQUEST, "other-site")] == [("/bookings", 1)]
    assert [(b.key, b.total) for b in buckets(monitor, sig.PAGE_LOAD)] == [("/bookings", 1)]
    assert [(b.key, b.total, b.bad) for b in buckets(monitor, sig.LOGIN)] == [("", 1, 0)]
    assert [(b.key, b.total, b.bad) for b in buckets(monitor, sig.SESSION_EXPIRED)] == [("", 1, 1)]
    assert [(b.key, b.total, b.bad) for b in buckets(monitor, sig.UPLOAD)] == [("", 1, 1)]
    assert monitor.status().drops == {}


def test_flushes_add_up_in_the_store(monitor):
    monitor.record_request("/portal", status=502, duration=0.3, user="a")
    monitor.flush()
    monitor.record_request("/portal", status=200, duration=0.3, user="b")
    monitor.flush()
    bucket = one(monitor, sig.REQUEST)
    assert (bucket.total, bucket.bad, len(bucket.users), len(bucket.bad_users)) == (2, 1, 2, 1)
    assert monitor.status().events_flushed == 2


def test_durations_land_in_the_histogram(monitor):
    for seconds in (0.1, 0.2, 0.3, 5.0):
        monitor.record_request("/portal", status=200, duration=seconds)
    monitor.flush()
    bucket = one(monitor, sig.REQUEST)
    assert bucket.samples == 4
    assert bucket.quantile(0.5) == pytest.approx(0.2, rel=0.05)
    assert bucket.quantile(1.0) == pytest.approx(5.0, rel=0.05)


# Routes: collapsed to configured prefixes so cardinality stays bounded.


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/bookings", "/bookings"),
        ("/bookings/", "/bookings"),
        ("/bookings/123", "/bookings"),
        ("/bookings/123/edit", "/bookings"),
        ("/media-upload/chunk/7", "/media-upload"),
        ("/portal", "/portal"),
        ("/dashboard/widgets", "/dashboard"),
        ("/login", "/login"),
        ("/bookingsX", "other"),
        ("/book", "other"),
        ("/", "other"),
        ("/some/unknown/page", "other"),
        ("/bookings?id=3", "/bookings"),
        ("/portal#settings", "/portal"),
        ("/media-upload/?resumable=1#part", "/media-upload"),
        ("/bookingsX?x=/bookings", "other"),
    ],
)
def test_routes_collapse_to_configured_prefixes(monitor, path, route):
    monitor.record_request(path, status=200, duration=0.05)
    monitor.flush()
    assert one(monitor, sig.REQUEST).key == route


def test_custom_routes_use_the_longest_prefix():
    monitor = nmh.Monitor(
        "s",
        store="memory://",
        clock=FakeClock(),
        load_entrypoints=False,
        routes={"/api": "portal", "/api/v2/files": "uploads"},
    )
    monitor.record_request("/api/v2/files/9", status=200, duration=0.1)
    monitor.record_request("/api/v2/users", status=200, duration=0.1)
    monitor.record_request("/api/v2/filesystem", status=200, duration=0.1)
    monitor.flush()
    assert [(b.key, b.total) for b in buckets(monitor, sig.REQUEST)] == [("/api", 2), ("/api/v2/files", 1)]
    assert monitor.settings.area_for("/api/v2/files/9") == "uploads"


def test_page_loads_collapse_like_requests(monitor):
    monitor.record_page_load("/dashboard/reports/2024", seconds=1.0)
    monitor.record_page_load("/nowhere", seconds=1.0)
    monitor.flush()
    assert [(b.key, b.total) for b in buckets(monitor, sig.PAGE_LOAD)] == [("/dashboard", 1), ("other", 1)]


def test_ten_thousand_random_paths_create_a_bounded_number_of_keys(monitor):
    rng = random.Random(20260105)
    prefixes = [*DEFAULT_ROUTES, "/x", "/assets", "/api/v1", ""]
    for _ in range(10_000):
        tail = "/".join(
            "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 12)))
            for _ in range(rng.randint(1, 4))
        )
        monitor.record_request(f"{rng.choice(prefixes)}/{tail}", status=rng.choice([200, 404, 503]), duration=0.01)
    assert monitor.flush() == 10_000
    found = buckets(monitor, sig.REQUEST)
    allowed = (
        set(DEFAULT_ROUTES) | set(monitor.settings.critical_routes) | set(monitor.settings.dashboard_pages) | {"other"}
    )
    assert {b.key for b in found} <= allowed
    assert len(found) <= len(allowed)
    assert sum(b.total for b in found) == 10_000
    assert monitor.status().drops == {}


# Distinct users.


def test_distinct_users_are_counted_per_bucket(monitor, fake_clock):
    for user, ok in [("ann", True), ("ann", False), ("bob", True), ("cy", False), ("cy", False)]:
        monitor.record_upload(ok=ok, user=user)
    fake_clock.advance(10)
    monitor.record_upload(ok=True, user="ann")
    monitor.record_upload(ok=False, user="dee")
    monitor.record_upload(ok=True)  # anonymous: counted, but no user
    monitor.flush()
    first, second = buckets(monitor, sig.UPLOAD)
    assert (first.total, first.bad, len(first.users), len(first.bad_users)) == (5, 3, 3, 2)
    assert (second.total, second.bad, len(second.users), len(second.bad_users)) == (3, 1, 2, 1)


def test_integer_user_ids_are_the_same_user_as_their_string(monitor):
    monitor.record_login(ok=False, user=17)
    monitor.record_login(ok=False, user="17")
    monitor.flush()
    bucket = one(monitor, sig.LOGIN)
    assert (bucket.total, len(bucket.users), len(bucket.bad_users)) == (2, 1, 1)


def test_users_are_counted_separately_per_site(monitor):
    monitor.record_session_expired(user="u1")
    monitor.record_session_expired(user="u1", site="b")
    monitor.record_session_expired(user="u2", site="b")
    monitor.flush()
    assert len(one(monitor, sig.SESSION_EXPIRED).users) == 1
    assert len(one(monitor, sig.SESSION_EXPIRED, "b").users) == 2


# Sites.


def test_events_without_site_go_to_the_default_site(monitor):
    monitor.record_request("/portal", status=200, duration=0.1)
    monitor.record_request("/portal", status=200, duration=0.1, site=None)
    monitor.record_request("/portal", status=200, duration=0.1, site="test-site")
    monitor.flush()
    assert monitor.store.sites() == {"test-site"}
    assert one(monitor, sig.REQUEST).total == 3


def test_site_argument_routes_events_to_that_site(monitor):
    monitor.record_upload(ok=False, site="acme")
    monitor.record_upload(ok=False, site="acme")
    monitor.record_upload(ok=True, site="tiny")
    monitor.flush()
    assert monitor.store.sites() == {"acme", "tiny"}
    assert (one(monitor, sig.UPLOAD, "acme").total, one(monitor, sig.UPLOAD, "acme").bad) == (2, 2)
    assert (one(monitor, sig.UPLOAD, "tiny").total, one(monitor, sig.UPLOAD, "tiny").bad) == (1, 0)
    assert buckets(monitor, sig.UPLOAD) == []


def test_page_load_slow_flag_uses_the_sites_own_threshold(fake_clock):
    monitor = nmh.Monitor(
        "big",
        store="memory://",
        clock=fake_clock,
        load_entrypoints=False,
        sites={"tiny": {"page_load_slow_seconds": 1.0, "page_load_recovery_seconds": 0.5}},
    )
    for site in ("big", "tiny"):
        for seconds in (0.4, 1.5, 2.9, 3.5):
            monitor.record_page_load("/dashboard", seconds=seconds, user=f"u{seconds}", site=site)
    monitor.flush()
    big, tiny = one(monitor, sig.PAGE_LOAD, "big"), one(monitor, sig.PAGE_LOAD, "tiny")
    assert (big.total, big.bad, len(big.bad_users)) == (4, 1, 1)  # only 3.5 s is slow at the default 3 s
    assert (tiny.total, tiny.bad, len(tiny.bad_users)) == (4, 3, 3)  # everything over 1 s is slow on tiny


def test_page_load_exactly_at_the_threshold_is_not_slow(monitor):
    monitor.record_page_load("/dashboard", seconds=3.0)
    monitor.record_page_load("/dashboard", seconds=3.0001)
    monitor.flush()
    assert one(monitor, sig.PAGE_LOAD).bad == 1


# Bounds: every drop is counted by reason.


def test_buffer_capacity_drops_the_eleventh_event_and_counts_it():
    monitor = nmh.Monitor("s", store="memory://", clock=FakeClock(), load_entrypoints=False, buffer_capacity=10)
    for _ in range(10):
        monitor.record_login(ok=True)
    assert monitor.status().buffered == 10
    monitor.record_login(ok=False)
    monitor.record_upload(ok=False)
    status = monitor.status()
    assert status.buffered == 10
    assert status.drops == {"buffer_full": 2}
    assert monitor.flush() == 10
    assert one(monitor, sig.LOGIN).total == 10
    assert one(monitor, sig.LOGIN).bad == 0
    # After a flush the buffer has room again.
    monitor.record_login(ok=False)
    monitor.flush()
    assert one(monitor, sig.LOGIN).bad == 1
    assert monitor.status().drops == {"buffer_full": 2}


def test_max_sites_caps_distinct_sites_and_counts_the_rest():
    monitor = nmh.Monitor("s", store="memory://", clock=FakeClock(), load_entrypoints=False, max_sites=2)
    monitor.record_login(ok=True, site="a")
    monitor.record_login(ok=True, site="b")
    monitor.record_login(ok=True, site="c")
    monitor.record_login(ok=True, site="c")
    monitor.record_login(ok=True, site="a")
    monitor.flush()
    assert monitor.store.sites() == {"a", "b"}
    assert one(monitor, sig.LOGIN, "a").total == 2
    assert monitor.status().drops == {"site_limit": 2}


def test_invalid_events_do_not_use_up_site_places():
    monitor = nmh.Monitor("s", store="memory://", clock=FakeClock(), load_entrypoints=False, max_sites=2)
    for i in range(5):
        monitor.record_login(ok="not-a-bool", site=f"junk-{i}")
    monitor.record_login(ok=True, site="a")
    monitor.record_login(ok=True, site="b")
    monitor.flush()
    assert monitor.store.sites() == {"a", "b"}
    assert monitor.status().drops == {"invalid": 5}


# Garbage never raises, and is counted.

MB = "x" * 1_000_000


class Weird:
    def __str__(self) -> str:
        raise RuntimeError("str() of a user object must not be called on the hot path")

    __hash__ = None  # type: ignore[assignment]


GARBAGE_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    # durations
    ("record_request", ("/portal", 200, None), {}),
    ("record_request", ("/portal", 200, -0.1), {}),
    ("record_request", ("/portal", 200, math.nan), {}),
    ("record_request", ("/portal", 200, math.inf), {}),
    ("record_request", ("/portal", 200, -math.inf), {}),
    ("record_request", ("/portal", 200, "0.2"), {}),
    ("record_request", ("/portal", 200, True), {}),
    ("record_request", ("/portal", 200, 10**400), {}),
    ("record_request", ("/portal", 200, 86_400.0 * 366), {}),
    # statuses
    ("record_request", ("/portal", "200", 0.1), {}),
    ("record_request", ("/portal", 200.0, 0.1), {}),
    ("record_request", ("/portal", None, 0.1), {}),
    ("record_request", ("/portal", 99, 0.1), {}),
    ("record_request", ("/portal", 600, 0.1), {}),
    ("record_request", ("/portal", -500, 0.1), {}),
    ("record_request", ("/portal", True, 0.1), {}),
    ("record_request", ("/portal", 10**100, 0.1), {}),
    # routes
    ("record_request", (None, 200, 0.1), {}),
    ("record_request", (b"/portal", 200, 0.1), {}),
    ("record_request", (42, 200, 0.1), {}),
    ("record_request", (["/portal"], 200, 0.1), {}),
    ("record_request", ("portal", 200, 0.1), {}),
    ("record_request", ("", 200, 0.1), {}),
    ("record_request", ("/" + MB, 200, 0.1), {}),
    ("record_page_load", ("dashboard", 1.0), {}),
    ("record_page_load", ("/" + MB, 1.0), {}),
    # page-load seconds
    ("record_page_load", ("/dashboard", math.nan), {}),
    ("record_page_load", ("/dashboard", -1.0), {}),
    ("record_page_load", ("/dashboard", None), {}),
    ("record_page_load", ("/dashboard", 10**400), {}),
    ("record_page_load", ("/dashboard", 86_400.0 * 365), {}),
    # users
    ("record_login", (False,), {"user": MB}),
    ("record_login", (False,), {"user": ""}),
    ("record_login", (False,), {"user": True}),
    ("record_login", (False,), {"user": 3.5}),
    ("record_login", (False,), {"user": b"u-17"}),
    ("record_login", (False,), {"user": object()}),
    ("record_login", (False,), {"user": Weird()}),
    ("record_login", (False,), {"user": ["u"]}),
    ("record_login", (False,), {"user": 10**5000}),
    ("record_login", (False,), {"user": 10**300}),  # 301 digits: longer than max_key_length
    # sites
    ("record_session_expired", (), {"site": MB}),
    ("record_session_expired", (), {"site": ""}),
    ("record_session_expired", (), {"site": 7}),
    ("record_session_expired", (), {"site": Weird()}),
    # ok flags and sizes
    ("record_login", (1,), {}),
    ("record_login", ("yes",), {}),
    ("record_login", (None,), {}),
    ("record_upload", (0,), {}),
    ("record_upload", ("false",), {}),
    ("record_upload", (True,), {"size": -1}),
    ("record_upload", (True,), {"size": math.nan}),
    ("record_upload", (True,), {"size": "4MB"}),
    ("record_upload", (True,), {"size": 10**400}),
]


def _call_id(call: tuple[str, tuple[Any, ...], dict[str, Any]]) -> str:
    method, args, kwargs = call
    shown = [*args, *kwargs.values()]
    parts = [
        f"{type(v).__name__}:{len(v)}"
        if isinstance(v, str | bytes) and len(v) > 20
        else ("big-int" if type(v) is int and v.bit_length() > 64 else repr(v)[:20])
        for v in shown
    ]
    return f"{method}({','.join(parts)})"


@pytest.mark.parametrize(("method", "args", "kwargs"), GARBAGE_CALLS, ids=[_call_id(c) for c in GARBAGE_CALLS])
def test_garbage_is_dropped_and_counted_never_raised(monitor, method, args, kwargs):
    getattr(monitor, method)(*args, **kwargs)
    assert monitor.flush() == 1
    assert monitor.status().drops == {"invalid": 1}
    assert recorded_total(monitor) == 0


def test_all_garbage_at_once_is_counted_and_good_events_around_it_survive(monitor):
    for method, args, kwargs in GARBAGE_CALLS:
        getattr(monitor, method)(*args, **kwargs)
        monitor.record_request("/portal", status=200, duration=0.1, user="ok")
    monitor.flush()
    assert monitor.status().drops == {"invalid": len(GARBAGE_CALLS)}
    assert recorded_total(monitor) == len(GARBAGE_CALLS)
    assert one(monitor, sig.REQUEST).total == len(GARBAGE_CALLS)


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("record_request", ("/portal", 100, 0), {}),
        ("record_request", ("/portal", 599, 0.0), {}),
        ("record_request", ("/portal", 204, 3), {"user": 17}),
        ("record_page_load", ("/dashboard", 0), {}),
        ("record_page_load", ("/dashboard", 3600.0), {}),
        ("record_upload", (True,), {"size": 0}),
        ("record_upload", (False,), {"size": 4_200_000}),
        ("record_upload", (False,), {"size": 50_000_000_000}),
        ("record_login", (True,), {"user": "u" * 200}),
        ("record_session_expired", (), {"site": "s" * 100}),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_edge_values_that_are_valid_are_recorded(monitor, method, args, kwargs):
    getattr(monitor, method)(*args, **kwargs)
    monitor.flush()
    assert monitor.status().drops == {}
    assert recorded_total(monitor) == 1


garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.text(max_size=20).map(lambda s: "/" + s),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
    st.builds(Weird),
    st.sampled_from(["", "x" * 100_001, "/" + "x" * 100_001, 10**400, 10**5000, -(10**400)]),
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, garbage)


users = maybe(st.one_of(st.none(), st.sampled_from(["ann", "bob", "cy"]), st.integers(0, 5)))
sites = maybe(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])))
paths = maybe(st.sampled_from(["/bookings/1", "/portal", "/dashboard", "/elsewhere"]))
oks = maybe(st.booleans())
seconds = maybe(st.floats(min_value=0, max_value=60))

calls = st.one_of(
    st.tuples(
        st.just("record_request"),
        st.fixed_dictionaries(
            {"route": paths, "status": maybe(st.integers(100, 599)), "duration": seconds, "user": users, "site": sites}
        ),
    ),
    st.tuples(st.just("record_login"), st.fixed_dictionaries({"ok": oks, "user": users, "site": sites})),
    st.tuples(st.just("record_session_expired"), st.fixed_dictionaries({"user": users, "site": sites})),
    st.tuples(
        st.just("record_upload"),
        st.fixed_dictionaries(
            {"ok": oks, "user": users, "site": sites, "size": maybe(st.none() | st.integers(0, 10**9))}
        ),
    ),
    st.tuples(
        st.just("record_page_load"),
        st.fixed_dictionaries({"page": paths, "seconds": seconds, "user": users, "site": sites}),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(calls, max_size=40), st.integers(min_value=3, max_value=50))
def test_any_garbage_is_either_recorded_or_counted(batch, capacity):
    monitor = nmh.Monitor(
        "default", store="memory://", clock=FakeClock(), load_entrypoints=False, buffer_capacity=capacity, max_sites=3
    )
    swallowed: list[tuple[str, BaseException]] = []
    monitor.errors.subscribe(lambda where, exc: swallowed.append((where, exc)))
    for method, kwargs in batch:
        assert getattr(monitor, method)(**kwargs) is None
    monitor.flush()
    status = monitor.status()
    assert set(status.drops) <= {"invalid", "buffer_full", "site_limit"}
    assert recorded_total(monitor) + sum(status.drops.values()) == len(batch)
    assert status.events_flushed == len(batch) - status.drops.get("buffer_full", 0)
    assert len(monitor.store.sites()) <= 3
    assert swallowed == []
