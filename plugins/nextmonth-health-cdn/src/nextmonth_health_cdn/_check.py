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

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import anyio
import httpx
import nextmonth_health as nmh
from attrs import frozen
from nextmonth_health.plugin import PAGE_LOAD, REQUEST, ProbeCheck, UsersOf, get_logger, p95

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


class CdnCheck(ProbeCheck[CdnConfig, Asset, Sample]):
    """The ``cdn_delay`` check: one reading per configured asset per site.

    :param configs: the validated options per site, ``None`` holding the monitor-wide
        ones; a site with no options (``None``) gets no readings. The runner's timeout is
        a backstop only: every fetch is cut off at its own ``timeout`` first.
    """

    name = "cdn_delay"

    def items(self, config: CdnConfig) -> Sequence[Asset]:
        return config.assets

    def target(self, asset: Asset, config: CdnConfig) -> _Target:
        return (asset.url, config.timeout, tuple(sorted(config.headers.items())), config.max_bytes)

    def history(self, site: str, url: str) -> list[Sample]:
        """The fetches of ``url`` that ``site``'s readings are judged on (oldest first)."""
        config = self.config_for(site)
        for asset in config.assets if config else ():
            if asset.url == url:
                return self.samples(self.target(asset, config))
        return []

    @contextlib.asynccontextmanager
    async def session(self, config: CdnConfig) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=True) as client:
            yield client

    async def probe(self, asset: Asset, config: CdnConfig, client: httpx.AsyncClient) -> Sample:
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
        if sample.failed or sample.timed_out:
            log.debug("nextmonth_health_cdn.probe", key=asset.key, outcome=sample.outcome, seconds=sample.seconds)
        return sample

    def readings(self, view: nmh.SiteView, config: CdnConfig) -> list[nmh.Reading]:
        return [self._reading(view, config, asset) for asset in config.assets]

    def _reading(self, view: nmh.SiteView, config: CdnConfig, asset: Asset) -> nmh.Reading:
        samples = self.samples(self.target(asset, config))
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
                affected = view.users(UsersOf(REQUEST, routes), UsersOf(PAGE_LOAD, routes))
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
