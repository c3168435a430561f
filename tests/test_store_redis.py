"""``redis://`` against real ``redis-server`` processes: the contract, many processes, faults.

Every server here is private (see ``tests/redis_server.py``): started on a free loopback
port, flushed between tests, killed and restarted by the fault tests. Worker processes
are real interpreters running ``tests/redis_worker.py``. The only real waits are the
short lease expiries and the socket timeouts the fault tests exist to measure.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
from redis.crc import key_slot

from nextmonth_health import Monitor
from nextmonth_health.errors import ConfigError
from nextmonth_health.signals import LOGIN, REQUEST, Bucket
from nextmonth_health.sketch import DistinctCounter
from nextmonth_health.store import Store, open_store
from nextmonth_health.store.redis import RedisStore, StoredUsers
from nextmonth_health.testing import START, FakeClock
from nextmonth_health.values import IncidentStatus, MaintenanceWindow, Silence, timestamp

from .redis_server import (
    LocalCluster,
    RedisServer,
    ReplyCutter,
    SilentServer,
)
from .redis_worker import SILENCE, WINDOW
from .store_contract import T0, StoreContract, alert, bucket, incident

pytestmark = pytest.mark.anyio

WORKER = Path(__file__).with_name("redis_worker.py")
TIMEOUT = 60.0


class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, redis_db: RedisServer) -> Iterator[Store]:
        s = open_store(redis_db.url())
        yield s
        s.close()


class TestRedisClusterStore(StoreContract):
    @pytest.fixture
    def store(self, redis_cluster: LocalCluster) -> Iterator[Store]:
        client = redis_cluster.client()
        client.flushall()
        s = RedisStore(redis_cluster.nodes[0].url(), client=client)
        yield s
        client.close()


@pytest.fixture
def store(redis_db: RedisServer) -> Iterator[RedisStore]:
    s = RedisStore(redis_db.url())
    yield s
    s.close()


def all_keys(server: RedisServer) -> list[bytes]:
    client = server.client()
    try:
        return sorted(client.scan_iter(count=1000))
    finally:
        client.close()


def totals(store: Store, site: str, signal: str) -> Bucket:
    merged = Bucket(site, signal, "*", 0)
    for b in store.read(site, signal, 0, 2**40):
        merged.add_counts(b)
    return merged


def spike(monitor: Monitor, users: int = 30, first: int = 0) -> None:
    for user in range(first, first + users):
        monitor.record_request("/media-upload", 503, 0.2, user=f"u-{user}")


# The store's own promises, beyond the contract.


def test_opening_is_idempotent_per_check_and_key(store: RedisStore) -> None:
    first = incident("first")
    assert store.save_incident(first) == first and store.open_incident(first)
    second = incident("second", opened=START + 15)
    assert store.save_incident(second) == first, "the incident already open is kept"
    assert not store.open_incident(second)
    assert [i.id for i in store.incidents()] == ["first"]
    elsewhere = incident("other-route", key="/portal")
    assert store.open_incident(elsewhere), "another key is another problem"
    resolved = store.save_incident(
        attrs.evolve(first, status=IncidentStatus.RESOLVED, resolved_at=timestamp(START + 60))
    )
    assert resolved.status is IncidentStatus.RESOLVED
    assert store.save_incident(first).status is IncidentStatus.RESOLVED, "a resolved incident never reopens"
    third = incident("third", opened=START + 90)
    assert store.open_incident(third), "once resolved, the same problem may open again"
    assert sorted(i.id for i in store.incidents(open_only=True)) == ["other-route", "third"]


def test_every_key_has_a_ttl_and_the_tag_of_its_site(redis_db: RedisServer, store: RedisStore) -> None:
    store.write([bucket(site="a"), bucket(site="a", signal=LOGIN, key=""), bucket(site="b{x}:y")])
    store.save_incident(incident("i1", site="a"))
    store.save_alert(alert("i1", site="a"))
    store.acknowledge_alert("i1", timestamp(START + 5))
    assert store.mark_alert_notified("i1", expected=None, at=timestamp(START + 5), reminder=True)
    store.save_maintenance(
        MaintenanceWindow(id="w1", site="a", starts_at=timestamp(START), ends_at=timestamp(START + 60))
    )
    store.save_silence(
        Silence(id="s1", site="a", check="api_errors", starts_at=timestamp(START), ends_at=timestamp(START + 60))
    )
    assert store.acquire_lease("leader:a", "me", 30, START)
    assert store.count_users([(b, True) for b in store.read("a", REQUEST, T0, T0 + 10)]) == 1
    keys = all_keys(redis_db)
    client = redis_db.client()
    try:
        ttls = {k: client.ttl(k) for k in keys}
    finally:
        client.close()
    assert keys and all(ttl > 0 for ttl in ttls.values()), {k: t for k, t in ttls.items() if t <= 0}
    by_site: dict[bytes, set[int]] = {}
    for key in keys:
        assert key.startswith(b"nmh:{"), key
        tag = key[5 : key.index(b"}")]
        by_site.setdefault(tag, set()).add(key_slot(key))
    assert by_site.keys() == {b"a", b"b%7Bx%7D%3Ay", b"sites", b"alert-sites", b"maintenance", b"silences"}, (
        "a site's lease lives with the site"
    )
    assert {b"nmh:{a}:lease", b"nmh:{a}:lease:token"} <= set(keys)
    assert {b"nmh:{a}:alerts:notified", b"nmh:{a}:alerts:reminders"} <= set(keys)
    assert all(len(slots) == 1 for slots in by_site.values()), "each site lives in one cluster slot"
    assert ttls[b"nmh:{a}:t:%d" % T0] <= 7200
    assert ttls[b"nmh:{a}:bu:request:%d:/bookings" % T0] <= 7200
    assert ttls[b"nmh:{a}:r3600:%d" % (T0 - T0 % 3600)] > 7200, "hourly roll-ups keep trends longer"


def test_trim_leaves_no_key_of_what_it_forgot(redis_db: RedisServer, store: RedisStore) -> None:
    store.write([bucket(start=T0 - 7200, key="/a:b{c}"), bucket(start=T0)])
    store.save_incident(incident("old", status=IncidentStatus.RESOLVED, resolved_at=timestamp(START - 90_000)))
    store.save_alert(alert("old", notified_at=timestamp(START - 90_000), reminders=2))
    ended = timestamp(START - 90_000)
    store.save_maintenance(MaintenanceWindow(id="w", site="s", starts_at=ended, ends_at=ended))
    store.save_silence(Silence(id="q", site="s", check="api_errors", starts_at=ended, ends_at=ended))
    store.trim(buckets_before=T0 - 3600, hourly_before=T0 - 3600, resolved_before=timestamp(START - 86_400))
    left = [k.decode() for k in all_keys(redis_db)]
    assert not [k for k in left if str(T0 - 7200) in k], "every key of the old bucket and its roll-ups"
    assert any(str(T0) in k for k in left), "the recent bucket stays"
    assert not [k for k in left if "alerts" in k or k in ("nmh:{maintenance}", "nmh:{silences}")], left
    assert redis_db.client().hgetall(f"{store.prefix}:{{alert-sites}}") == {}


def test_a_window_planned_past_the_trend_outlives_it_and_is_never_cut_short(
    redis_db: RedisServer, store: RedisStore
) -> None:
    far = time.time() + 2 * store.trend_seconds
    store.save_maintenance(
        MaintenanceWindow(id="later", site="s", starts_at=timestamp(far), ends_at=timestamp(far + 60))
    )
    store.save_maintenance(MaintenanceWindow(id="soon", site="s", starts_at=timestamp(START), ends_at=timestamp(START)))
    client = redis_db.client()
    try:
        assert client.ttl(b"nmh:{maintenance}") > 2 * store.trend_seconds
    finally:
        client.close()


def test_incidents_and_alerts_stored_before_planned_quiet_still_read(redis_db: RedisServer, store: RedisStore) -> None:
    """JSON written by a version without maintenance_id, notified_at and reminders, and no
    hashes of notification times beside the alerts: the new fields take their defaults."""
    store.save_incident(incident("i1", maintenance_id="w1"))
    store.save_alert(alert("i1"))
    client = redis_db.client()
    try:
        for key, field, drop in (
            (b"nmh:{s}:incidents", b"i1", ("maintenance_id",)),
            (b"nmh:{s}:alerts", b"i1", ("notified_at", "reminders")),
        ):
            doc = json.loads(client.hget(key, field))
            client.hset(key, field, json.dumps({k: v for k, v in doc.items() if k not in drop}))
        assert not client.exists(b"nmh:{s}:alerts:notified", b"nmh:{s}:alerts:reminders")
    finally:
        client.close()
    [old] = store.incidents()
    assert old == incident("i1") and old.maintenance_id is None
    [told] = store.alerts()
    assert told == alert("i1") and (told.notified_at, told.reminders) == (None, 0)
    marked = store.mark_alert_notified("i1", expected=None, at=timestamp(START + 5), reminder=True)
    assert marked == alert("i1", notified_at=timestamp(START + 5), reminders=1)


def test_users_are_exact_while_small_and_estimated_beyond(store: RedisStore) -> None:
    crowd = [f"user-{i}" for i in range(700)]
    store.write([bucket(start=T0, users=crowd[:400], bad_users=crowd[:300])])
    store.write([bucket(start=T0 + 10, users=crowd[100:], bad_users=())])
    small, large = sorted(store.read("s", REQUEST, T0, T0 + 20), key=lambda b: b.start)
    assert isinstance(small.users, StoredUsers) and small.users.is_exact and len(small.users) == 400
    assert not large.users.is_exact and abs(len(large.users) - 600) <= 18
    assert store.count_users([(small, False)]) == 400
    assert store.count_users([(small, True)]) == 300
    both = [(small, False), (large, False)]
    assert abs(store.count_users(both) - 700) <= 21, "a HyperLogLog union past 512"
    with pytest.raises(TypeError, match="count_users"):
        DistinctCounter().merge(small.users)

    store.write([bucket(start=T0 + 20 + 10 * i, users=[f"user-{i}"], bad_users=()) for i in range(1100)])
    cells = store.read("s", REQUEST, T0, T0 + 20_000)
    assert len(cells) == 1102
    exact = [(b, False) for b in cells if b.start >= T0 + 20]
    assert store.count_users(exact) == 1100, "exact over more cells than one Lua call can unpack"
    every = [(b, False) for b in cells]
    assert abs(store.count_users(every) - 1100) <= 33, "a HyperLogLog union of 1102 cells"


def test_a_write_adds_up_like_memory_whatever_the_keys_and_the_batch(store: RedisStore) -> None:
    """Keys that need escaping in the packed write, a bucket twice in one batch, several
    buckets of one roll-up, a site past one script call's 200 buckets, a hash past 4,000
    fields, 1,001 sites."""
    odd = ["/50%", "/a%41", "/tab\there", "/new\nline", "/a:b{c}", "", "/é\udc80"]

    def batch() -> list[Bucket]:
        made = [
            bucket(key=k, start=T0 + i % 3 * 10, hist={i: 1, 40: 2}, users=(f"u{i}", "a"), bad_users=(f"u{i}",))
            for i, k in enumerate(odd)
        ]
        made.append(bucket(key="/twice"))
        made.append(bucket(key="/twice", total=3, bad=3, users=("z",), bad_users=("z",)))
        for i in range(450):
            start = T0 + 10 * i
            made.append(bucket(site="big", key=f"/k{i % 7}", start=start, hist={i % 5: 1}))
        made += [bucket(site=f"site-{i}", hist={}, users=(f"u{i}",)) for i in range(1001)]
        # One bucket of 200 series with 25 histogram slots each: over 4000 fields in a hash.
        made += [bucket(site="wide", key=f"/w{i}", hist={j: i for j in range(i % 9, i % 9 + 25)}) for i in range(200)]
        return made

    memory = open_store("memory://")
    for target in (store, memory):  # memory:// keeps the deltas it is given: fresh ones each time
        target.write(batch())
        target.write(batch()[:5])

    def summary(target: Store, site: str, width: int | None) -> list[tuple[Any, ...]]:
        span = (T0 - 3600, T0 + 7200)
        found = []
        for signal in (REQUEST, LOGIN):
            if width is None:
                rows = target.read(site, signal, *span)
            else:
                rows = target.read_rollup(site, signal, width, *span)
            found += [(b.key, b.start, b.total, b.bad, dict(b.hist)) for b in rows]
        return sorted(found)

    for site in ("s", "big", "site-0", "site-1000", "wide"):
        for width in (None, 300, 3600):
            assert summary(store, site, width) == summary(memory, site, width), (site, width)
        span = (T0 - 3600, T0 + 7200)
        cells = [(b, bad) for b in store.read(site, REQUEST, *span) for bad in (False, True)]
        mine = [(b, bad) for b in memory.read(site, REQUEST, *span) for bad in (False, True)]
        assert store.count_users(cells) == memory.count_users(mine), site
        for keys in (None, odd[:5], ["/twice", "/k3"]):
            parts = [(REQUEST, keys, False), (REQUEST, keys, True)]
            assert store.window_users(site, parts, *span) == memory.window_users(site, parts, *span), (site, keys)
        for width in (None, 300):

            def rows(target: Store) -> list[tuple[Any, ...]]:
                found = target.read_rows([site], *span, width=width)  # noqa: B023
                return sorted((*row[:6], dict(target.decode_hist(row[6]))) for row in found)

            assert rows(store) == rows(memory), (site, width)
    assert store.sites() == memory.sites()
    memory.close()


def test_a_named_batch_applies_once_per_writer(store: RedisStore) -> None:
    big = [bucket(key=f"/k{i % 9}", start=T0 + 10 * i, users=(f"u{i}",)) for i in range(450)]  # 3 calls
    store.write(big, batch=("w1", 1))
    store.write(big, batch=("w1", 1))  # sent again after a lost reply: skipped, every call of it
    store.write([bucket()], batch=("w1", 2))
    store.write(big, batch=("w1", 1))  # an older batch: skipped
    store.write([bucket()], batch=("w2", 1))  # another writer's first batch
    store.write([bucket()])  # unnamed: always applied
    memory = open_store("memory://")
    memory.write([bucket(key=f"/k{i % 9}", start=T0 + 10 * i, users=(f"u{i}",)) for i in range(450)])
    memory.write([bucket(), bucket(), bucket()])
    span = (T0 - 10, T0 + 4500)
    assert sorted(r[:6] for r in store.read_rows(["s"], *span)) == sorted(r[:6] for r in memory.read_rows(["s"], *span))
    assert totals(store, "s", REQUEST).total == totals(memory, "s", REQUEST).total == 450 * 10 + 3 * 10
    cells = [(b, False) for b in store.read("s", REQUEST, *span)]
    assert store.count_users(cells) == 452
    memory.close()


def test_a_flush_whose_reply_was_lost_is_sent_again_and_counted_once(redis_db: RedisServer) -> None:
    with ReplyCutter(redis_db.port) as cutter:
        monitor = Monitor("acme", store=cutter.url(timeout=2), clock=FakeClock(), load_entrypoints=False)
        monitor.record_login(ok=True, user="early", site="s0")
        assert monitor.flush() == 1  # Redis knows the scripts: the next flush is applied at once
        for user in range(300):
            monitor.record_request("/bookings", 503, 0.1, user=f"u{user}", site=f"s{user % 3}")
        cutter.cut_next()
        assert monitor.flush() == 300
        status = monitor.status()
        assert cutter.cuts == 1 and status.internal_errors == {"recorder.flush": 1}
        assert status.unsent == 3, "the batch waits to be sent again"
        monitor.record_login(ok=False, user="late", site="s0")
        assert monitor.flush() == 1
        status = monitor.status()
        assert status.unsent == 0 and status.drops == {} and status.internal_errors == {"recorder.flush": 1}
        monitor.store.close()
    with RedisStore(redis_db.url()) as direct:
        for site in ("s0", "s1", "s2"):
            assert (totals(direct, site, REQUEST).total, totals(direct, site, REQUEST).bad) == (100, 100), site
            cells = [(b, True) for b in direct.read(site, REQUEST, 0, 2**40)]
            assert direct.count_users(cells) == 100
        assert totals(direct, "s0", LOGIN).total == 2


def test_a_delta_with_estimated_users_keeps_its_counts_and_is_counted(store: RedisStore) -> None:
    b = bucket(users=[f"u{i}" for i in range(600)])
    b.users.compact()
    assert b.users.exact_items() is None
    store.write([b])
    [got] = store.read("s", REQUEST, T0, T0 + 10)
    assert (got.total, got.bad, len(got.bad_users)) == (10, 2, 1)
    assert store.inexact_user_sketches == 1


def test_a_server_that_forgot_its_scripts_gets_them_again(redis_db: RedisServer, store: RedisStore) -> None:
    store.write([bucket()])
    client = redis_db.client()
    try:
        client.script_flush()  # what a restart or a failover does
    finally:
        client.close()
    store.write([bucket()])
    [got] = store.read("s", REQUEST, T0, T0 + 10)
    assert got.total == 20 and store.count_users([(got, False)]) == 2


def test_a_pass_reads_many_sites_in_batched_calls_like_one_by_one(
    redis_db: RedisServer, redis_cluster: LocalCluster, store: RedisStore
) -> None:
    """On a single Redis, a pass's per-site calls (leases, open incidents, windows) go 50
    sites to a call; 120 sites read the same as on a cluster, where they go one by one,
    and a server that forgot its scripts gets the batched ones again."""
    client = redis_cluster.client()
    cluster = RedisStore(redis_cluster.nodes[0].url(), client=client)
    sites = [f"site-{i:03d}" for i in range(120)]
    try:
        for s in (store, cluster):
            s.write(
                [bucket(site, key=f"/k{i % 3}", start=T0 + 10 * (i % 4), total=i + 1) for i, site in enumerate(sites)]
            )
            s.write([bucket(sites[7], signal=LOGIN, key="", total=2, bad=1, hist={})])
            s.save_incident(incident("i7", site=sites[7]))
            s.save_incident(incident("i9", site=sites[9], status=IncidentStatus.RESOLVED, resolved_at=timestamp(START)))
            assert s.acquire_leases([f"leader:{site}" for site in sites[::2]], "rival", 30, START) == [True] * 60

        def seen(s: RedisStore) -> tuple[Any, ...]:
            taken = s.acquire_leases([f"leader:{site}" for site in sites], "me", 30, START + 1)
            open_now = {site: [i.id for i in found] for site, found in s.open_incidents(sites).items()}
            rows = sorted(s.read_rows(sites, T0, T0 + 40), key=lambda row: (row[0], row[1], row[2], row[3]))
            return taken, open_now, [(*row[:6], dict(s.decode_hist(row[6]))) for row in rows]

        single, spread = seen(store), seen(cluster)
        assert single == spread
        taken, open_now, rows = single
        assert taken == [i % 2 == 1 for i in range(120)], "a rival's leases stay the rival's"
        assert open_now[sites[7]] == ["i7"] and sum(map(len, open_now.values())) == 1
        assert len(rows) == 121 and rows[-1][:6] == (sites[-1], REQUEST, "/k2", T0 + 30, 120, 2)
        flusher = redis_db.client()
        try:
            flusher.script_flush()
        finally:
            flusher.close()
        assert seen(store)[1:] == single[1:]
    finally:
        cluster.close()
        client.close()


def test_urls_carry_options_and_never_show_a_password(redis_db: RedisServer) -> None:
    url = f"redis://:s3cret@127.0.0.1:{redis_db.port}/3?timeout=0.25&history=4000&trend=90000&prefix=app1"
    with RedisStore(url) as s:
        assert (s.timeout, s.history_seconds, s.trend_seconds, s.prefix) == (0.25, 4000, 90000, "app1")
        assert "s3cret" not in s.url and "s3cret" not in repr(s)
    with RedisStore(redis_db.url(db=2, history=4000, prefix="app1")) as s:
        s.write([bucket()])
        client = redis_db.client(db=2)
        try:
            assert 3990 < client.ttl(b"app1:{s}:t:%d" % T0) <= 4000
        finally:
            client.close()
    for bad in ("redis://127.0.0.1/0?timeout=0", "redis://127.0.0.1/0?history=soon", "http://127.0.0.1"):
        with pytest.raises(ConfigError):
            RedisStore(bad)


def test_a_flush_is_one_round_trip(redis_db: RedisServer, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monitor = Monitor("one", store=store, clock=clock, load_entrypoints=False)
    monitor.record_login(ok=True, site="warm-up")
    monitor.flush()  # steady state: a connection is open and the server knows the scripts
    sends: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    for i in range(1000):
        if i % 10 == 0:
            clock.advance(10)  # a new bucket: 800 buckets over four sites and two signals
        site = f"s{i % 4}"
        monitor.record_request(f"/bookings/{i % 3}", 200 if i % 7 else 503, 0.1, user=f"u{i}", site=site)
        monitor.record_login(ok=True, user=f"u{i}", site=site)
    assert monitor.flush() == 2000
    assert len(sends) == 1, "every site's buckets, users and roll-ups go in one pipelined round trip"
    monkeypatch.undo()
    assert sum(len(store.read(f"s{i}", sig, 0, 2**40)) for i in range(4) for sig in (REQUEST, LOGIN)) == 800
    assert sum(totals(store, f"s{i}", REQUEST).total for i in range(4)) == 1000


# A monitor on Redis, end to end.


async def test_a_monitor_on_redis_opens_one_incident_that_every_process_sees(
    redis_db: RedisServer, internal_errors: Callable[[Any], Any]
) -> None:
    clock = FakeClock()
    first = Monitor("acme", store=redis_db.url(), clock=clock, load_entrypoints=False)
    internal_errors(first)
    spike(first)
    clock.advance(15)
    evaluation = await first.evaluate()
    [opened] = evaluation.opened
    assert (opened.incident.check, opened.incident.key, opened.incident.severity) == (
        "api_errors",
        "/media-upload",
        "critical",
    )
    assert opened.incident.affected_users == 30 and len(evaluation.alerts) == 1
    second = Monitor("acme", store=redis_db.url(), clock=clock, load_entrypoints=False)
    internal_errors(second)
    try:
        assert second.incidents() == [opened.incident]
        [stored] = second.alerts()
        assert stored == evaluation.alerts[0] and "30 users" in stored.message
        [notice] = second.notices("uploads")
        assert notice.area == "uploads"
        clock.advance(15)
        again = await second.evaluate()
        assert again.sites == (), "the first monitor still holds the lease"
        clock.advance(15)
        again = await first.evaluate()
        assert again.sites == ("acme",) and again.opened == [] and again.alerts == []
    finally:
        first.store.close()
        second.store.close()


async def test_a_monitor_on_a_redis_cluster_spreads_its_sites_over_the_nodes(
    redis_cluster: LocalCluster, internal_errors: Callable[[Any], Any]
) -> None:
    client = redis_cluster.client()
    client.flushall()
    clock = FakeClock()
    store = RedisStore(redis_cluster.nodes[0].url(), client=client)
    monitor = Monitor("site-0", store=store, clock=clock, load_entrypoints=False)
    internal_errors(monitor)
    sites = [f"site-{n}" for n in range(8)]
    nodes = {client.get_node_from_key(f"nmh:{{{site}}}:x").name for site in sites}
    assert len(nodes) >= 2, "the sites live on more than one node"
    for site in sites:
        for user in range(30):
            monitor.record_request("/media-upload", 503, 0.2, user=f"u-{user}", site=site)
            monitor.record_request("/bookings", 200, 0.1, user=f"u-{user}", site=site)
    clock.advance(15)
    evaluation = await monitor.evaluate()
    assert set(evaluation.sites) == set(sites)
    assert sorted(t.incident.site for t in evaluation.opened) == sites
    assert len(evaluation.alerts) == len(sites)
    for site in sites:
        got = totals(monitor.store, site, REQUEST)
        assert (got.total, got.bad) == (60, 30)
        assert [i.affected_users for i in monitor.incidents(site)] == [30]
    assert monitor.store.sites() == set(sites)
    client.close()


# Many processes.


def worker_env() -> dict[str, str]:
    """The environment of a worker: this checkout's package first, whatever is installed."""
    paths = [str(WORKER.parent.parent / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


class Worker:
    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr.extend(self.process.stderr)

    def expect(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            stderr = "".join(self.stderr)
            raise AssertionError(f"worker said nothing for {TIMEOUT} s; stderr: {stderr}") from None

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        outcome: dict[str, Any] = json.loads(self.expect())
        assert outcome["internal_errors"] == {} and outcome["drops"] == {}, (outcome, "".join(self.stderr))
        return outcome

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def workers(redis_db: RedisServer) -> Iterator[Callable[[int], list[Worker]]]:
    started: list[Worker] = []

    def start(n: int) -> list[Worker]:
        new = [Worker(redis_db.url()) for _ in range(n)]
        started.extend(new)
        for w in new:
            assert w.expect() == "ready", "".join(w.stderr)
        return new

    yield start
    for w in started:
        w.stop()


def all_do(workers: list[Worker], command: str) -> list[dict[str, Any]]:
    for w in workers:
        w.send(command)
    return [w.result() for w in workers]


def test_four_processes_add_up_exactly_and_give_one_incident_and_one_alert_whoever_leads(
    redis_db: RedisServer, workers: Callable[[int], list[Worker]]
) -> None:
    group = workers(4)
    for i, w in enumerate(group):
        w.send(f"load 5000 {i * 50}")
    for w in group:
        w.result()
    with RedisStore(redis_db.url()) as s:
        requests, logins = totals(s, "shop", REQUEST), totals(s, "shop", LOGIN)
        assert (requests.total, requests.bad, logins.total) == (20_000, 1_000, 4_000)
        cells = s.read("shop", REQUEST, 0, 2**40)
        assert s.count_users([(b, False) for b in cells]) == 200, "distinct users across processes, exactly"
        assert s.count_users([(b, True) for b in cells]) == 4 * 5
        assert sum(b.total for b in s.read_hourly("shop", REQUEST, 0, 2**40)) == 20_000

    for i, w in enumerate(group):
        w.send(f"spike 8 {i * 8} 600")
    for w in group:
        w.result()
    first = all_do(group, "evaluate 615")
    assert sorted(len(o["led"]) for o in first) == [0, 0, 0, 1], "one leader for the site"
    opened = [i for o in first for i in o["opened"]]
    assert len(opened) == 1 and sum(o["alerts"] for o in first) == 1
    leader = next(w for w, o in zip(group, first, strict=True) if o["led"])
    leader.send("release")
    leader.result()
    rest = [w for w in group if w is not leader]
    second = all_do(rest, "evaluate 630")
    assert sorted(len(o["led"]) for o in second) == [0, 0, 1], "another worker takes over"
    assert [i for o in second for i in o["opened"]] == [] and sum(o["alerts"] for o in second) == 0
    with RedisStore(redis_db.url()) as s:
        [stored] = s.incidents()
        assert [stored.id] == opened and stored.affected_users == 32, "users of all four workers"
        assert [a.incident_id for a in s.alerts()] == opened


def test_windows_and_silences_saved_by_one_process_are_seen_by_every_other(
    redis_db: RedisServer, workers: Callable[[int], list[Worker]]
) -> None:
    a, b = workers(2)
    with RedisStore(redis_db.url()) as here:
        assert here.maintenance_windows() == [] and here.silences() == []
        a.send("plan")
        a.result()
        b.send("planned")
        seen = b.result()
        assert seen["windows"] == [[WINDOW.id, WINDOW.ends_at.timestamp()]]
        assert seen["silences"] == [[SILENCE.id, SILENCE.ends_at.timestamp()]]
        b.send(f"end {WINDOW.id} 60")
        b.result()
        a.send("planned")
        assert a.result()["windows"] == [[WINDOW.id, timestamp(START + 60).timestamp()]], "ended for everyone"
        assert here.maintenance_windows("shop") == [attrs.evolve(WINDOW, ends_at=timestamp(START + 60))]
        assert here.silences("shop") == [SILENCE]


def test_of_four_processes_marking_one_alert_notified_one_wins(
    redis_db: RedisServer, workers: Callable[[int], list[Worker]]
) -> None:
    with RedisStore(redis_db.url()) as s:
        s.save_alert(alert("i1", site="shop"))
    outcomes = all_do(workers(4), "notify i1")
    assert sorted(o["won"] for o in outcomes) == [False, False, False, True]
    with RedisStore(redis_db.url()) as s:
        [told] = s.alerts()
        assert (told.notified_at, told.reminders) == (timestamp(START), 0)


def test_a_monitor_made_before_fork_works_in_every_child(redis_db: RedisServer) -> None:
    done = subprocess.run(
        [sys.executable, str(WORKER), redis_db.url(), "fork", "3"],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=worker_env(),
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome == {"children": [0, 0, 0], "internal_errors": {}, "drops": {}}, done.stderr
    with RedisStore(redis_db.url()) as s:
        got = totals(s, "forked", REQUEST)
        assert (got.total, got.bad) == (302, 75), "every child flushed through its own connection"
        cells = s.read("forked", REQUEST, 0, 2**40)
        assert s.count_users([(b, False) for b in cells]) == 31


# Faults: a dead Redis, a hung Redis, a paused leader.


async def test_redis_killed_and_restarted_mid_run_loses_nothing_and_alerts_once(
    durable_redis: RedisServer,
) -> None:
    clock = FakeClock()
    monitor = Monitor("acme", store=durable_redis.url(timeout=0.5), clock=clock, load_entrypoints=False)
    spike(monitor)
    clock.advance(15)
    first = await monitor.evaluate()
    assert len(first.opened) == 1 and len(first.alerts) == 1

    durable_redis.kill()
    began = time.monotonic()
    for user in range(30, 40):
        monitor.record_request("/media-upload", 503, 0.2, user=f"u-{user}")  # never raises
    assert monitor.flush() == 10
    clock.advance(15)
    paused = await monitor.evaluate()
    assert paused.sites == () and paused.transitions == ()
    assert time.monotonic() - began < 5, "a dead Redis answers at once"
    errors = monitor.status().internal_errors
    assert errors.get("recorder.flush", 0) >= 2, errors
    assert monitor.recorder.drops == {}, "what could not be written is kept, not dropped"

    durable_redis.start()
    clock.advance(15)
    resumed = await monitor.evaluate()
    assert resumed.sites == ("acme",), "evaluation resumes on the first pass after Redis returns"
    assert resumed.opened == [], "the open incident survived the restart"
    [update] = resumed.transitions
    assert update.incident.id == first.opened[0].incident.id and update.incident.affected_users == 40
    with RedisStore(durable_redis.url()) as s:
        assert totals(s, "acme", REQUEST).total == 40, "the buckets kept during the outage were written once"
        assert len(s.incidents()) == 1 and len(s.alerts()) == 1
    monitor.store.close()


async def test_a_hung_redis_costs_the_flusher_one_timeout_and_the_request_path_nothing(
    silent_server: SilentServer,
) -> None:
    clock = FakeClock()
    monitor = Monitor("acme", store=silent_server.url(timeout=0.2), clock=clock, load_entrypoints=False)
    began = time.perf_counter()
    for user in range(1000):
        monitor.record_request("/media-upload", 503, 0.2, user=f"u-{user}")
    assert time.perf_counter() - began < 0.5, "recording never waits for Redis"

    began = time.monotonic()
    assert monitor.flush() == 1000
    assert time.monotonic() - began < 1.0, "one timeout, no retries"
    began = time.monotonic()
    clock.advance(15)
    evaluation = await monitor.evaluate()
    assert evaluation.sites == ()
    assert time.monotonic() - began < 2.0, "the pass gives up within a few timeouts"
    assert monitor.status().internal_errors.get("recorder.flush", 0) >= 2
    assert monitor.recorder.drops == {}
    assert len(silent_server.accepted) >= 1
    with pytest.raises(redis.TimeoutError):
        monitor.store.sites()
    monitor.store.close()


def test_a_leader_paused_past_its_lease_loses_it_and_cannot_release_the_next(redis_db: RedisServer) -> None:
    a, b = RedisStore(redis_db.url()), RedisStore(redis_db.url())  # two processes' connections
    try:
        assert a.acquire_lease("leader:s", "a", 0.2, time.time())
        assert not b.acquire_lease("leader:s", "b", 0.2, time.time())
        time.sleep(0.25)  # A pauses past its lease, in real time: Redis's own expiry ends it
        assert b.acquire_lease("leader:s", "b", 30, time.time())
        assert not a.acquire_lease("leader:s", "a", 30, time.time()), "A wakes up a follower"
        a.release_lease("leader:s", "a")
        assert not a.acquire_lease("leader:s", "a", 30, time.time()), "A's late release left B's lease alone"
        assert b.acquire_lease("leader:s", "b", 30, time.time()), "B renews"
        b.release_lease("leader:s", "b")
        assert a.acquire_lease("leader:s", "a", 30, time.time())
    finally:
        a.close()
        b.close()


async def test_a_stalled_leader_never_produces_a_second_incident(
    redis_db: RedisServer, internal_errors: Callable[[Any], Any]
) -> None:
    a_clock, b_clock = FakeClock(), FakeClock()
    a = Monitor("acme", store=redis_db.url(), clock=a_clock, load_entrypoints=False, tick_seconds=10)
    b = Monitor("acme", store=redis_db.url(), clock=b_clock, load_entrypoints=False, tick_seconds=10)
    internal_errors(a)
    internal_errors(b)
    try:
        spike(a, users=20)
        a_clock.advance(15)
        assert (await a.evaluate()).sites == ("acme",)
        b_clock.set(START + 15 + 31)  # A stalls; its 30 s lease runs out on B's clock
        spike(b, users=20, first=20)
        b_pass = await b.evaluate()
        assert b_pass.sites == ("acme",) and b_pass.opened == [], "B takes over A's incident"
        a_clock.advance(15)  # A wakes up, behind B
        assert (await a.evaluate()).sites == ()
        # A's pass had already computed an opening when it stalled: storing it is a no-op.
        [current] = a.store.incidents("acme")
        late = incident("late", site="acme", check=current.check, key=current.key)
        assert a.store.save_incident(late).id == current.id  # type: ignore[union-attr]
        assert [i.id for i in b.incidents()] == [current.id] and len(b.alerts()) == 1
    finally:
        a.store.close()
        b.store.close()


def test_a_redis_that_keeps_nothing_on_disk_says_so(
    redis_db: RedisServer, durable_redis: RedisServer, silent_server: SilentServer
) -> None:
    with RedisStore(redis_db.url()) as volatile:
        [caveat] = volatile.caveats()
    assert f"Redis at {redis_db.url()} keeps nothing on disk" in caveat and "set appendonly yes" in caveat
    with RedisStore(durable_redis.url()) as durable:
        assert durable.caveats() == ()
    with RedisStore(silent_server.url(timeout=0.2)) as hung:
        assert hung.caveats() == (), "a Redis that does not answer CONFIG cannot tell: no caveat, no error"
