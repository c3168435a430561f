"""Everything a plugin needs, in one place: ``from nextmonth_health.plugin import ...``.

Bundled plugins and the distributions in ``plugins/`` import only from here and from
``nextmonth_health`` (a test enforces it), so the modules behind these names can move
without breaking a plugin. The reference table is in ``docs/plugins.md``.
"""

from __future__ import annotations

from .codec import from_dict, to_dict
from .errors import ConfigError
from .hooks.options import (
    check_option_names,
    number_option,
    option_error,
    plugin_configs,
    plugin_options,
    whole_option,
)
from .hooks.specs import hookimpl
from .judge.checks import Check
from .judge.evidence import LENIENT_ALPHA, reaches_people, split_alpha, verdict
from .judge.probe_check import ProbeCheck, ProbeConfig, p95
from .judge.stats import count_tail, past_line, poisson_sf, ratio_tail
from .judge.windows import SiteView, UsersOf, Window
from .logs import get_logger
from .monitor import Monitor
from .settings import Settings
from .signals import LOGIN, PAGE_LOAD, REQUEST, SESSION_EXPIRED, SIGNALS, UPLOAD
from .store import Store
from .tell.alerts import alert_message, incident_url, resolution_message
from .tell.notices import MessageRenderer
from .tell.sinks import AlertSink
from .values import (
    SITE_AREA,
    Alert,
    Health,
    Incident,
    MaintenanceWindow,
    Notice,
    Reading,
    Severity,
    Transition,
    TransitionKind,
)

__all__ = [
    "LENIENT_ALPHA",
    "LOGIN",
    "PAGE_LOAD",
    "REQUEST",
    "SESSION_EXPIRED",
    "SIGNALS",
    "SITE_AREA",
    "UPLOAD",
    "Alert",
    "AlertSink",
    "Check",
    "ConfigError",
    "Health",
    "Incident",
    "MaintenanceWindow",
    "MessageRenderer",
    "Monitor",
    "Notice",
    "ProbeCheck",
    "ProbeConfig",
    "Reading",
    "Settings",
    "Severity",
    "SiteView",
    "Store",
    "Transition",
    "TransitionKind",
    "UsersOf",
    "Window",
    "alert_message",
    "check_option_names",
    "count_tail",
    "from_dict",
    "get_logger",
    "hookimpl",
    "incident_url",
    "number_option",
    "option_error",
    "p95",
    "past_line",
    "plugin_configs",
    "plugin_options",
    "poisson_sf",
    "ratio_tail",
    "reaches_people",
    "resolution_message",
    "split_alpha",
    "to_dict",
    "verdict",
    "whole_option",
]
