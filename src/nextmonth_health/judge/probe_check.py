"""The skeleton of an active probe: a check that goes and measures something (a CDN
asset, a database) on an interval, rather than reading what the app recorded.

What every such check gets wrong at first is the same: the core schedules a *check*,
not a check per site, so its ``interval`` and ``timeout`` are the tightest of every
site's; several sites probing the same target should share one probe a pass, not one
each; and a probe that hangs must not hold up the pass. :class:`ProbeCheck` does that
part; a subclass says what to probe, how, and how to judge the samples.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import anyio

from ..values import Reading
from .windows import SiteView

__all__ = ["ProbeCheck", "ProbeConfig", "p95"]


class ProbeConfig(Protocol):
    """What :class:`ProbeCheck` reads from a site's validated options."""

    @property
    def interval(self) -> float: ...
    @property
    def timeout(self) -> float: ...
    @property
    def history(self) -> int: ...


ConfigT = TypeVar("ConfigT", bound=ProbeConfig)
ItemT = TypeVar("ItemT")
SampleT = TypeVar("SampleT")


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile by linear interpolation (numpy's default), or None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class ProbeCheck(Generic[ConfigT, ItemT, SampleT]):
    """A check that probes each configured item of a site, concurrently, when due.

    :param configs: each site's validated options (``None`` keys the monitor-wide ones,
        as :func:`~nextmonth_health.plugin.plugin_configs` returns them); a site whose
        options are ``None`` gets no readings. Each config has ``interval``, ``timeout``
        (seconds one probe may take) and ``history`` (samples kept per target).

    A subclass sets ``name`` and implements :meth:`items`, :meth:`target`, :meth:`probe`
    (which must return within ``config.timeout``: a timed-out probe is a sample, never an
    exception) and :meth:`readings`. ``backstop`` seconds are added to the longest
    timeout for the runner's own deadline, which then only catches a probe that broke
    its promise.
    """

    name: ClassVar[str]
    backstop: ClassVar[float] = 2.0

    def __init__(self, configs: Mapping[str | None, ConfigT | None]) -> None:
        self._configs = dict(configs)
        present = [c for c in self._configs.values() if c is not None]
        if not present:
            raise ValueError(f"{type(self).__name__} needs the options of at least one site")
        self.interval: float | None = min(c.interval for c in present)
        self.timeout: float | None = max(c.timeout for c in present) + self.backstop
        self._history: dict[Hashable, deque[SampleT]] = {}
        self._probed_at: dict[Hashable, float] = {}

    def config_for(self, site: str) -> ConfigT | None:
        """The options in force for ``site``: its own, else the monitor-wide ones."""
        return self._configs.get(site, self._configs.get(None))

    def items(self, config: ConfigT) -> Sequence[ItemT]:
        """What to probe for a site with these options."""
        raise NotImplementedError

    def target(self, item: ItemT, config: ConfigT) -> Hashable:
        """What a probe of ``item`` measures: sites whose targets are equal share samples."""
        raise NotImplementedError

    async def probe(self, item: ItemT, config: ConfigT, session: Any) -> SampleT:
        """Measure ``item`` once, within ``config.timeout``; ``session`` is what :meth:`session` yields."""
        raise NotImplementedError

    def readings(self, view: SiteView, config: ConfigT) -> Iterable[Reading]:
        """The site's readings, judged on :meth:`samples` (a pass's probes are in)."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def session(self, config: ConfigT) -> AsyncIterator[Any]:
        """What the pass's probes share (an HTTP client, say); nothing by default."""
        yield None

    def keep(self, target: Hashable, sample: SampleT, config: ConfigT) -> None:
        """Add a sample to the target's history of the last ``config.history``."""
        history = self._history.get(target)
        if history is None or history.maxlen != config.history:
            history = self._history[target] = deque(history or (), maxlen=config.history)
        history.append(sample)

    def samples(self, target: Hashable) -> list[SampleT]:
        """The target's kept samples, oldest first."""
        return list(self._history.get(target, ()))

    async def evaluate(self, view: SiteView) -> list[Reading]:
        config = self.config_for(view.site)
        if config is None:
            return []
        due = []
        for item in self.items(config):
            target = self.target(item, config)
            last = self._probed_at.get(target)
            # Sites are evaluated one after another in a pass: the first probe serves all.
            if last is None or view.now - last >= config.interval / 2:
                due.append((item, target))
        if due:
            async with self.session(config) as session, anyio.create_task_group() as tg:
                for item, target in due:
                    tg.start_soon(self._probe_once, item, target, config, session, view.now)
        return list(self.readings(view, config))

    async def _probe_once(self, item: ItemT, target: Hashable, config: ConfigT, session: Any, now: float) -> None:
        sample = await self.probe(item, config, session)
        self.keep(target, sample, config)
        self._probed_at[target] = now
