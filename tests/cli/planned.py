"""What the planned-quiet command tests share: a site known to a real store, and a
monitor on that store passing over a scripted fault with a sink that records what it is
told (the fault of tests/test_quiet.py: a dozen people's uploads answering 503)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

import nextmonth_health as nmh
from nextmonth_health.testing import FakeClock

from ..test_quiet import failing
from ..test_sinks import RecordingSink, SinkPlugin

SITE = "acme-studio"


def a_site(store: str, site: str = SITE) -> None:
    """``site`` has recorded a request into ``store``: the commands know it from there."""
    monitor = nmh.Monitor(site, store=store, load_entrypoints=False)
    try:
        monitor.record_request("/portal", status=200, duration=0.1, user="u-1")
        monitor.flush()
    finally:
        monitor.store.close()


class Watched:
    """A monitor on the store, on a fake clock that starts at the real time (windows made
    by the command line are dated by the real clock), with a recording sink."""

    def __init__(self, store: str, **settings: float) -> None:
        self.clock = FakeClock(time.time())
        self.sink = RecordingSink()
        self.monitor = nmh.Monitor(
            SITE,
            store=store,
            clock=self.clock,
            plugins=[SinkPlugin(lambda m: self.sink)],
            load_entrypoints=False,
            **settings,
        )

    def fault(self, seconds: float) -> None:
        """``seconds`` of failing uploads, an evaluation pass every tick."""
        anyio.run(failing, self.monitor, self.clock, seconds)

    def told(self) -> list[str]:
        return [t.kind.value for t in self.sink.received]


@contextmanager
def watching(store: str, **settings: float) -> Iterator[Watched]:
    watched = Watched(store, **settings)
    try:
        yield watched
    finally:
        watched.monitor.store.close()
