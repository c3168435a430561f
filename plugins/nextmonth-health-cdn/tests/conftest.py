"""The backends to run on, and a stopwatch; the loopback asset server is the kit's
``http_receiver`` (``nextmonth_health.testing``)."""

from __future__ import annotations

import time
from typing import Self

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


class Stopwatch:
    def __enter__(self) -> Self:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


@pytest.fixture
def stopwatch() -> type[Stopwatch]:
    return Stopwatch
