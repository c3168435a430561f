"""What the dashboard shows, read once: every site's alerts and incidents, sorted and filtered.

An agency may watch a thousand client sites from one process. So the overview reads the
store three times whatever the number of sites (the site list, every alert, every recent
incident) and groups in Python; sites that need attention (an open incident or an unread
alert) come first, as full cards, and calm sites are one line each (with a handful of
sites, every site gets its full card). Trend charts are drawn
for the first few cards only (all of them on a site's own page), from store reads shared
between a site's charts.

Planned quiet is read the same way, twice for every site at once: the maintenance windows
running or to come and the silences in force, listed under the cards and marked on the
incidents they touch.

The same data, without the charts, is the page's JSON twin (``/api/overview``): its ETag is
the page's ``data-etag``, so the page's script asks "anything new?" and gets a bodiless
304 until something changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from attrs import define, field

from ..values import Alert, Incident, timestamp
from . import trends
from .planned import Marks, Planned

if TYPE_CHECKING:
    from .http import HealthApp

__all__ = ["TREND_SITES", "Overview", "SiteSection", "build_overview", "unread"]

#: With more sites needing attention than this, only the first get trend graphs on the overview.
TREND_SITES = 6
#: The ``show=`` filter's choices.
SHOW = ("all", "attention", "calm")


def unread(alert: Alert) -> bool:
    return alert.is_active and alert.acknowledged_at is None


def sorted_alerts(alerts: Sequence[Alert]) -> list[Alert]:
    """Active before resolved, unread before read, newest first within each."""
    ordered = sorted(alerts, key=lambda a: a.updated_at, reverse=True)
    return sorted(ordered, key=lambda a: (not a.is_active, not unread(a)))


@define
class SiteSection:
    """One site as the overview shows it."""

    name: str
    known: bool
    alerts: list[Alert]
    open: list[Incident]
    resolved: list[Incident]
    learning: bool = False
    charts: list[dict[str, trends.Series]] = field(factory=list)
    #: Active alerts nobody has acknowledged (counted once: a thousand sites ask often).
    unread: int = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.unread = sum(unread(a) for a in self.alerts)

    @property
    def needs_attention(self) -> bool:
        return bool(self.open) or self.unread > 0

    @property
    def worst(self) -> str | None:
        if any(i.severity == "critical" for i in self.open):
            return "critical"
        return "degraded" if self.open else None

    def rank(self) -> tuple[int, int, float]:
        """Critical first, then unread alerts, then the most recently opened."""
        latest = max((i.opened_at.timestamp() for i in self.open), default=0.0)
        return (self.worst != "critical", not self.unread, -latest)

    def state(self) -> dict[str, Any]:
        """What the page's script compares: changes to any of this redraw the page."""
        return {
            "site": self.name,
            "attention": self.needs_attention,
            "worst": self.worst,
            "open": len(self.open),
            "unread": self.unread,
            "alerts": [
                [
                    a.incident_id,
                    a.is_active,
                    unread(a),
                    a.affected_users,
                    a.acknowledged_at is not None,
                    a.notified_at is not None,
                    a.reminders,
                ]
                for a in self.alerts
            ],
            "incidents": [
                [
                    i.id,
                    i.status.value,
                    i.severity.value,
                    i.affected_users,
                    i.affected_now,
                    i.recovering_since is not None,
                    i.maintenance_id,
                ]
                for i in (*self.open, *self.resolved)
            ],
        }


@define
class Overview:
    sites: list[str]
    #: Sites shown in full: those needing attention, most pressing first (every site shown
    #: when there are only a few, calm ones last).
    cards: list[SiteSection]
    #: Calm sites, one line each.
    calm: list[SiteSection]
    chosen: str | None
    query: str
    show: str
    #: Every site's unread alerts, whatever the filter (the page's header pill).
    unread_total: int
    learning: frozenset[str]
    #: Maintenance windows running or to come, and silences in force, of the sites shown.
    planned: Planned = field(factory=Planned)
    _alerts: dict[str, Alert] = field(factory=dict)
    _incidents: dict[str, Incident] = field(factory=dict)

    def marks(self, incident: Incident, now: float) -> Marks:
        """What planned quiet did to an incident shown: maintenance, silence, its alert held."""
        alert = self._alerts.get(incident.alert_id) if incident.alert_id else None
        return self.planned.marks(incident, alert, timestamp(now))

    def alert_marks(self, alert: Alert, now: float) -> Marks:
        """The same, for an alert card: what its first incident says."""
        incident = self._incidents.get(alert.incident_id)
        return self.planned.marks(incident, alert, timestamp(now)) if incident is not None else Marks()

    @property
    def shown(self) -> int:
        return len(self.cards) + len(self.calm)

    @property
    def names(self) -> list[str]:
        """The sites shown, in order: those a window can be scheduled for from this page."""
        return [s.name for s in (*self.cards, *self.calm)]

    @property
    def hurting(self) -> int:
        """Sites shown that need attention."""
        return sum(s.needs_attention for s in self.cards)

    def state(self, now: float, status: dict[str, Any]) -> dict[str, Any]:
        """The JSON twin: sites needing attention first, then calm ones; no charts. Trends
        move on every five minutes (``trends_at``), and the monitor's own counters are in."""
        return {
            "site": self.chosen,
            "q": self.query,
            "show": self.show,
            "unread": self.unread_total,
            "sites_total": len(self.sites),
            "trends_at": trends.iso_seconds(now - now % trends.FIVE_MINUTES),
            "monitor": status,
            "sites": [s.state() for s in (*self.cards, *self.calm)],
            "planned": self.planned.state(),
        }


