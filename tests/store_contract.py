"""The contract every store passes. Subclass ``StoreContract`` and provide a ``store`` fixture.

``memory://`` passes it here; the SQLite and Redis stores run the same class against real
files and a real server.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from nextmonth_health.errors import StaleLease
from nextmonth_health.signals import LOGIN, REQUEST, UPLOAD, Bucket
from nextmonth_health.sketch import user_hash
from nextmonth_health.store import Store
from nextmonth_health.store.base import site_lease
from nextmonth_health.testing import START
from nextmonth_health.values import Alert, Incident, IncidentStatus, MaintenanceWindow, Severity, Silence, timestamp

T0 = int(START)


def bucket(site: str = "s", signal: str = REQUEST, key: str = "/bookings", start: int = T0, **kw: object) -> Bucket:
    b = Bucket(site, signal, key, start, exact_users=True)
    b.total = int(kw.get("total", 10))  # type: ignore[call-overload]
    b.bad = int(kw.get("bad", 2))  # type: ignore[call-overload]
    for value in kw.get("hist", {1: 3, 40: 7}).items():  # type: ignore[attr-defined]
        b.hist[value[0]] += value[1]
    for user in kw.get("users", ("a", "b")):  # type: ignore[attr-defined]
        b.users.add(user_hash(user))
    for user in kw.get("bad_users", ("a",)):  # type: ignore[attr-defined]
        b.bad_users.add(user_hash(user))
    return b


def incident(id: str = "i1", site: str = "s", *, opened: float = START, **changes: object) -> Incident:
    base = Incident(
        id=id,
        site=site,
        check="api_errors",
        area="bookings",
        key="/bookings",
        severity=Severity.DEGRADED,
        status=IncidentStatus.OPEN,
        affected_users=3,
        opened_at=timestamp(opened),
        updated_at=timestamp(opened),
        summary="API Errors on /bookings route",
        value=0.4,
        threshold=0.01,
    )
    return attrs.evolve(base, **changes)


def alert(incident_id: str = "i1", site: str = "s", at: float = START, **changes: object) -> Alert:
    base = Alert(
        incident_id=incident_id,
        site=site,
        message="⚡ Health Alert:\n…",
        created_at=timestamp(at),
        updated_at=timestamp(at),
        check="api_errors",
        key="/bookings",
        area="bookings",
        affected_users=3,
    )
    return attrs.evolve(base, **changes)


class StoreContract:
    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError

    def test_written_buckets_read_back(self, store: Store) -> None:
        store.write([bucket(), bucket(key="/portal", total=5, bad=0, users=("c",), bad_users=())])
        got, other = sorted(store.read("s", REQUEST, T0, T0 + 10), key=lambda b: b.key)
        assert (got.site, got.signal, got.key, got.start) == ("s", REQUEST, "/bookings", T0)
        assert (got.total, got.bad, dict(got.hist)) == (10, 2, {1: 3, 40: 7})
        assert (len(got.users), len(got.bad_users)) == (2, 1)
        assert (other.key, other.total, other.bad, len(other.users), len(other.bad_users)) == ("/portal", 5, 0, 1, 0)

    def test_deltas_add_up_and_users_union(self, store: Store) -> None:
        store.write([bucket()])
        store.write([bucket(total=5, bad=1, hist={40: 1, 50: 2}, users=("b", "c"), bad_users=("c",))])
        [got] = store.read("s", REQUEST, T0, T0 + 10)
        assert (got.total, got.bad, dict(got.hist)) == (15, 3, {1: 3, 40: 8, 50: 2})
        assert (len(got.users), len(got.bad_users)) == (3, 2)

    def test_users_are_counted_across_buckets_and_signals(self, store: Store) -> None:
        store.write(
            [
                bucket(start=T0, users=("a", "b"), bad_users=("a",)),
                bucket(start=T0 + 10, users=("b", "c"), bad_users=("c",)),
                bucket(signal=LOGIN, key="", users=("d",), bad_users=("d",)),
            ]
        )
        requests = store.read("s", REQUEST, T0, T0 + 20)
        [logins] = store.read("s", LOGIN, T0, T0 + 20)
        assert store.count_users([(b, False) for b in requests]) == 3
        assert store.count_users([(b, True) for b in requests]) == 2
        assert store.count_users([(b, True) for b in requests] + [(logins, True)]) == 3
        assert store.count_users([]) == 0

    def test_window_users_count_the_union_of_parts_by_key(self, store: Store) -> None:
        store.write(
            [
                bucket(start=T0, users=("a", "b"), bad_users=("a",)),
                bucket(start=T0 + 10, key="/portal\t%0A", users=("c",), bad_users=("c",)),
                bucket(start=T0 + 20, users=("e",), bad_users=("e",)),  # outside the range
                bucket(signal=LOGIN, key="", users=("d", "a"), bad_users=("d",)),
            ]
        )

        def users(*parts: tuple[str, list[str] | None, bool]) -> int:
            return store.window_users("s", parts, T0, T0 + 20)

        assert users((REQUEST, None, False)) == 3
        assert users((REQUEST, ["/bookings"], False)) == 2
        assert users((REQUEST, ["/portal\t%0A"], True)) == 1
        assert users((REQUEST, [], False)) == 0
        assert users((REQUEST, ["/bookings"], True), (LOGIN, None, True)) == 2
        assert users((REQUEST, None, False), (LOGIN, None, False)) == 4
        assert store.window_users("elsewhere", [(REQUEST, None, False)], T0, T0 + 20) == 0

    def test_read_many_reads_every_signal_of_many_sites(self, store: Store) -> None:
        store.write(
            [
                bucket(start=T0 + 10),
                bucket(start=T0, key="/odd\tkey\n%41"),
                bucket(start=T0, total=4),
                bucket(start=T0 + 20),  # past the range
                bucket(signal=LOGIN, key="", total=3, bad=1, hist={}),
                bucket(site="t", signal=UPLOAD, key="", total=2, bad=2, hist={}),
            ]
        )
        found = store.read_many(["s", "t", "nobody"], T0, T0 + 20)
        assert set(found) == {"s", "t", "nobody"} and found["nobody"] == {}
        requests = found["s"][REQUEST]
        assert [b.start for b in requests] == sorted(b.start for b in requests), "ordered by start"
        assert sorted((b.key, b.start, b.total, b.bad, dict(b.hist)) for b in requests) == [
            ("/bookings", T0, 4, 2, {1: 3, 40: 7}),
            ("/bookings", T0 + 10, 10, 2, {1: 3, 40: 7}),
            ("/odd\tkey\n%41", T0, 10, 2, {1: 3, 40: 7}),
        ]
        assert [(b.key, b.total, b.bad) for b in found["s"][LOGIN]] == [("", 3, 1)]
        assert [(b.site, b.total, b.bad) for b in found["t"][UPLOAD]] == [("t", 2, 2)]
        five = T0 - T0 % 300
        rollups = store.read_many(["s"], five, five + 300, width=300)["s"][REQUEST]
        assert sorted((b.key, b.start, b.total) for b in rollups) == [
            ("/bookings", five, 24),
            ("/odd\tkey\n%41", five, 10),
        ]

    def test_sums_give_one_bucket_per_signal_and_key(self, store: Store) -> None:
        store.write(
            [
                bucket(start=T0),
                bucket(start=T0 + 10, total=4, bad=1, hist={40: 4}),
                bucket(start=T0 + 20),  # past the range
                bucket(key="/x", start=T0 + 10, total=5, bad=0, hist={2: 5}),
                bucket(signal=LOGIN, key="", total=3, bad=1, hist={}),
            ]
        )
        found = store.sums(["s", "nobody"], T0, T0 + 20)
        assert dict(found["nobody"]) == {}
        requests = found["s"][REQUEST]
        assert sorted(requests) == sorted(dict(requests)) == ["/bookings", "/x"] and len(requests) == 2
        both = requests["/bookings"]
        assert (both.start, both.total, both.bad, dict(both.hist)) == (T0, 14, 3, {1: 3, 40: 11})
        assert requests.get("/nothing") is None
        assert [(b.key, b.total) for b in found["s"][LOGIN].values()] == [("", 3)]
        expected = store.read_sums(["s"], T0, T0 + 20)["s"]
        assert {
            (signal, key, b.total, b.bad, tuple(sorted(b.hist.items())))
            for signal, by_key in found["s"].items()
            for key, b in by_key.items()
        } == {
            (signal, b.key, b.total, b.bad, tuple(sorted(b.hist.items())))
            for signal, rows in expected.items()
            for b in rows
        }

    def test_a_plugin_signal_is_kept_like_a_built_in_one(self, store: Store) -> None:
        """Stores key buckets by (site, signal, start, key): a signal a plugin declared
        (``acme.queue-wait``) is written, rolled up, summed, counted and trimmed like
        ``request``; a pass reads it when it names it among the signals it wants."""
        queue = "acme.queue-wait"
        five = T0 - T0 % 300
        store.write(
            [
                bucket(signal=queue, key="mail", start=T0 - 7200, users=("old",)),
                bucket(signal=queue, key="mail", start=T0, users=("a", "b"), bad_users=("a",)),
                bucket(
                    signal=queue, key="mail", start=T0 + 10, total=4, bad=0, hist={60: 4}, users=("c",), bad_users=()
                ),
                bucket(signal=queue, key="", start=T0, total=1, bad=1, hist={}, users=(), bad_users=()),
                bucket(start=T0),
            ]
        )
        [mail, mail_later] = [b for b in store.read("s", queue, T0, T0 + 20) if b.key == "mail"]
        assert (mail.signal, mail.total, mail.bad, dict(mail.hist), len(mail.users)) == (queue, 10, 2, {1: 3, 40: 7}, 2)
        assert (mail_later.start, mail_later.total, dict(mail_later.hist)) == (T0 + 10, 4, {60: 4})
        [rollup] = [b for b in store.read_rollup("s", queue, 300, five, five + 300) if b.key == "mail"]
        assert (rollup.total, rollup.bad, dict(rollup.hist)) == (14, 2, {1: 3, 40: 7, 60: 4})
        assert sorted((b.key, b.total) for b in store.read_hourly("s", queue, T0, T0 + 3600)) == [("", 1), ("mail", 14)]
        assert store.window_users("s", [(queue, ["mail"], False)], T0, T0 + 20) == 3
        assert store.window_users("s", [(queue, None, True), (REQUEST, None, True)], T0, T0 + 20) == 1

        signals = (REQUEST, LOGIN, queue)
        found = store.read_many(["s", "t"], T0, T0 + 20, signals=signals)
        assert set(found["s"]) == {REQUEST, queue} and found["t"] == {}
        assert sorted((b.key, b.start, b.total) for b in found["s"][queue]) == [
            ("", T0, 1),
            ("mail", T0, 10),
            ("mail", T0 + 10, 4),
        ]
        assert queue not in store.read_many(["s"], T0, T0 + 20)["s"], "the built-in signals unless told"
        rows = [r for r in store.read_rows(["s"], T0, T0 + 20, signals=signals) if r[1] == queue]
        assert sorted(r[2:6] for r in rows) == [("", T0, 1, 1), ("mail", T0, 10, 2), ("mail", T0 + 10, 4, 0)]
        sums = store.sums(["s"], T0, T0 + 20, signals=signals)["s"]
        assert queue in set(sums)
        summed = sums[queue]["mail"]
        assert (summed.total, summed.bad, dict(summed.hist)) == (14, 2, {1: 3, 40: 7, 60: 4})
        assert {b.key: b.total for b in store.read_sums(["s"], T0, T0 + 20, signals=signals)["s"][queue]} == {
            "": 1,
            "mail": 14,
        }
        assert {
            b.key: b.total for b in store.read_sums(["s"], five, five + 300, width=300, signals=signals)["s"][queue]
        } == {"": 1, "mail": 14}

        store.trim(buckets_before=T0 - 3600, hourly_before=T0 - 3600, resolved_before=timestamp(START - 86_400))
        assert [b.start for b in store.read("s", queue, T0 - 10_000, T0 + 20) if b.key == "mail"] == [T0, T0 + 10]
        assert [b.start for b in store.read_hourly("s", queue, T0 - 10_000, T0) if b.key == "mail"] == []

    def test_open_incidents_of_many_sites(self, store: Store) -> None:
        a = incident("a", "s", opened=T0)
        b = incident("b", "s", opened=T0 + 1, key="/portal")
        c = incident("c", "t", status=IncidentStatus.RESOLVED, resolved_at=timestamp(T0 + 5))
        for one in (a, b, c):
            store.save_incident(one)
        found = store.open_incidents(["s", "t", "nobody"])
        assert [i.id for i in found["s"]] == ["b", "a"]
        assert found["t"] == [] and found["nobody"] == []

    def test_the_visitor_key_is_one_per_day_and_random(self, store: Store) -> None:
        day = 20_458
        key = store.visitor_key(day)
        assert isinstance(key, bytes) and len(key) >= 16
        assert store.visitor_key(day) == key, "the same all day, for every caller"
        assert store.visitor_key(day + 1) != key

    def test_session_generations_count_per_name_from_zero(self, store: Store) -> None:
        assert store.session_generation("admin:a") == 0
        assert store.session_generation("admin:a", bump=True) == 1
        assert store.session_generation("admin:a", bump=True) == 2
        assert store.session_generation("admin:a") == 2, "reading does not move it"
        assert store.session_generation("admin:b") == 0, "each name has its own"
        assert store.session_generation("admin:{odd}: name") == 0
        assert store.session_generation("admin:{odd}: name", bump=True) == 1

    def test_leases_are_taken_in_batches(self, store: Store) -> None:
        assert store.acquire_leases(["x", "y"], "me", 30, T0) == [1, 1]
        assert store.acquire_leases(["x", "z"], "you", 30, T0 + 1) == [0, 1]
        assert store.acquire_leases(["x", "z"], "you", 30, T0 + 31) == [2, 1], "mine expired: a new holder"
        assert store.acquire_leases([], "me", 30, T0) == []

    def test_write_marks_name_the_newest_bucket_and_count_late_writes(self, store: Store) -> None:
        assert store.write_marks(["s"]) == {}
        store.write([bucket(start=T0 + 60)])
        assert store.write_marks(["s", "t"]) == {"s": (T0 + 60, 0)}
        store.write([bucket(start=T0 + 50)])
        assert store.write_marks(["s"]) == {"s": (T0 + 60, 0)}, "a bucket behind, within the margin: in step"
        store.write([bucket(start=T0 + 30)])
        store.write([bucket(start=T0 + 70), bucket(start=T0)])
        assert store.write_marks(["s"]) == {"s": (T0 + 70, 2)}, "writes into buckets 30 and 60 s old are late"

    def test_a_leases_token_grows_with_each_new_holder_only(self, store: Store) -> None:
        lease = site_lease("s")
        assert store.acquire_lease(lease, "a", 30, T0) == 1
        assert store.acquire_lease(lease, "a", 30, T0 + 10) == 1, "a renewal keeps the token"
        assert store.acquire_lease(lease, "b", 30, T0 + 20) == 0
        assert store.acquire_lease(lease, "b", 30, T0 + 41) == 2, "a new holder after expiry"
        store.release_lease(lease, "b")
        assert store.acquire_lease(lease, "a", 30, T0 + 42) == 3, "a release never lets a token go back"
        assert store.acquire_lease(site_lease("t"), "a", 30, T0 + 42) == 1, "tokens are per lease"

    def test_a_write_fenced_by_a_stale_token_is_refused_and_writes_nothing(self, store: Store) -> None:
        lease = site_lease("s")
        old = store.acquire_lease(lease, "paused", 30, T0)
        assert store.save_incident(incident("i1"), fence=(lease, old)).id == "i1"
        new = store.acquire_lease(lease, "standby", 30, T0 + 45)
        assert new > old
        escalated = attrs.evolve(incident("i1"), severity=Severity.CRITICAL)
        with pytest.raises(StaleLease):
            store.save_incident(escalated, fence=(lease, old))
        with pytest.raises(StaleLease):
            store.save_incident(incident("i2", key="/portal"), fence=(lease, old))
        assert [(i.id, i.severity) for i in store.incidents("s")] == [("i1", "degraded")], "nothing written"
        assert store.save_incident(escalated, fence=(lease, new)).severity == "critical"
        assert store.save_incident(incident("i3", site="t")).id == "i3", "an unfenced write still works"

    def test_more_users_than_the_exact_limit_are_estimated_closely(self, store: Store) -> None:
        crowd = [f"user-{i}" for i in range(3000)]
        store.write([bucket(start=T0, users=crowd[:2000], bad_users=crowd[:700])])
        store.write([bucket(start=T0 + 10, users=crowd[1000:], bad_users=())])
        cells = store.read("s", REQUEST, T0, T0 + 20)
        assert abs(store.count_users([(b, False) for b in cells]) - 3000) <= 90
        assert abs(store.count_users([(b, True) for b in cells]) - 700) <= 21

    def test_reads_are_bounded_by_site_signal_and_time(self, store: Store) -> None:
        store.write(
            [
                bucket(start=T0 - 10),
                bucket(start=T0),
                bucket(start=T0 + 10),
                bucket(site="other"),
                bucket(signal=LOGIN, key=""),
            ]
        )
        assert [b.start for b in store.read("s", REQUEST, T0, T0 + 10)] == [T0]
        assert sorted(b.start for b in store.read("s", REQUEST, T0 - 10, T0 + 20)) == [T0 - 10, T0, T0 + 10]
        assert [b.site for b in store.read("other", REQUEST, T0 - 10, T0 + 20)] == ["other"]
        assert [b.signal for b in store.read("s", LOGIN, T0, T0 + 10)] == [LOGIN]
        assert store.read("nobody", REQUEST, T0 - 100, T0 + 100) == []

    def test_sites_lists_everything_stored(self, store: Store) -> None:
        store.write([bucket(site="a")])
        store.save_incident(incident(site="b"))
        store.save_alert(alert(site="c", incident_id="x"))
        assert {"a", "b", "c"} <= store.sites()

    def test_incidents_upsert_and_filter(self, store: Store) -> None:
        store.save_incident(incident("i1"))
        store.save_incident(incident("i2", opened=START + 60, site="t"))
        store.save_incident(incident("i1", affected_users=9))
        assert [i.id for i in store.incidents()] == ["i2", "i1"]
        assert [i.id for i in store.incidents("s")] == ["i1"]
        assert store.incidents("s")[0].affected_users == 9
        resolved_at = timestamp(START + 120)
        store.save_incident(incident("i1", status=IncidentStatus.RESOLVED, resolved_at=resolved_at))
        assert [i.id for i in store.incidents(open_only=True)] == ["i2"]
        assert [i.id for i in store.incidents(resolved_since=resolved_at)] == ["i2", "i1"]
        assert [i.id for i in store.incidents(resolved_since=resolved_at + timedelta(seconds=1))] == ["i2"]

    def test_opening_is_idempotent_per_check_and_key(self, store: Store) -> None:
        first = incident("i1")
        assert store.save_incident(first) == first
        rival = incident("i2", opened=START + 5)
        assert store.save_incident(rival).id == "i1", "a second open incident for the same key is not stored"
        assert [i.id for i in store.incidents()] == ["i1"]
        other_key = incident("i3", key="/portal")
        assert store.save_incident(other_key).id == "i3"
        resolved = attrs.evolve(first, status=IncidentStatus.RESOLVED, resolved_at=timestamp(START + 60))
        assert store.save_incident(resolved) == resolved
        assert store.save_incident(first).status == "resolved", "a resolved incident is never reopened"
        assert store.save_incident(rival).id == "i2", "once resolved, the key can open again"
        assert sorted(i.id for i in store.incidents(open_only=True)) == ["i2", "i3"]

    def test_incidents_round_trip_every_field(self, store: Store) -> None:
        full = incident(
            "full",
            severity=Severity.CRITICAL,
            escalated_at=timestamp(START + 5),
            recovering_since=timestamp(START + 9),
            value=None,
            threshold=None,
            maintenance_id="w-1",
        )
        store.save_incident(full)
        assert store.incidents() == [full]

    def test_alerts_round_trip_every_field(self, store: Store) -> None:
        full = alert(
            "i1",
            resolved_at=timestamp(START + 90),
            acknowledged_at=timestamp(START + 30),
            incident_ids=("i1", "i2"),
            notified_at=timestamp(START + 5),
            reminders=2,
        )
        store.save_alert(full)
        assert store.alerts() == [full]

    def test_an_alert_is_marked_notified_once_per_expected_time(self, store: Store) -> None:
        """Compare and set: of two processes told to send the same reminder, one wins."""
        assert store.mark_alert_notified("i1", expected=None, at=timestamp(START)) is None, "unknown alert"
        store.save_alert(alert("i1"))
        first = store.mark_alert_notified("i1", expected=None, at=timestamp(START + 1))
        assert first is not None and first.notified_at == timestamp(START + 1) and first.reminders == 0
        assert store.mark_alert_notified("i1", expected=None, at=timestamp(START + 2)) is None, "already told"
        later = store.mark_alert_notified("i1", expected=timestamp(START + 1), at=timestamp(START + 900), reminder=True)
        assert later is not None and later.notified_at == timestamp(START + 900) and later.reminders == 1
        assert (
            store.mark_alert_notified("i1", expected=timestamp(START + 1), at=timestamp(START + 901), reminder=True)
            is None
        )
        store.save_alert(alert("i1", affected_users=40))  # a pass rewrites the alert from its incidents
        [kept] = store.alerts()
        assert (kept.affected_users, kept.notified_at, kept.reminders) == (40, timestamp(START + 900), 1)

    def test_saving_an_alert_keeps_the_later_notification_whichever_side_has_none(self, store: Store) -> None:
        store.save_alert(alert("i1"))
        store.save_alert(alert("i1", notified_at=timestamp(START + 5), reminders=1))
        store.save_alert(alert("i1", notified_at=timestamp(START + 3)))
        [kept] = store.alerts()
        assert (kept.notified_at, kept.reminders) == (timestamp(START + 5), 1), "an older save never moves it back"
        store.save_alert(alert("i1", notified_at=timestamp(START + 60), reminders=0))
        [kept] = store.alerts()
        assert (kept.notified_at, kept.reminders) == (timestamp(START + 60), 1)

    def test_maintenance_windows_are_kept_listed_ended_and_trimmed(self, store: Store) -> None:
        site_wide = MaintenanceWindow(
            id="w1",
            site="s",
            starts_at=timestamp(START),
            ends_at=timestamp(START + 1800),
            reason="deploy <v2>",
            created_at=timestamp(START - 60),
        )
        uploads = MaintenanceWindow(
            id="w2", site="s", starts_at=timestamp(START + 3600), ends_at=timestamp(START + 7200), area="uploads"
        )
        elsewhere = attrs.evolve(site_wide, id="w3", site="other", starts_at=timestamp(START - 60))
        for window in (uploads, site_wide, elsewhere):
            store.save_maintenance(window)
        assert store.maintenance_windows() == [elsewhere, site_wide, uploads], "soonest start first"
        assert store.maintenance_windows("s") == [site_wide, uploads]
        ended = store.end_maintenance("w1", timestamp(START + 600))
        assert ended == attrs.evolve(site_wide, ends_at=timestamp(START + 600))
        assert store.end_maintenance("w1", timestamp(START + 900)) == ended, "ending again changes nothing"
        cancelled = store.end_maintenance("w2", timestamp(START + 700))
        assert cancelled is not None and cancelled.ends_at == cancelled.starts_at == uploads.starts_at
        assert store.end_maintenance("nope", timestamp(START)) is None
        assert store.maintenance_windows("s") == [ended, cancelled]
        store.trim(buckets_before=T0, hourly_before=T0, resolved_before=timestamp(START + 3000))
        assert store.maintenance_windows() == [cancelled], "what ended before the cut is forgotten"

    def test_silences_are_kept_listed_ended_and_trimmed(self, store: Store) -> None:
        one_key = Silence(
            id="s1",
            site="s",
            check="api_errors",
            key="/bookings",
            starts_at=timestamp(START),
            ends_at=timestamp(START + 7200),
            reason="on it",
            created_at=timestamp(START),
        )
        every_key = Silence(
            id="s2", site="s", check="uploads", starts_at=timestamp(START + 60), ends_at=timestamp(START + 120)
        )
        store.save_silence(every_key)
        store.save_silence(one_key)
        store.save_silence(attrs.evolve(one_key, id="s3", site="other"))
        assert [s.id for s in store.silences()] == ["s1", "s3", "s2"]
        assert store.silences("s") == [one_key, every_key]
        ended = store.end_silence("s1", timestamp(START + 300))
        assert ended == attrs.evolve(one_key, ends_at=timestamp(START + 300))
        assert store.end_silence("nope", timestamp(START)) is None
        store.trim(buckets_before=T0, hourly_before=T0, resolved_before=timestamp(START + 200))
        assert [s.id for s in store.silences()] == ["s1", "s3"]

    def test_one_alert_per_incident_and_acknowledgements_stick(self, store: Store) -> None:
        store.save_alert(alert("i1"))
        store.save_alert(alert("i2", at=START + 60))
        store.save_alert(alert("i1", affected_users=12, acknowledged_at=timestamp(START + 30)))
        store.save_alert(alert("i1", affected_users=20))
        assert [a.incident_id for a in store.alerts()] == ["i2", "i1"]
        [a1] = [a for a in store.alerts() if a.incident_id == "i1"]
        assert a1.affected_users == 20 and a1.acknowledged_at == timestamp(START + 30)
        store.save_alert(alert("i1", at=START + 500, incident_ids=("i1", "i3")))
        [a1] = [a for a in store.alerts() if a.incident_id == "i1"]
        assert a1.created_at == timestamp(START), "created_at never moves later"
        assert a1.updated_at == timestamp(START + 500) and a1.incident_ids == ("i1", "i3")
        assert store.alerts("nobody") == []

    def test_acknowledging_an_alert_is_kept_and_first_wins(self, store: Store) -> None:
        store.save_alert(alert("i1"))
        first = store.acknowledge_alert("i1", timestamp(START + 60))
        assert first is not None and first.acknowledged_at == timestamp(START + 60)
        again = store.acknowledge_alert("i1", timestamp(START + 120))
        assert again is not None and again.acknowledged_at == timestamp(START + 60)
        store.save_alert(alert("i1", affected_users=30))
        [kept] = store.alerts()
        assert kept.affected_users == 30 and kept.acknowledged_at == timestamp(START + 60)
        assert store.acknowledge_alert("nope", timestamp(START)) is None

    def test_last_evaluations_are_remembered_per_site(self, store: Store) -> None:
        assert store.last_evaluations() == {}
        store.note_evaluations(["a", "b"], START)
        store.note_evaluations(["a"], START + 15)
        assert store.last_evaluations() == {"a": timestamp(START + 15), "b": timestamp(START)}

    def test_lease_is_exclusive_until_it_expires(self, store: Store) -> None:
        assert store.acquire_lease("leader:s", "a", 30, START)
        assert store.acquire_lease("leader:s", "a", 30, START + 10), "the holder renews"
        assert not store.acquire_lease("leader:s", "b", 30, START + 20)
        assert store.acquire_lease("leader:t", "b", 30, START + 20), "leases are per name"
        assert store.acquire_lease("leader:s", "b", 30, START + 41), "expired leases can be taken"
        store.release_lease("leader:s", "a")
        assert not store.acquire_lease("leader:s", "a", 30, START + 42), "only the holder can release"
        store.release_lease("leader:s", "b")
        assert store.acquire_lease("leader:s", "a", 30, START + 43)

    def test_hourly_rollups_add_up_every_delta_of_the_hour(self, store: Store) -> None:
        store.write([bucket(start=T0), bucket(start=T0 + 1790, users=("c",)), bucket(start=T0 + 3600)])
        store.write([bucket(start=T0 + 600, total=1, bad=1, hist={}, users=("d",), bad_users=("d",))])
        first, second = sorted(store.read_hourly("s", REQUEST, T0, T0 + 7200), key=lambda b: b.start)
        assert (first.start, first.key, first.total, first.bad) == (T0, "/bookings", 21, 5)
        assert dict(first.hist) == {1: 6, 40: 14}
        assert (len(first.users), len(first.bad_users)) == (0, 0), "roll-ups keep no user sketches"
        assert (second.start, second.total) == (T0 + 3600, 10)
        assert store.read_hourly("s", LOGIN, T0, T0 + 7200) == []

    def test_five_minute_rollups_serve_baselines(self, store: Store) -> None:
        store.write([bucket(start=T0 + 10 * i, total=1, bad=i % 2, hist={i: 1}) for i in range(60)])
        first, second = sorted(store.read_rollup("s", REQUEST, 300, T0, T0 + 600), key=lambda b: b.start)
        assert (first.start, first.total, first.bad, first.samples) == (T0, 30, 15, 30)
        assert (second.start, second.total, second.bad) == (T0 + 300, 30, 15)
        assert [b.start for b in store.read_rollup("s", REQUEST, 300, T0 + 300, T0 + 600)] == [T0 + 300]
        store.trim(buckets_before=T0 + 300, hourly_before=T0, resolved_before=timestamp(START - 86_400))
        assert [b.start for b in store.read_rollup("s", REQUEST, 300, T0, T0 + 600)] == [T0 + 300]
        assert [b.total for b in store.read_hourly("s", REQUEST, T0, T0 + 600)] == [60]

    def test_five_minute_rollups_can_outlive_raw_buckets(self, store: Store) -> None:
        store.write([bucket(start=T0 + 10 * i, total=1) for i in range(60)])
        store.trim(
            buckets_before=T0 + 600,
            hourly_before=T0,
            resolved_before=timestamp(START - 86_400),
            five_minute_before=T0 + 300,
        )
        assert store.read("s", REQUEST, T0, T0 + 600) == [], "raw buckets gone"
        assert [(b.start, b.total) for b in store.read_rollup("s", REQUEST, 300, T0, T0 + 600)] == [(T0 + 300, 30)]

    def test_trim_forgets_old_buckets_and_long_resolved_incidents(self, store: Store) -> None:
        store.write([bucket(start=T0 - 7200), bucket(start=T0)])
        store.save_incident(incident("old", status=IncidentStatus.RESOLVED, resolved_at=timestamp(START - 90_000)))
        store.save_alert(alert("old"))
        store.save_incident(incident("recent", status=IncidentStatus.RESOLVED, resolved_at=timestamp(START - 60)))
        store.save_incident(incident("open", opened=START - 200_000))
        store.trim(buckets_before=T0 - 3600, hourly_before=T0 - 3600, resolved_before=timestamp(START - 86_400))
        assert [b.start for b in store.read("s", REQUEST, T0 - 10_000, T0 + 10)] == [T0]
        assert [b.start for b in store.read_hourly("s", REQUEST, T0 - 10_000, T0 + 10)] == [T0]
        store.trim(buckets_before=T0 + 10, hourly_before=T0, resolved_before=timestamp(START - 86_400))
        assert store.read("s", REQUEST, T0 - 10_000, T0 + 10) == []
        assert [b.start for b in store.read_hourly("s", REQUEST, T0 - 10_000, T0 + 10)] == [T0]
        assert store.read_rollup("s", REQUEST, 300, T0 - 10_000, T0 + 10) == []
        assert sorted(i.id for i in store.incidents()) == ["open", "recent"]
        assert [a.incident_id for a in store.alerts()] == []
        assert store.acknowledge_alert("old", timestamp(START)) is None
