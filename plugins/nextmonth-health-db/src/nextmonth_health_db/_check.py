"""The database-slowdown check: p95 query time against what was normal, two ways.

*Probes* time a cheap query (``SELECT 1``) on each configured database every
``interval``; the p95 of the last ``history`` probes is judged against a baseline made of
the probes before them. *Recorded* timings are the app's own queries, recorded through the
SDK with :func:`record_query` as the plugin's own signal (``db.query``); the p95 of the
monitor's window is judged against the window's baseline, as the bundled checks do, so
every worker's queries count.

Either way the line is ``max(slow_seconds, baseline_factor * baseline p95)``: a floor so
that 1 ms becoming 3 ms is not news, and a factor so that a database that is always a bit
slow is not an incident. While an incident is open, recovery is judged against the line it
opened at (kept on the incident as its ``threshold``), because a baseline fills up with
the slowdown itself.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import nextmonth_health as nmh
from nextmonth_health.plugin import REQUEST, ProbeCheck, UsersOf, get_logger, p95

from ._config import SIGNAL, DbConfig, Probe
from ._probes import Sample, run_probe

__all__ = ["RECORDED_KEY", "DbCheck", "judge", "p95", "record_query", "timed_query"]

#: The key of the reading (and incident) on recorded timings; probes are keyed by name.
RECORDED_KEY = "recorded"

log = get_logger(__name__)

_MIN_BASELINE = 5

_Target = tuple[str, str, str, float]


def judge(
    samples: Sequence[Sample], *, line: float, recovery: float, failure_ratio: float, min_probes: int
) -> tuple[nmh.Health, float | None]:
    """A database's status from its recent probes, and their p95 query time.

    Failed probes count towards the failure ratio, not the p95; timed-out ones are slow.
    Two slow probes at least, so one hiccup reads ``elevated`` (holding, not opening);
    every recent probe failing (the database is unreachable) is ``critical``.
    """
    latencies = [s.seconds for s in samples if not s.failed]
    value = p95(latencies)
    failed = sum(s.failed for s in samples)
    slow = sum(1 for s in samples if not s.failed and (s.timed_out or s.seconds > line))
    n = len(samples)
    if n >= min_probes:
        if all(s.failed for s in list(samples)[-min_probes:]):
            return nmh.Health.CRITICAL, value
        if failed >= 2 and failed / n >= failure_ratio:
            return nmh.Health.DEGRADED, value
        if slow >= 2 and value is not None and value > line:
            return nmh.Health.DEGRADED, value
    if failed or slow or (value is not None and value > recovery):
        return nmh.Health.ELEVATED, value
    return nmh.Health.OK, value


def record_query(
    monitor: nmh.Monitor, seconds: float, *, ok: bool = True, user: str | None = None, site: str | None = None
) -> None:
    """Record one of the app's database queries: how long it took and whether it worked.

    It is the plugin's own signal (``db.query``), recorded with ``monitor.record``: it
    costs what recording a request costs, never raises, and is counted by every worker
    process. Configure ``"recorded": True`` for the plugin to declare the signal and the
    check to judge it; until then the monitor drops these events, counts them
    (``status().drops["undeclared_signal"]``) and says so once in its log.
    """
    monitor.record(SIGNAL, ok=ok, value=seconds, user=user, site=site)


@contextlib.contextmanager
def timed_query(monitor: nmh.Monitor, *, user: str | None = None, site: str | None = None) -> Iterator[None]:
    """Time the block as one query: ``with timed_query(monitor): cursor.execute(...)``.

    A block that raises records a failed query (and the exception goes on).
    """
    started = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        record_query(monitor, time.perf_counter() - started, ok=ok, user=user, site=site)


class DbCheck(ProbeCheck[DbConfig, Probe, Sample]):
    """The ``db_slowdown`` check: one reading per probe and one for recorded timings, per site.

    :param configs: the validated options per site, ``None`` holding the monitor-wide
        ones; a site with no options (``None``) gets no readings. The runner's timeout is
        a backstop only: every probe stops itself at its own ``timeout``.
    """

    name = "db_slowdown"
    backstop = 5.0

    def __init__(self, configs: Mapping[str | None, DbConfig | None]) -> None:
        super().__init__(configs)
        self._baseline: dict[Hashable, deque[float]] = {}

    def items(self, config: DbConfig) -> Sequence[Probe]:
        return config.probes

    def target(self, probe: Probe, config: DbConfig) -> _Target:
        return (probe.kind, probe.dsn, probe.query, config.timeout)

    def history(self, site: str, name: str) -> list[Sample]:
        """The recent probes of the database ``name`` that ``site``'s readings judge."""
        config = self.config_for(site)
        for probe in config.probes if config else ():
            if probe.name == name:
                return self.samples(self.target(probe, config))
        return []

    def _line(self, target: Hashable, config: DbConfig) -> tuple[float, float | None]:
        baseline = self._baseline.get(target, ())
        reference = p95(list(baseline)) if len(baseline) >= _MIN_BASELINE else None
        line = (
            config.slow_seconds if reference is None else max(config.slow_seconds, config.baseline_factor * reference)
        )
        return line, reference

    async def probe(self, probe: Probe, config: DbConfig, session: Any) -> Sample:
        sample = await run_probe(probe, config.timeout)
        if sample.failed or sample.timed_out:
            log.debug("nextmonth_health_db.probe", name=probe.name, outcome=sample.outcome, seconds=sample.seconds)
        return sample

    def keep(self, target: Hashable, sample: Sample, config: DbConfig) -> None:
        recent = self.samples(target)
        baseline = self._baseline.get(target)
        if baseline is None or baseline.maxlen != config.baseline_history:
            baseline = self._baseline[target] = deque(baseline or (), maxlen=config.baseline_history)
        if len(recent) >= config.history:
            leaving = recent[len(recent) - config.history]
            line, _ = self._line(target, config)
            # Only what looked normal becomes normal: a slowdown never raises its own bar.
            if not leaving.failed and not leaving.timed_out and leaving.seconds <= line:
                baseline.append(leaving.seconds)
        super().keep(target, sample, config)

    def readings(self, view: nmh.SiteView, config: DbConfig) -> list[nmh.Reading]:
        readings = [self._probe_reading(view, config, probe) for probe in config.probes]
        if config.recorded is not None:
            readings.append(self._recorded_reading(view, config))
        return readings

    def _probe_reading(self, view: nmh.SiteView, config: DbConfig, probe: Probe) -> nmh.Reading:
        target = self.target(probe, config)
        samples = self.samples(target)
        line, reference = self._line(target, config)
        incident = view.incident(self.name, probe.name)
        if incident is not None and incident.threshold is not None:
            line = incident.threshold
        status, value = judge(
            samples,
            line=line,
            recovery=line * config.recovery_ratio,
            failure_ratio=config.failure_ratio,
            min_probes=config.min_probes,
        )
        # Every request waits on the database: the users active in the window are its users.
        affected = view.users(UsersOf(REQUEST)) if status is not nmh.Health.OK else 0
        return nmh.Reading(
            check=self.name,
            site=view.site,
            key=probe.name,
            area=probe.area,
            status=status,
            subject=f"Database query times on {probe.name}",
            value=value,
            threshold=line,
            affected_users=affected,
            detail={
                "source": "probe",
                "probes": len(samples),
                "failures": sum(s.failed for s in samples),
                "timeouts": sum(s.timed_out for s in samples),
                "last": samples[-1].outcome if samples else None,
                "baseline_p95": reference,
            },
        )

    def _recorded_reading(self, view: nmh.SiteView, config: DbConfig) -> nmh.Reading:
        assert config.recorded is not None
        enough = config.recorded.min_samples
        window = view.window(SIGNAL)
        baseline = view.baseline(SIGNAL)
        reference = baseline.quantile(0.95) if baseline.samples >= enough else None
        line = (
            config.slow_seconds if reference is None else max(config.slow_seconds, config.baseline_factor * reference)
        )
        incident = view.incident(self.name, RECORDED_KEY)
        if incident is not None and incident.threshold is not None:
            line = incident.threshold
        value = window.quantile(0.95)
        if window.samples < enough or value is None:
            status = nmh.Health.OK  # too little traffic to say anything
        elif window.bad >= 2 and window.ratio >= config.failure_ratio or value > line:
            status = nmh.Health.DEGRADED
        elif value > line * config.recovery_ratio or window.bad:
            status = nmh.Health.ELEVATED
        else:
            status = nmh.Health.OK
        affected = view.users(UsersOf(SIGNAL)) if status is not nmh.Health.OK else 0
        return nmh.Reading(
            check=self.name,
            site=view.site,
            key=RECORDED_KEY,
            area=config.recorded.area,
            status=status,
            subject="Database query times recorded by the app",
            value=value,
            threshold=line,
            affected_users=affected,
            detail={
                "source": "recorded",
                "samples": window.samples,
                "failures": window.bad,
                "baseline_p95": reference,
            },
        )
