"""The CDN probe: fetch each asset on an interval, judge the last few fetches, not one.

Each pass that is due fetches every configured asset once, concurrently, each under its
own deadline. A fetch that runs out of time is cut off and recorded as a *slow* sample of
exactly ``timeout`` seconds, so a hung CDN reads as the slowdown it is and the pass moves
on at once: the check never reaches the runner's own timeout. Readings judge the p95 of
the last ``history`` fetches of an asset, which is what gives the check its hysteresis —
one slow fetch reads ``elevated`` (holding an incident where it is), two or more make a
problem, and recovery waits for the slow fetches to age out of the history (then the
monitor's cool-down).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence

import anyio
import httpx
import nextmonth_health as nmh
from attrs import frozen
from nextmonth_health.logs import get_logger
from nextmonth_health.signals import PAGE_LOAD, REQUEST

from ._config import Asset, CdnConfig

__all__ = ["CdnCheck", "Sample", "judge", "p95"]

log = get_logger(__name__)

USER_AGENT = "nextmonth-health-cdn/0.1 (+health probe)"


@frozen
class Sample:
    """One fetch: how long it took, and whether it failed or ran out of time."""

    seconds: float
    failed: bool = False
    timed_out: bool = False
    outcome: str = ""


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile by linear interpolation (numpy's default), or None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def judge(
    samples: Sequence[Sample], *, slow: float, recovery: float, failure_ratio: float, min_probes: int
) -> tuple[nmh.Health, float | None]:
    """The status of an asset from its recent fetches, and their p95 latency.

    Failed fetches (errors, 4xx, 5xx) count towards the failure ratio and not the p95;
    timed-out ones count as slow. Until ``min_probes`` fetches are in, the check can say
    ``elevated`` but never open an incident.
    """
    latencies = [s.seconds for s in samples if not s.failed]
    value = p95(latencies)
    failed = sum(s.failed for s in samples)
    slow_count = sum(1 for s in samples if not s.failed and (s.timed_out or s.seconds > slow))
    n = len(samples)
    if n >= min_probes:
        if all(s.failed for s in list(samples)[-min_probes:]):
            return nmh.Health.CRITICAL, value
        if failed >= 2 and failed / n >= failure_ratio:
            return nmh.Health.DEGRADED, value
        if slow_count >= 2 and value is not None and value > slow:
            return nmh.Health.DEGRADED, value
    if failed or slow_count or (value is not None and value > recovery):
        return nmh.Health.ELEVATED, value
    return nmh.Health.OK, value


#: What a fetch is, for sharing: two sites probing the same URL the same way share history.
_Target = tuple[str, float, tuple[tuple[str, str], ...], int]


class CdnCheck:
    """The ``cdn_delay`` check: one reading per configured asset per site.

    :param configs: the validated options per site, ``None`` holding the monitor-wide
        ones; a site with no options (``None``) gets no readings.
    """

    name = "cdn_delay"

    def __init__(self, configs: Mapping[str | None, CdnConfig | None]) -> None:
        self._configs = dict(configs)
        present = [c for c in self._configs.values() if c is not None]
        #: Monitor-wide: the core schedules a check, not a check per site.
        self.interval: float | None = min(c.interval for c in present)
        #: A backstop only: every fetch is cut off at its own ``timeout`` first.
        self.timeout: float | None = max(c.timeout for c in present) + 2.0
        self._history: dict[_Target, deque[Sample]] = {}
        self._probed_at: dict[_Target, float] = {}

    def config_for(self, site: str) -> CdnConfig | None:
        return self._configs.get(site, self._configs.get(None))

    @staticmethod
    def _target(asset: Asset, config: CdnConfig) -> _Target:
        return (asset.url, config.timeout, tuple(sorted(config.headers.items())), config.max_bytes)

    def history(self, site: str, url: str) -> list[Sample]:
        """The fetches of ``url`` that ``site``'s readings are judged on (oldest first)."""
        config = self.config_for(site)
        for asset in config.assets if config else ():
            if asset.url == url:
                return list(self._history.get(self._target(asset, config), ()))
        return []

    async def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        config = self.config_for(view.site)
        if config is None:
            return []
        due = []
        for asset in config.assets:
            target = self._target(asset, config)
            last = self._probed_at.get(target)
            # Sites are evaluated one after another in a pass: the first fetch serves all.
            if last is None or view.now - last >= config.interval / 2:
                due.append((asset, target))
        if due:
            async with (
                httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=True) as client,
                anyio.create_task_group() as tg,
            ):
                for asset, target in due:
                    tg.start_soon(self._probe, client, asset, target, config, view.now)
        return [self._reading(view, config, asset) for asset in config.assets]

    async def _probe(
        self, client: httpx.AsyncClient, asset: Asset, target: _Target, config: CdnConfig, now: float
    ) -> None:
        started = time.perf_counter()
        sample: Sample | None = None
        with anyio.move_on_after(config.timeout):
            try:
                async with client.stream(
                    "GET", asset.url, headers=dict(config.headers), timeout=config.timeout
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= config.max_bytes:
                            break
                elapsed = time.perf_counter() - started
                failed = response.status_code >= 400
                sample = Sample(elapsed, failed=failed, outcome=str(response.status_code))
            except httpx.TimeoutException:
                pass
            except httpx.HTTPError as exc:
                sample = Sample(time.perf_counter() - started, failed=True, outcome=type(exc).__name__)
        if sample is None:
            sample = Sample(config.timeout, timed_out=True, outcome="timeout")
        history = self._history.get(target)
        if history is None or history.maxlen != config.history:
            history = self._history[target] = deque(history or (), maxlen=config.history)
        history.append(sample)
        self._probed_at[target] = now
        if sample.failed or sample.timed_out:
            log.debug("nextmonth_health_cdn.probe", key=asset.key, outcome=sample.outcome, seconds=sample.seconds)

    def _reading(self, view: nmh.SiteView, config: CdnConfig, asset: Asset) -> nmh.Reading:
        samples = list(self._history.get(self._target(asset, config), ()))
        status, value = judge(
            samples,
            slow=config.slow_seconds,
            recovery=config.recovery_seconds,
            failure_ratio=config.failure_ratio,
            min_probes=config.min_probes,
        )
        affected = 0
        if status is not nmh.Health.OK:
            # Users active in the asset's area are the ones who load it.
            routes = [prefix for prefix, area in view.settings.routes.items() if area == asset.area]
            if routes:
                affected = view.users((REQUEST, routes, False), (PAGE_LOAD, routes, False))
        return nmh.Reading(
            check=self.name,
            site=view.site,
            key=asset.key,
            area=asset.area,
            status=status,
            subject=f"CDN delays on {asset.host}",
            value=value,
            threshold=config.slow_seconds,
            affected_users=affected,
            detail={
                "probes": len(samples),
                "failures": sum(s.failed for s in samples),
                "timeouts": sum(s.timed_out for s in samples),
                "last": samples[-1].outcome if samples else None,
            },
        )
