"""Readings in, incident transitions out: open, escalate, update, resolve — calmly.

One open incident per (site, check, key). Severity only rises. A problem reading opens an
incident at its severity; one still open after ``escalate_after`` becomes critical. Critical
means the admin is alerted, so a check that counts people also needs ``alert_min_users``
of them hurt since the incident opened: one client retrying a failing endpoint thirty
times a second is shown the notice, and Rob is not paged for it. (A check that counts
nobody, such as a probe of a CDN or a database, reports 0 and alerts on its own
judgement.) An incident resolves only after its signal has
read healthy for a whole ``cooldown_seconds`` (anything but healthy restarts that count),
so a noisy signal cannot flap. ``elevated`` readings hold everything where it is;
``unknown`` readings (failed checks) change nothing.

Planned quiet (:mod:`~nextmonth_health.tell.quiet`) changes what is told, never what is
recorded: an incident seen in a maintenance window carries its id, and a transition a
window or a silence covers is marked ``muted`` and not handed to the sinks. The alert is
kept either way (the admin view shows it); ``notified_at`` says whether the push sinks
were told, so an alert never told has no resolution to tell, and one held back is told,
or told again, by :meth:`IncidentTracker.remind`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import attrs

from ..errors import ErrorReporter
from ..settings import Settings
from ..store.base import Fence, Store
from ..tell.alerts import alert_for
from ..tell.quiet import NONE, Quiet
from ..values import (
    SITE_AREA,
    Alert,
    Health,
    Incident,
    IncidentStatus,
    Reading,
    Severity,
    Transition,
    TransitionKind,
    timestamp,
)

__all__ = ["UNTOLD", "IncidentTracker"]

#: ``Transition.muted`` for news of an alert the push sinks were never told of: its
#: resolution, or its growth before :meth:`IncidentTracker.remind` has told it.
UNTOLD = "untold"

#: A growing count of people hurt is announced to the sinks (an ``updated`` transition) at
#: once when it jumps by this factor, else at most every ``_ANNOUNCE_EVERY`` seconds; in
#: between, the incident and its alert's words keep the exact count quietly (what the
#: admin view shows), so a long outage whose count creeps up by a person or two a pass
#: does not message a webhook or a mailbox on every pass.
_ANNOUNCE_JUMP = 1.2
_ANNOUNCE_EVERY = 60.0


class IncidentTracker:
    """Folds readings into incidents and keeps each critical one's alert in the store,
    where the admin view reads it (no sink involved).

    ``errors`` hears of an alert the store would not keep: the transition is still told,
    and the next pass's :meth:`remind` keeps the alert.
    """

    def __init__(self, store: Store, errors: ErrorReporter | None = None) -> None:
        self.store = store
        self.errors = errors

    def _keep(self, alert: Alert) -> None:
        try:
            self.store.save_alert(alert)
        except Exception as exc:
            if self.errors is None:
                raise
            self.errors.report("store.save_alert", exc)

    def _save(self, incident: Incident, fence: Fence | None) -> Incident:
        if fence is None:
            return self.store.save_incident(incident)
        return self.store.save_incident(incident, fence=fence)

    def apply(
        self,
        site: str,
        readings: Iterable[Reading],
        now: float,
        settings: Settings,
        *,
        checks_run: Iterable[str],
        open_now: Iterable[Incident] | None = None,
        fence: Fence | None = None,
        quiet: Quiet = NONE,
    ) -> list[Transition]:
        """Fold one pass's readings for a site into its incidents; return what changed.

        ``checks_run`` names the checks that ran to completion this pass: their open
        incidents with no reading count as healthy, the others' are left alone.
        ``open_now`` saves a store read when the caller already has the open incidents.
        ``fence`` is the site lease's token this pass took: every write carries it (on a
        store with fencing), and a lease taken by another process since raises
        :class:`~nextmonth_health.errors.StaleLease` before anything is announced.
        ``quiet``: the site's maintenance windows and silences.
        """
        fence = fence if self.store.fencing else None
        if open_now is None:
            open_now = self.store.incidents(site, open_only=True)
        if not open_now:
            readings = list(readings)
            if not any(reading.status.is_problem for reading in readings):
                return []  # the usual pass of a healthy site: nothing open, nothing to open
        at = timestamp(now)
        by_key = {(i.check, i.key): i for i in open_now}
        if quiet.windows:
            for check_key, held in by_key.items():
                window = quiet.maintenance_for(held, at)
                if window is not None and held.maintenance_id is None:
                    by_key[check_key] = self._save(attrs.evolve(held, maintenance_id=window.id), fence)
        transitions: list[Transition] = []
        seen: set[tuple[str, str]] = set()
        for reading in readings:
            seen.add((reading.check, reading.key))
            incident = by_key.get((reading.check, reading.key))
            transition = self._step(incident, reading, at, settings, fence)
            if transition is not None:
                if incident is None and quiet.windows:
                    window = quiet.maintenance_for(transition.incident, at)
                    if window is not None:
                        opened = attrs.evolve(transition.incident, maintenance_id=window.id)
                        transition = attrs.evolve(transition, incident=opened)
                transitions.append(transition)
        ran = set(checks_run)
        for (check, key), incident in by_key.items():
            if check in ran and (check, key) not in seen:
                healthy = Reading(
                    check=check,
                    site=site,
                    key=key,
                    area=incident.area,
                    status=Health.OK,
                    subject=incident.summary,
                )
                transition = self._step(incident, healthy, at, settings, fence)
                if transition is not None:
                    transitions.append(transition)
        return self._mute(self._commit(transitions, by_key.values(), at, fence), at, quiet)

    def _step(
        self,
        incident: Incident | None,
        reading: Reading,
        at: datetime,
        settings: Settings,
        fence: Fence | None,
    ) -> Transition | None:
        health = reading.status
        now_users = reading.affected_users if reading.affected_now is None else reading.affected_now
        if incident is None:
            if not health.is_problem:
                return None
            critical = health is Health.CRITICAL and _enough_people(reading.affected_users, settings)
            opened = Incident(
                id=uuid.uuid4().hex,
                site=reading.site,
                check=reading.check,
                area=reading.area,
                key=reading.key,
                severity=Severity.CRITICAL if critical else Severity.DEGRADED,
                status=IncidentStatus.OPEN,
                affected_users=reading.affected_users,
                affected_now=now_users,
                opened_at=at,
                updated_at=at,
                summary=reading.subject,
                escalated_at=at if critical else None,
                value=reading.value,
                threshold=reading.threshold,
            )
            return Transition(kind=TransitionKind.OPENED, incident=opened)
        if health is Health.UNKNOWN:
            return None
        if health is Health.OK:
            if incident.recovering_since is None:
                changed = attrs.evolve(incident, recovering_since=at, value=reading.value)
                self._save(changed, fence)
                return None
            if (at - incident.recovering_since).total_seconds() < settings.cooldown_seconds:
                return None
            resolved = attrs.evolve(
                incident,
                status=IncidentStatus.RESOLVED,
                resolved_at=at,
                updated_at=at,
                value=reading.value,
            )
            return Transition(kind=TransitionKind.RESOLVED, incident=resolved, previous=incident)
        held = (at - incident.opened_at).total_seconds() >= settings.escalate_after
        users = max(incident.affected_users, reading.affected_users)
        escalate = (
            incident.severity is Severity.DEGRADED
            and _enough_people(users, settings)
            and (health is Health.CRITICAL or (health is Health.DEGRADED and held))
        )
        if escalate:
            changed = attrs.evolve(
                incident,
                severity=Severity.CRITICAL,
                escalated_at=at,
                updated_at=at,
                affected_users=users,
                affected_now=now_users,
                recovering_since=None,
                value=reading.value,
            )
            return Transition(kind=TransitionKind.ESCALATED, incident=changed, previous=incident)
        if users > incident.affected_users:
            loud = (
                users >= _ANNOUNCE_JUMP * incident.affected_users
                or (at - incident.updated_at).total_seconds() >= _ANNOUNCE_EVERY
            )
            changed = attrs.evolve(
                incident,
                affected_users=users,
                affected_now=now_users,
                updated_at=at if loud else incident.updated_at,
                recovering_since=None,
                value=reading.value,
            )
            return Transition(kind=TransitionKind.UPDATED, incident=changed, previous=incident, quiet=not loud)
        if (
            incident.recovering_since is not None
            or now_users != incident.affected_now
            or users != incident.affected_users
        ):
            self._save(
                attrs.evolve(
                    incident,
                    recovering_since=None,
                    affected_users=users,
                    affected_now=now_users,
                    value=reading.value,
                ),
                fence,
            )
        return None

    def _commit(
        self,
        transitions: list[Transition],
        open_before: Iterable[Incident],
        at: datetime,
        fence: Fence | None,
    ) -> list[Transition]:
        """Store the changed incidents and attach each critical one's alert.

        One problem, one alert: a critical incident in an area that already has an
        active alert joins it (``alert_id``) instead of raising another, so failing
        uploads that show up as both 5xx on /media-upload and failed uploads page the
        admin once. A site-wide incident (area ``site``) is in every area: it joins, and
        is joined by, any of the site's. The alert stays active until its last incident
        resolves.
        """
        current = {i.id: i for i in open_before}
        for index, transition in enumerate(transitions):
            incident = transition.incident
            if incident.severity is Severity.CRITICAL and incident.alert_id is None:
                current.pop(incident.id, None)
                joined = next(
                    (
                        i.alert_id
                        for i in sorted(current.values(), key=lambda i: i.opened_at)
                        if i.is_open and i.alert_id is not None and _one_area(i.area, incident.area)
                    ),
                    incident.id,
                )
                incident = attrs.evolve(incident, alert_id=joined)
                transitions[index] = attrs.evolve(transition, incident=incident)
            current[incident.id] = incident
        committed = []
        for transition in transitions:
            incident = transition.incident
            stored = self._save(incident, fence)
            if stored.id != incident.id or stored.status != incident.status:
                continue  # another process got there first: its transition is the one announced
            if incident.alert_id is not None:
                members = [
                    i for i in current.values() if i.alert_id == incident.alert_id and (i.is_open or i is incident)
                ]
                transition = attrs.evolve(transition, alert=alert_for(incident.alert_id, members, at))
                if transition.quiet:  # the alert's words follow the count; nobody is told
                    self._keep(transition.alert)  # type: ignore[arg-type]
            if not transition.quiet:
                committed.append(transition)
        return committed

    def _mute(self, transitions: list[Transition], at: datetime, quiet: Quiet) -> list[Transition]:
        """Mark what must not be pushed, note the alerts pushed for the first time, and
        keep every alert where the admin view reads it."""
        told: dict[str, Alert] | None = None
        marked = []
        for transition in transitions:
            incident, alert = transition.incident, transition.alert
            reason = quiet.muted(incident, at)
            if alert is not None:
                if told is None:
                    told = {a.incident_id: a for a in self.store.alerts(incident.site)}
                stored = told.get(alert.incident_id)
                notified = stored.notified_at if stored is not None else None
                if transition.kind is TransitionKind.RESOLVED:
                    # A told alert is always told resolved; one never told, never.
                    reason = UNTOLD if notified is None else None
                elif reason is None and notified is None:
                    if transition.kind is TransitionKind.UPDATED:
                        reason = UNTOLD
                    else:
                        alert = attrs.evolve(alert, notified_at=at)
                        told[alert.incident_id] = alert
                self._keep(alert)
            marked.append(
                attrs.evolve(transition, alert=alert, muted=reason)
                if reason or alert is not transition.alert
                else transition
            )
        return marked

    def remind(
        self,
        site: str,
        open_now: Iterable[Incident],
        now: float,
        settings: Settings,
        *,
        quiet: Quiet = NONE,
    ) -> list[Transition]:
        """Tell the push sinks again of each active, unacknowledged alert of the site that
        is due: never told (a maintenance window or a silence held it, and has ended), or
        told ``alert_repeat_seconds`` ago. Nothing while every open incident of the alert
        is still held quiet. Each is claimed in the store first (compare and set on
        ``notified_at``), so of two processes only one tells it.
        """
        members: dict[str, list[Incident]] = {}
        for incident in open_now:
            if incident.is_open and incident.alert_id is not None:
                members.setdefault(incident.alert_id, []).append(incident)
        if not members:
            return []
        at = timestamp(now)
        repeat = settings.alert_repeat_seconds
        reminded = []
        stored = self.store.alerts(site)
        for alert_id in members.keys() - {a.incident_id for a in stored}:
            kept = alert_for(alert_id, members[alert_id], at)  # a save that failed: keep it now
            self._keep(kept)
            stored.append(kept)
        for alert in stored:
            held = members.get(alert.incident_id)
            if not held or not alert.is_active or alert.acknowledged_at is not None:
                continue
            if all(quiet.muted(i, at) for i in held):
                continue
            if alert.notified_at is not None and (not repeat or (at - alert.notified_at).total_seconds() < repeat):
                continue
            claimed = self.store.mark_alert_notified(
                alert.incident_id,
                expected=alert.notified_at,
                at=at,
                reminder=alert.notified_at is not None,
            )
            if claimed is None:
                continue  # another process told them
            primary = next((i for i in held if i.id == alert.incident_id), held[0])
            reminded.append(Transition(kind=TransitionKind.REMINDED, incident=primary, previous=primary, alert=claimed))
        return reminded


def _one_area(a: str, b: str) -> bool:
    """Whether incidents in areas ``a`` and ``b`` share an alert: the same area, or one is site-wide."""
    return a == b or SITE_AREA in (a, b)


def _enough_people(users: int, settings: Settings) -> bool:
    """Whether an incident hurting ``users`` people may alert: 0 means its check counts nobody."""
    return users == 0 or users >= settings.alert_min_users
