"""Everything a plugin needs, in one place: ``from nextmonth_health.plugin import ...``.

Bundled plugins and the distributions in ``plugins/`` import only from here and from
``nextmonth_health`` (a test enforces it), so the modules behind these names can move
without breaking a plugin. The reference table is in ``docs/plugins.md``.
"""

from __future__ import annotations

from .tell.alerts import alert_message, incident_url, resolution_message
from .judge.checks import Check
from .codec import from_dict, to_dict
from .errors import ConfigError
from .judge.evidence import LENIENT_ALPHA, reaches_people, split_alpha, verdict
from .hooks.specs import hookimpl
from .logs import get_logger
from .monitor import Monitor
from .tell.notices import MessageRenderer
from .hooks.options import (
    check_option_names,
    number_option,
    option_error,
    plugin_configs,
    plugin_options,
    whole_option,
)
from .judge.probe_check import ProbeCheck, ProbeConfig, p95
from .settings import Settings
from .signals import LOGIN, PAGE_LOAD, REQUEST, SESSION_EXPIRED, SIGNALS, UPLOAD
from .tell.sinks import AlertSink
from .judge.stats import count_tail, past_line, poisson_sf, ratio_tail
from .store import Store
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
from .judge.windows import SiteView, Window

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
    "verdict",
    "to_dict",
    "whole_option",
]