def build_overview(app: HealthApp, chosen: str | None, query: str = "", show: str = "all") -> Overview:
    """Read what the dashboard needs: a few store reads, whatever the number of sites."""
    monitor = app.monitor
    every = [monitor.site, *sorted(monitor.store.sites() - {monitor.site})]
    incidents: dict[str, list[Incident]] = defaultdict(list)
    for incident in monitor.incidents():
        incidents[incident.site].append(incident)
    alerts: dict[str, list[Alert]] = defaultdict(list)
    all_alerts = _alerts(app, sorted(incidents))
    for alert in all_alerts:
        alerts[alert.site].append(alert)
    learning = frozenset(monitor.status().learning)
    names = [chosen] if chosen is not None else every
    needle = query.casefold()
    attention, calm = [], []
    for name in names:
        if needle and needle not in name.casefold():
            continue
        mine = incidents.get(name, [])
        section = SiteSection(
            name=name,
            known=name in every,
            alerts=sorted_alerts(alerts.get(name, [])),
            open=[i for i in mine if i.is_open],
            resolved=[i for i in mine if not i.is_open],
            learning=name in learning,
        )
        if chosen is not None or section.needs_attention:
            if show != "calm" or chosen is not None:
                attention.append(section)
        elif show != "attention":
            calm.append(section)
    attention.sort(key=SiteSection.rank)
    if len(attention) + len(calm) <= TREND_SITES:
        attention, calm = attention + calm, []  # a few sites: every one in full, calm ones last
    planned = Planned.of(
        (w for w in monitor.maintenance(chosen) if needle in w.site.casefold()),
        (s for s in monitor.silences(chosen) if needle in s.site.casefold()),
    )
    return Overview(
        sites=every,
        cards=attention,
        calm=calm,
        chosen=chosen,
        query=query,
        show=show,
        unread_total=sum(unread(a) for a in all_alerts),
        learning=learning,
        planned=planned,
        alerts={a.incident_id: a for a in all_alerts},
        incidents={i.id: i for mine in incidents.values() for i in mine},
    )


#: With incidents at fewer sites than this, their alerts are read site by site.
_ALERTS_BY_SITE = 50


def _alerts(app: HealthApp, sites: list[str]) -> list[Alert]:
    """The alerts the view shows. Every one belongs to an incident it shows (open, or
    resolved within ``resolved_retention``, as the alert is), so only the sites with
    incidents are asked: on Redis that is a few small reads instead of three per site."""
    monitor = app.monitor
    if len(sites) >= _ALERTS_BY_SITE:
        return monitor.alerts()
    return [alert for site in sites for alert in monitor.alerts(site)]


def add_charts(app: HealthApp, overview: Overview) -> None:
    """Trend charts (24 hours and 7 days) for the first cards, and whether each is still
    learning its normal (a store read per card, so only for the cards shown in full)."""
    monitor = app.monitor
    for section in overview.cards[:TREND_SITES] if overview.chosen is None else overview.cards:
        if section.known:
            section.learning = monitor.learning(section.name)
        shown = [*section.open, *section.resolved]
        reads = trends.Reads(monitor, section.name)  # the week is read first: the day is inside it
        week = trends.trend_series(monitor, section.name, range_="7d", incidents=shown, reads=reads)
        day = trends.trend_series(monitor, section.name, range_="24h", incidents=shown, reads=reads)
        section.charts = [{"day": d, "week": w} for d, w in zip(day, week, strict=True)]
