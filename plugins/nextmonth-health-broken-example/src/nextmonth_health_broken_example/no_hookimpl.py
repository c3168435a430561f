"""Defines ``register_health_checks`` but never marks it ``@nextmonth_health.hookimpl``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register_health_checks(register: Callable[[Any], None]) -> None:
    raise AssertionError("an unmarked function is never called")
