"""Its ``register_alert_sinks`` asks for ``monitr``, an argument the hook does not pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nextmonth_health as nmh


@nmh.hookimpl
def register_alert_sinks(register: Callable[[Any], None], monitr: Any) -> None:
    raise AssertionError("a hook asking for an argument the spec lacks is never called")
