"""nextmonth_health: notice trouble on a site before its users report it.

>>> import nextmonth_health as nmh
>>> monitor = nmh.Monitor(site="acme-studio")
>>> monitor.record_request("/media-upload", status=503, duration=0.21, user="u-17")
"""

from __future__ import annotations

from .clock import Clock, SystemClock
from .errors import ConfigError, NextMonthHealthError, StaleLease, StoreError
from .hooks.specs import hookimpl
from .judge.checks import Check
from .judge.runner import CheckFailure, Evaluation
from .judge.windows import SiteView
from .monitor import Monitor, MonitorStatus
from .settings import Settings
from .store import Store
from .tell.notices import MessageRenderer
from .tell.sinks import AlertSink
from .values import (
    Alert,
    Health,
    Incident,
    IncidentStatus,
    MaintenanceWindow,
    Notice,
    Reading,
    Severity,
    Silence,
    Transition,
    TransitionKind,
)

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "AlertSink",
    "Check",
    "CheckFailure",
    "Clock",
    "ConfigError",
    "Evaluation",
    "Health",
    "Incident",
    "IncidentStatus",
    "MaintenanceWindow",
    "MessageRenderer",
    "Monitor",
    "MonitorStatus",
    "NextMonthHealthError",
    "Notice",
    "Reading",
    "Settings",
    "Severity",
    "Silence",
    "SiteView",
    "StaleLease",
    "Store",
    "StoreError",
    "SystemClock",
    "Transition",
    "TransitionKind",
    "hookimpl",
]


def __getattr__(name: str) -> object:
    """Import optional submodules (``testing``, ``asgi``, ``wsgi``) on first use, keeping ``import`` light."""
    if name in {"testing", "asgi", "wsgi"}:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
