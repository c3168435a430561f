"""User-facing notices: the renderer interface, and the board that answers for every area.

The board keeps each site's open incidents in memory, refreshed by the runner after each
pass and flush, so that :meth:`NoticeBoard.notices` — on the request path — never waits
on the store while the monitor runs. It renders each incident once per severity (and
each planned-maintenance notice once per window and area) and answers from that.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..values import SITE_AREA, Incident, MaintenanceWindow, Notice, timestamp
from .quiet import planned_notice

if TYPE_CHECKING:
    from ..clock import Clock
    from ..errors import ErrorReporter
    from ..store import Store

__all__ = ["MessageRenderer", "NoticeBoard"]

#: How long a site's open incidents, read from the store, answer a monitor that is not
#: running (one driven by explicit ``evaluate()`` calls).
CACHE_SECONDS = 1.0
#: Sites, and rendered notices, kept before the memory is cleared.
_LIMIT = 10_000


@runtime_checkable
class MessageRenderer(Protocol):
    """Turns an open incident into the notice users see at its area.

    Registered through ``register_message_renderers``. ``areas`` limits which areas the
    renderer speaks for (``None``: all). ``render`` may return ``None`` to let the next
    renderer answer. Write for people: no codes, numbers, internal names or blame. An
    optional ``render_maintenance(window, incident)`` words planned work the same way.
    """

    name: str
    areas: Collection[str] | None

    def render(self, incident: Incident) -> Notice | None: ...


class NoticeBoard:
    """The notice each area shows now, answered from memory.

    :param running: whether the runner keeps the board fresh (then a snapshot, however
        old, is answered as is, and a blocking store is never read on the request path).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        renderers: Sequence[MessageRenderer],
        errors: ErrorReporter,
        running: Callable[[], bool],
    ) -> None:
        self.store = store
        self.clock = clock
        self.renderers = renderers
        self.errors = errors
        self._running = running
        self._open: dict[str, tuple[float, list[Incident]]] = {}
        #: The maintenance windows open incidents name, read with them (only when one does).
        self._windows: dict[str, MaintenanceWindow] = {}
        self._rendered: dict[tuple[str, str], Notice | None] = {}

    def refresh(self) -> None:
        """Re-read the open incidents of every site whose notices were asked for."""
        now = self.clock.now()
        planned = False
        for site in list(self._open):
            try:
                incidents = self.store.incidents(site, open_only=True)
                self._open[site] = (now + CACHE_SECONDS, incidents)
                planned = planned or any(i.maintenance_id is not None for i in incidents)
            except Exception as exc:
                self.errors.report("notices.refresh", exc)
        if planned:  # a window may have been ended or moved by another process
            self._read_windows()

    def notices(self, area: str, site: str) -> list[Notice]:
        """At most one notice for ``area``: the most serious open incident's, a site-wide
        one (area ``site``) counting in every area; planned-maintenance words while the
        window the incident was seen in runs. Never raises: a store that cannot be read is
        reported and the last incidents known keep their notices."""
        try:
            incidents = [i for i in self._open_incidents(site) if i.area == area or i.area == SITE_AREA]
            incidents.sort(key=lambda i: (i.severity.rank, i.opened_at), reverse=True)
            for incident in incidents:
                window = self._windows.get(incident.maintenance_id) if incident.maintenance_id else None
                if window is not None and window.is_active(timestamp(self.clock.now())):
                    notice: Notice | None = self._render_planned(window, incident)
                else:
                    notice = self._render(incident)
                if notice is not None:
                    return [notice]
        except Exception as exc:
            self.errors.report("notices", exc)
        return []

    def _read_windows(self) -> None:
        try:
            self._windows = {w.id: w for w in self.store.maintenance_windows()}
        except Exception as exc:
            self.errors.report("notices.refresh", exc)

    def _open_incidents(self, site: str) -> list[Incident]:
        """Open incidents from the snapshot; the store is read only without a fresh one.

        While the runner runs, it keeps the snapshot fresh and this never touches the
        store. A site asked for the first time, or a monitor driven only by explicit
        ``evaluate()`` calls with a stale snapshot, reads the store once.
        """
        cached = self._open.get(site)
        running = self._running()
        if cached is not None and (running or cached[0] > self.clock.now()):
            return cached[1]
        if len(self._open) >= _LIMIT:
            self._open.clear()
        if running and self.store.blocking:
            # Never wait on SQLite or Redis here: the runner fills this in within a flush.
            self._open[site] = (0.0, [])
            return []
        try:
            incidents = self.store.incidents(site, open_only=True)
            if any(i.maintenance_id is not None and i.maintenance_id not in self._windows for i in incidents):
                self._read_windows()
        except Exception as exc:
            if cached is None:
                raise
            self.errors.report("notices", exc)  # counted; the last incidents known are no calm
            return cached[1]
        self._open[site] = (self.clock.now() + CACHE_SECONDS, incidents)
        return incidents

    def _render(self, incident: Incident) -> Notice | None:
        key = (incident.id, incident.severity.value)
        if key in self._rendered:
            return self._rendered[key]
        notice = self._ask(incident, lambda renderer: renderer.render(incident))
        self._remember(key, notice)
        return notice

    def _render_planned(self, window: MaintenanceWindow, incident: Incident) -> Notice:
        """A renderer's ``render_maintenance`` if one answers, else the bundled words."""
        key = (window.id, incident.area)
        notice = self._rendered.get(key)
        if notice is None:
            notice = self._ask(
                incident,
                lambda renderer: (
                    render(window, incident)
                    if (render := getattr(renderer, "render_maintenance", None)) is not None
                    else None
                ),
            )
            notice = notice or planned_notice(incident)
            self._remember(key, notice)
        return notice

    def _ask(self, incident: Incident, render: Callable[[MessageRenderer], object]) -> Notice | None:
        """The first notice a renderer speaking for the incident's area gives; a raising
        renderer is reported and skipped."""
        for renderer in self.renderers:
            areas = getattr(renderer, "areas", None)
            if areas is not None and incident.area not in areas:
                continue
            try:
                notice = render(renderer)
            except Exception as exc:
                self.errors.report(f"renderer.{getattr(renderer, 'name', '?')}", exc)
                continue
            if isinstance(notice, Notice):
                return notice
        return None

    def _remember(self, key: tuple[str, str], notice: Notice | None) -> None:
        if len(self._rendered) > _LIMIT:
            self._rendered.clear()
        self._rendered[key] = notice
