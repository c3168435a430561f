"""The ``db`` entry of ``plugin_settings``: validated once, when the monitor is built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from attrs import frozen
from nextmonth_health.plugin import Settings, check_option_names, number_option, option_error, whole_option

__all__ = ["SETTINGS_KEY", "SIGNAL", "DbConfig", "Probe", "Recorded", "parse_config"]

#: The key of this plugin's options in ``plugin_settings`` (also its entry-point name).
SETTINGS_KEY = "db"

#: The signal :func:`~nextmonth_health_db.record_query` records the app's query timings
#: as, declared by this plugin once ``recorded`` is configured.
SIGNAL = "db.query"

_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "probes": (),
        "recorded": None,
        "area": "portal",
        "interval": 30.0,
        "timeout": 5.0,
        "slow_seconds": 0.25,
        "baseline_factor": 3.0,
        "recovery_ratio": 0.6,
        "failure_ratio": 0.3,
        "history": 10,
        "baseline_history": 120,
        "min_probes": 3,
    }
)


@frozen
class Probe:
    """One database to time a cheap query on.

    ``kind`` is ``"postgresql"`` or ``"sqlite"``; ``name`` is the reading's key and shows
    in the admin's subject ("Database query times on primary"); it never holds a password.
    """

    kind: str
    dsn: str
    name: str
    query: str
    area: str


@frozen
class Recorded:
    """Query timings the app records with :func:`~nextmonth_health_db.record_query`,
    whose notice shows in ``area`` (the plugin's)."""

    min_samples: int
    area: str


@frozen
class DbConfig:
    probes: tuple[Probe, ...]
    recorded: Recorded | None
    interval: float
    timeout: float
    slow_seconds: float
    baseline_factor: float
    recovery_ratio: float
    failure_ratio: float
    history: int
    baseline_history: int
    min_probes: int


def _probe(where: str, entry: Any, default_area: str) -> Probe:
    if isinstance(entry, str):
        entry = {"dsn": entry}
    if not isinstance(entry, Mapping) or "dsn" not in entry:
        raise option_error(
            where, f"each probe must be a DSN or {{'dsn': ..., 'name': ..., 'query': ..., 'area': ...}}, got {entry!r}"
        )
    check_option_names(where, entry, {"dsn", "name", "query", "area"})
    dsn = entry["dsn"]
    if not isinstance(dsn, str):
        raise option_error(where, f"dsn must be a string, got {dsn!r}")
    parts = urlsplit(dsn)
    if parts.scheme in {"postgresql", "postgres"}:
        kind = "postgresql"
        database = parts.path.lstrip("/") or (parts.username or "postgres")
        default_name = f"{parts.hostname or 'localhost'}/{unquote(database)}"
    elif parts.scheme == "sqlite":
        kind = "sqlite"
        path = dsn[len("sqlite:///") :] if dsn.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise option_error(
                where, f"{dsn!r}: a SQLite probe needs a file, e.g. 'sqlite:///app.db' or 'sqlite:////var/lib/app.db'"
            )
        dsn = path
        default_name = os.path.basename(path)
    else:
        raise option_error(
            where, f"dsn must start with postgresql://, postgres:// or sqlite:///, got {parts.scheme or dsn!r}"
        )
    name = entry.get("name", default_name)
    # SQLite answers SELECT 1 without touching the file; reading the schema takes its lock.
    query = entry.get("query", "SELECT 1" if kind == "postgresql" else "SELECT count(*) FROM sqlite_master")
    area = entry.get("area", default_area)
    for label, value in (("name", name), ("query", query), ("area", area)):
        if not isinstance(value, str) or not value.strip():
            raise option_error(where, f"{label} must be a non-empty string, got {value!r}")
    return Probe(kind=kind, dsn=dsn, name=name, query=query, area=area)


def _recorded(where: str, raw: Any, area: str) -> Recorded | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise option_error(where, f"must be true or {{'min_samples': ...}}, got {raw!r}")
    if "route" in raw:
        raise option_error(
            where,
            f"'route' is gone: recorded timings are the plugin's own signal {SIGNAL!r}, not requests on a "
            "pseudo-route; drop the option (and the route from the monitor's routes)",
        )
    check_option_names(where, raw, {"min_samples"})
    return Recorded(min_samples=whole_option(where, "min_samples", raw.get("min_samples", 20)), area=area)


def parse_config(raw: Any, settings: Settings, where: str = f"plugin_settings[{SETTINGS_KEY!r}]") -> DbConfig | None:
    """Validate the plugin's options against a site's settings; ``None`` gives ``None``."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise option_error(where, f"must be a mapping of options, got {raw!r}")
    check_option_names(where, raw, _DEFAULTS)
    opts = {**_DEFAULTS, **raw}
    area = opts["area"]
    if not isinstance(area, str) or not area:
        raise option_error(where, f"area must be a non-empty string, got {area!r}")
    entries = opts["probes"]
    if isinstance(entries, str | bytes | Mapping) or not hasattr(entries, "__iter__"):
        raise option_error(where, f"probes must be a list of DSNs, got {entries!r}")
    probes = tuple(_probe(f"{where}['probes'][{i}]", e, area) for i, e in enumerate(entries))
    if len({p.name for p in probes}) != len(probes):
        raise option_error(where, "two probes share a name; give each a distinct 'name'")
    recorded = _recorded(f"{where}['recorded']", opts["recorded"], area)
    if not probes and recorded is None:
        raise option_error(where, "configure 'probes' (a list of DSNs), 'recorded' (true), or both")
    config = DbConfig(
        probes=probes,
        recorded=recorded,
        interval=number_option(where, "interval", opts["interval"]),
        timeout=number_option(where, "timeout", opts["timeout"]),
        slow_seconds=number_option(where, "slow_seconds", opts["slow_seconds"]),
        baseline_factor=number_option(where, "baseline_factor", opts["baseline_factor"], low=1.0),
        recovery_ratio=number_option(where, "recovery_ratio", opts["recovery_ratio"], high=0.99),
        failure_ratio=number_option(where, "failure_ratio", opts["failure_ratio"], high=1.0),
        history=whole_option(where, "history", opts["history"], low=2),
        baseline_history=whole_option(where, "baseline_history", opts["baseline_history"], low=5),
        min_probes=whole_option(where, "min_probes", opts["min_probes"], low=2),
    )
    if config.slow_seconds >= config.timeout:
        raise option_error(where, f"slow_seconds ({config.slow_seconds}) must be below timeout ({config.timeout})")
    if config.min_probes > config.history:
        raise option_error(where, f"min_probes ({config.min_probes}) cannot exceed history ({config.history})")
    return config
