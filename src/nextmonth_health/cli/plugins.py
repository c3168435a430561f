"""``plugins``: what a monitor built here would load — and what it could not.

Every plugin the plugin manager holds (bundled, installed from an entry point, or named
in the config file's ``plugins``), the distribution and version it came from, the hooks it
implements and the checks, sinks and renderers each hook registered. A plugin that failed
to load, whose hooks do not fit the specs (a misspelt hook, with the one it probably
meant), or whose hook raised, is listed as BROKEN with its error, and the command exits 1:
a monitor would start without it, but there is something to fix. Entry points skipped by
``NEXTMONTH_HEALTH_LOAD_PLUGINS`` / ``NEXTMONTH_HEALTH_DISABLE_PLUGINS`` are listed as skipped.
"""

from __future__ import annotations

import importlib.metadata
import sys
from typing import Any

import click

from ._common import (
    EXIT_PROBLEM,
    build_monitor,
    configure_logging,
    echo_json,
    global_options,
    options,
)

__all__ = ["command", "describe"]

_KINDS = {
    "register_health_checks": ("checks", "checks"),
    "register_alert_sinks": ("sinks", "sinks"),
    "register_message_renderers": ("renderers", "renderers"),
}


def _version(distribution: str | None) -> str | None:
    if distribution is None:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _registered(impl: Any, monitor: Any) -> tuple[list[Any], str | None]:
    """What one hook implementation registers (asked again, in its own guard)."""
    found: list[Any] = []
    given = {"register": found.append, "monitor": monitor}
    try:
        impl.function(**{name: given[name] for name in impl.argnames if name in given})
    except Exception as exc:
        return [], f"{type(exc).__name__}: {exc}"
    return found, None


def describe(monitor: Any) -> list[dict[str, Any]]:
    """One entry per plugin, in the order pluggy calls them (later registrations first)."""
    from ..hooks.manager import ENTRY_POINT_GROUP, distribution_of
    from ..plugins import DEFAULT_PLUGINS

    pm = monitor.plugin_manager
    in_effect = {
        "checks": {c.name: type(c) for c in monitor.checks},
        "sinks": {s.name: type(s) for s in monitor.sinks},
        "renderers": {r.name: type(r) for r in monitor.renderers},
    }
    failures: dict[str, list[Any]] = {}
    for failure in monitor.plugin_failures:
        failures.setdefault(failure.name, []).append(failure)
    entry_points = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    out: list[dict[str, Any]] = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a name pluggy was told to block
            continue
        distribution = distribution_of(plugin)
        if name in DEFAULT_PLUGINS:
            kind = "bundled"
        elif distribution is not None or name in entry_points:
            kind = "installed"
        else:
            kind = "in-code"
        hooks = sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))
        registers: dict[str, list[dict[str, Any]]] = {}
        errors = [f"{f.where}: {f.error}" for f in failures.pop(name, [])]
        for caller in pm.get_hookcallers(plugin) or []:
            if caller.name not in _KINDS:
                continue
            what = _KINDS[caller.name][0]
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                objects, error = _registered(impl, monitor)
                if error is not None and not errors:
                    errors.append(f"{caller.name}: {error}")
                for obj in objects:
                    obj_name = str(getattr(obj, "name", repr(obj)))
                    chosen = in_effect[what].get(obj_name)
                    registers.setdefault(what, []).append({"name": obj_name, "in_effect": chosen is type(obj)})
        ep = entry_points.get(name) if kind == "installed" else None
        out.append(
            {
                "name": name,
                "kind": kind,
                "distribution": distribution or (ep.dist.name if ep is not None and ep.dist is not None else None),
                "version": _version(distribution),
                "entry_point": ep.value if ep is not None else None,
                "hooks": hooks,
                "registers": registers,
                "status": "broken" if errors else "ok",
                "errors": errors,
            }
        )
    for name, broken in failures.items():  # never registered: failed to load
        ep = entry_points.get(name)
        distribution = broken[0].distribution
        out.append(
            {
                "name": name,
                "kind": "installed",
                "distribution": distribution,
                "version": _version(distribution),
                "entry_point": ep.value if ep is not None else None,
                "hooks": [],
                "registers": {},
                "status": "broken",
                "errors": [f"{f.where}: {f.error}" for f in broken],
            }
        )
    listed = {p["name"] for p in out}
    for name, ep in entry_points.items():
        if name not in listed:
            distribution = ep.dist.name if ep.dist is not None else None
            out.append(
                {
                    "name": name,
                    "kind": "installed",
                    "distribution": distribution,
                    "version": _version(distribution),
                    "entry_point": ep.value,
                    "hooks": [],
                    "registers": {},
                    "status": "skipped",
                    "errors": [],
                }
            )
    order = {"bundled": 0, "installed": 1, "in-code": 2}
    bundled = {name: n for n, name in enumerate(DEFAULT_PLUGINS)}
    out.sort(key=lambda p: (order[p["kind"]], bundled.get(p["name"], 0), p["name"] if p["kind"] == "installed" else ""))
    return out


@click.command("plugins", short_help="Loaded plugins, their hooks, and broken ones.")
@global_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(as_json: bool) -> None:
    """List loaded plugins, where they come from, their hooks, and any that are broken.

    Exits 1 when a plugin is broken (failed to load, its hooks do not fit, or its register
    hook raised): a monitor would start without it, but there is something to fix.
    """
    opts = options()
    configure_logging(opts.verbose, drop=True)
    monitor = build_monitor(
        site=opts.site_name(),
        store="memory://",
        plugins=opts.config.plugins,
        sites=opts.config.sites,
        load_entrypoints=True,
        strict_plugins=False,
        **opts.settings(),
    )
    plugins = describe(monitor)
    broken = [p for p in plugins if p["status"] == "broken"]
    if as_json:
        echo_json({"plugins": plugins, "broken": len(broken)})
    else:
        counts = {kind: sum(p["kind"] == kind for p in plugins) for kind in ("bundled", "installed", "in-code")}
        click.echo(
            f"{len(plugins)} plugins: {counts['bundled']} bundled, {counts['installed']} installed, "
            f"{counts['in-code']} in code; {len(broken)} broken."
        )
        for p in plugins:
            click.echo()
            source = p["kind"]
            if p["distribution"]:
                source += f" from {p['distribution']}" + (f" {p['version']}" if p["version"] else "")
            if p["entry_point"]:
                source += f" (entry point {p['name']} = {p['entry_point']})"
            flag = {
                "broken": click.style("  BROKEN", fg="red", bold=True),
                "skipped": "  skipped by the environment",
            }.get(p["status"], "")
            click.echo(click.style(p["name"], bold=True) + f"  {source}{flag}")
            if p["hooks"]:
                click.echo(f"  hooks: {', '.join(p['hooks'])}")
            for what, objects in p["registers"].items():
                names = ", ".join(o["name"] + ("" if o["in_effect"] else " (replaced)") for o in objects)
                click.echo(f"  {what}: {names}")
            if p["hooks"] and not p["registers"] and p["status"] == "ok":
                click.echo("  registers nothing with the current settings")
            for error in p["errors"]:
                click.echo(f"  error: {error}")
    if broken:
        sys.exit(EXIT_PROBLEM)
