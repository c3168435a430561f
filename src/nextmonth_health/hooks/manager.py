"""Building the plugin manager: bundled plugins, installed distributions, in-code objects.

Entry points in the ``nextmonth_health`` group are loaded one by one, each in its own
guard, so one broken distribution is reported instead of taking the host down: one that
fails to import, implements a hook that does not exist, asks a hook for an argument it
does not pass, or implements no hook at all is left out, and the rest loads. Four
environment variables steer loading:

``NEXTMONTH_HEALTH_LOAD_PLUGINS``
    comma-separated entry-point names to load; when set (even empty) nothing else loads.
``NEXTMONTH_HEALTH_DISABLE_PLUGINS``
    comma-separated entry-point names never to load.
``NEXTMONTH_HEALTH_STRICT_PLUGINS``
    ``1`` to raise instead of logging when an installed plugin fails to load or register.
``NEXTMONTH_HEALTH_TRACE_HOOKS``
    ``1`` to log, for every plugin and hook, what it registered.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pluggy
from attrs import frozen

from ..errors import ConfigError
from ..logs import get_logger
from ..plugins import DEFAULT_PLUGINS
from . import specs as hookspecs
from .validation import hook_problems

__all__ = ["ENTRY_POINT_GROUP", "PluginFailure", "get_plugin_manager", "load_entrypoints"]

log = get_logger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME


#: Where a plugin can fail before any of its hooks is called.
_STAGES = ("load", "hooks", "register")


@frozen
class PluginFailure:
    """A plugin that could not be loaded or registered, or whose hook raised.

    ``where`` is ``"load"`` (importing the entry point raised), ``"hooks"`` (its hook
    implementations do not fit the specs), ``"register"`` (pluggy refused it), or the name
    of the ``register_*`` hook that raised. ``distribution`` and ``entry_point`` (the
    entry point's value, ``module:attr``) are None for in-code plugins.
    """

    name: str
    where: str
    error: str
    distribution: str | None = None
    entry_point: str | None = None

    @property
    def message(self) -> str:
        """One line naming the plugin, where it came from and what is wrong: what the log,
        ``nextmonth-health plugins`` and strict mode's :class:`ConfigError` say."""
        origin = [f"entry point {self.name} = {self.entry_point}"] if self.entry_point else []
        if self.distribution:
            origin.append(f"distribution {self.distribution}")
        plugin = f"plugin {self.name!r}" + (f" ({', '.join(origin)})" if origin else "")
        if self.where == "load":
            return f"{plugin} failed to load: {self.error}"
        if self.where in _STAGES:
            return f"{plugin}: {self.error}"
        return f"{plugin} in {self.where}: {self.error}"


def _report(failure: PluginFailure) -> PluginFailure:
    log.warning(
        "nextmonth_health.plugin_failed",
        plugin=failure.name,
        where=failure.where,
        distribution=failure.distribution,
        entry_point=failure.entry_point,
        error=failure.error,
    )
    return failure


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def strict_mode(strict: bool | None, env: Mapping[str, str] | None = None) -> bool:
    """``strict`` if given, else ``NEXTMONTH_HEALTH_STRICT_PLUGINS`` from the environment."""
    if strict is not None:
        return bool(strict)
    return _flag(os.environ if env is None else env, "NEXTMONTH_HEALTH_STRICT_PLUGINS")


def load_entrypoints(
    pm: pluggy.PluginManager,
    *,
    env: Mapping[str, str] | None = None,
    strict: bool | None = None,
) -> list[PluginFailure]:
    """Load each installed plugin in its own guard; return the ones that failed, left out.

    Under ``strict`` the first failure raises instead: an import error as itself, a plugin
    whose hooks do not fit as a :class:`ConfigError` carrying the failure's message.
    """
    env = os.environ if env is None else env
    strict = strict_mode(strict, env)
    allow = _names(env.get("NEXTMONTH_HEALTH_LOAD_PLUGINS"))
    block = _names(env.get("NEXTMONTH_HEALTH_DISABLE_PLUGINS")) or set()
    failures: list[PluginFailure] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        failure = _load_entrypoint(pm, ep, strict)
        if failure is not None:
            failures.append(_report(failure))
    return failures


def _load_entrypoint(pm: pluggy.PluginManager, ep: importlib.metadata.EntryPoint, strict: bool) -> PluginFailure | None:
    """Import one entry point, judge its hooks, register it; what went wrong, or None."""
    dist = ep.dist.name if ep.dist is not None else None

    def failed(where: str, error: str) -> PluginFailure:
        return PluginFailure(ep.name, where, error, dist, ep.value)

    try:
        plugin = ep.load()
    except Exception as exc:
        if strict:
            raise
        return failed("load", f"{type(exc).__name__}: {exc}")
    if pm.is_registered(plugin):  # also named in code: it is in already
        return None
    try:
        problems = hook_problems(pm, plugin)
    except Exception as exc:  # an object that raises when asked what it holds
        if strict:
            raise
        return failed("hooks", f"{type(exc).__name__}: {exc}")
    if problems:
        failure = failed("hooks", "; ".join(problems))
        if strict:
            raise ConfigError(failure.message)
        return failure
    try:
        pm.register(plugin, name=ep.name)
    except Exception as exc:  # what pluggy refuses beyond the specs, e.g. a wrapper that does not yield
        if pm.get_plugin(ep.name) is plugin:  # pluggy 1.5 registers a plugin before refusing it
            pm.unregister(plugin)
        if strict:
            raise
        return failed("register", " ".join(str(exc).split()))
    _ORIGINS[id(plugin)] = (plugin, dist, ep.value)
    return None


#: Keyed by id, holding the plugin too: an id is unique only while its object lives.
_ORIGINS: dict[int, tuple[object, str | None, str]] = {}


def _origin(plugin: object) -> tuple[str | None, str | None]:
    """The distribution and entry point an installed plugin came from; Nones for the others."""
    found = _ORIGINS.get(id(plugin))
    return (found[1], found[2]) if found is not None and found[0] is plugin else (None, None)


def distribution_of(plugin: object) -> str | None:
    """The distribution an entry-point plugin came from, or None for bundled and in-code ones."""
    return _origin(plugin)[0]


def _in_code_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable name for reports: the module's, or the object's class (pluggy would use its id)."""
    name = getattr(plugin, "__name__", None)
    if not isinstance(name, str):
        name = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    if pm.has_plugin(name):
        name = f"{name}@{id(plugin):x}"
    return name


def get_plugin_manager(
    plugins: Iterable[Any] = (),
    *,
    entrypoints: bool = True,
    env: Mapping[str, str] | None = None,
    strict: bool | None = None,
) -> tuple[pluggy.PluginManager, list[PluginFailure]]:
    """A fresh plugin manager: in-code ``plugins``, then entry points, then the bundled ones.

    pluggy calls implementations last-registered-first, so the bundled plugins register
    their objects first, installed plugins next, and objects given in code last, in the
    order listed: a later object with the same name replaces an earlier one, and
    renderers registered later are asked first.
    """
    env = os.environ if env is None else env
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    for plugin in reversed(list(plugins)):
        if isinstance(plugin, str):
            try:
                plugin = importlib.import_module(plugin)
            except ImportError as exc:
                raise ConfigError(f"plugins: cannot import {plugin!r} ({exc})") from None
        if pm.is_registered(plugin):
            continue
        name = _in_code_name(pm, plugin)
        problems = hook_problems(pm, plugin)
        if problems:
            raise ConfigError(PluginFailure(name, "hooks", "; ".join(problems)).message)
        try:
            pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise ConfigError(f"plugins: {plugin!r} is not a valid plugin: {exc}") from None
    if entrypoints:
        failures += load_entrypoints(pm, env=env, strict=strict)
    for module_name in reversed(DEFAULT_PLUGINS):
        module = importlib.import_module(module_name)
        if not pm.is_registered(module):
            pm.register(module, name=module_name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"a plugin implements a hook that does not exist: {exc}") from None
    if _flag(env, "NEXTMONTH_HEALTH_TRACE_HOOKS"):
        _TRACED.add(id(pm))
    return pm, failures


_TRACED: set[int] = set()


def collect(
    pm: pluggy.PluginManager,
    hook_name: str,
    kind: str,
    required: tuple[str, ...],
    strict: bool,
    *,
    validate: Callable[[Any], object] | None = None,
    **kwargs: Any,
) -> tuple[list[Any], list[PluginFailure]]:
    """Call one ``register_*`` hook per implementation, each in its own guard.

    Objects come back in registration order of their plugins (bundled first), so that a
    later plugin's object replaces a bundled one of the same name. An object lacking
    a ``required`` attribute, or one ``validate`` finds fault with (it raises a
    :class:`ConfigError`, or returns what is wrong, said of the plugin), is a mistake in
    code: an in-code or bundled plugin's fails start-up with a :class:`ConfigError`, an
    installed distribution's is reported and left out (unless ``strict``), like any other
    broken plugin.
    """
    caller = getattr(pm.hook, hook_name)
    traced = id(pm) in _TRACED
    found: list[Any] = []
    failures: list[PluginFailure] = []

    def fail(impl: Any, error: str) -> None:
        failures.append(_report(PluginFailure(impl.plugin_name, hook_name, error, *_origin(impl.plugin))))

    for impl in reversed(caller.get_hookimpls()):
        registered: list[Any] = []
        given = {"register": registered.append, **kwargs}
        try:
            impl.function(**{name: given[name] for name in impl.argnames})
        except Exception as exc:
            if strict:
                raise
            fail(impl, f"{type(exc).__name__}: {exc}")
            continue
        for obj in registered:
            missing = [name for name in required if not hasattr(obj, name)]
            error: str | None = None
            if missing:
                error = f"registered {obj!r} as a {kind}, but it lacks what a {kind} needs: {', '.join(missing)}"
            else:
                error = _invalid(obj, validate)
            if error is not None:
                if strict or distribution_of(impl.plugin) is None:
                    raise ConfigError(f"plugin {impl.plugin_name!r} {error}")
                fail(impl, error)
                continue
            found.append(obj)
        if traced:
            log.info(
                "nextmonth_health.hook_call",
                hook=hook_name,
                plugin=impl.plugin_name,
                registered=[getattr(o, "name", repr(o)) for o in registered],
            )
    return found, failures


def _invalid(obj: Any, validate: Callable[[Any], object] | None) -> str | None:
    """What ``validate`` finds wrong with a registered object (it raises a
    :class:`ConfigError`, or returns the message), or None."""
    if validate is None:
        return None
    try:
        found = validate(obj)
    except ConfigError as exc:
        return str(exc)
    return found if isinstance(found, str) and found else None
