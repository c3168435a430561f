"""Implements ``register_health_check``: the hook is ``register_health_checks``.

A misspelt hook is the most common way a plugin does nothing at all: pluggy would accept
the implementation and never call it. The monitor leaves the plugin out, reports it, and
suggests the hook that was meant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nextmonth_health as nmh


@nmh.hookimpl
def register_health_check(register: Callable[[Any], None]) -> None:
    raise AssertionError("a misspelt hook is never called")
