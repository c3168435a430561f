"""Imports fine; its hook raises while the monitor is being built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nextmonth_health as nmh


@nmh.hookimpl
def register_health_checks(register: Callable[[Any], None]) -> None:
    raise RuntimeError("broken_hook could not read its configuration")
