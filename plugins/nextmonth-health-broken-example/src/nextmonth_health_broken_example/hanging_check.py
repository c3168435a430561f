"""Registers a check whose probe never returns: the runner's timeout has to stop it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import nextmonth_health as nmh


class HangingCheck:
    name = "broken_hang"
    interval: float | None = None
    timeout: float | None = None  # the monitor's check_timeout applies

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def evaluate(self, view: nmh.SiteView) -> list[nmh.Reading]:
        self.started += 1
        try:
            await anyio.sleep_forever()
        except BaseException:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


@nmh.hookimpl
def register_health_checks(register: Callable[[Any], None]) -> None:
    register(HangingCheck())
