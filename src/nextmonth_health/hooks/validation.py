"""What is wrong with a plugin's hook implementations, in words its author can act on.

pluggy accepts an implementation of a hook nobody specified (``check_pending`` only says so
later, for the whole manager at once), refuses a wrong signature with a message about
"hookimpl definitions", and registers a module with no implementation at all without a
word. Asking before registering lets the plugin manager leave one broken installed plugin
out, name it, and suggest the hook or argument that was meant.
"""

from __future__ import annotations

import difflib
import inspect

import pluggy

from .specs import PROJECT_NAME

__all__ = ["hook_problems"]

_MARKER = f"@{PROJECT_NAME}.hookimpl"


def hook_problems(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Each way ``plugin``'s hook implementations do not fit the specs ``pm`` holds.

    An empty list means pluggy will accept it and ``check_pending`` will pass. An
    implementation marked ``optionalhook`` may name a hook that is not specified, as in
    pluggy.
    """
    specs = _spec_names(pm)
    impls = _hookimpls(plugin)
    if not impls:
        return [_no_hooks(plugin, specs)]
    problems = []
    for hook_name, impl in impls:
        caller = getattr(pm.hook, hook_name, None)
        spec = caller.spec if caller is not None else None
        if spec is None:
            if not impl.optionalhook:
                problems.append(_unknown_hook(hook_name, specs))
            continue
        passed = [*spec.argnames, *spec.kwargnames]
        unknown = [name for name in impl.argnames if name not in passed]
        if unknown:
            problems.append(_unknown_arguments(hook_name, unknown, passed))
    return problems


def _spec_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, caller in vars(pm.hook).items() if caller.has_spec())


def _hookimpls(plugin: object) -> list[tuple[str, pluggy.HookImpl]]:
    """The plugin's marked implementations, as pluggy itself finds and reads them.

    A manager of its own with no specs registers anything without judging it, so the
    names, argument lists and options are pluggy's, not a second reading of ours.
    """
    scratch = pluggy.PluginManager(PROJECT_NAME)
    scratch.register(plugin)
    return [(caller.name, impl) for caller in scratch.get_hookcallers(plugin) or [] for impl in caller.get_hookimpls()]


def _did_you_mean(name: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(name, choices, n=1)
    return found[0] if found else None


def _unknown_hook(name: str, specs: list[str]) -> str:
    meant = _did_you_mean(name, specs)
    if meant is not None:
        return f"{name!r} is not a {PROJECT_NAME} hook; did you mean {meant!r}?"
    return f"{name!r} is not a {PROJECT_NAME} hook (the hooks are {', '.join(specs)})"


def _unknown_arguments(hook: str, unknown: list[str], passed: list[str]) -> str:
    asked = ", ".join(repr(name) for name in unknown)
    meant = [m for m in (_did_you_mean(name, passed) for name in unknown) if m is not None]
    problem = f"{hook} asks for {asked}, which the hook does not pass"
    if meant:
        return f"{problem}; did you mean {', '.join(repr(m) for m in meant)}?"
    return f"{problem} (it passes {', '.join(passed)})"


#: What a check, a sink and a renderer have, and the hook that registers each.
_OBJECTS = {
    "evaluate": ("check", "register_health_checks"),
    "send": ("sink", "register_alert_sinks"),
    "render": ("renderer", "register_message_renderers"),
}


def _no_hooks(plugin: object, specs: list[str]) -> str:
    """Nothing is marked: most often the decorator was forgotten, or a check was passed
    where the plugin that registers it belongs, so name what was probably meant."""
    problem = "no hook implementation"
    for name in dir(plugin):
        meant = None if name.startswith("_") else _did_you_mean(name, specs)
        if meant is None or not callable(inspect.getattr_static(plugin, name, None)):
            continue
        problem = f"{problem}: {name!r} is not marked {_MARKER}"
        return problem if name == meant else f"{problem}, and the hook is {meant!r}"
    for method, (kind, hook) in _OBJECTS.items():
        if hook in specs and callable(inspect.getattr_static(plugin, method, None)):
            return f"{problem}: it looks like a {kind}, which a plugin's {hook} hook registers"
    return f"{problem}: nothing in it is marked {_MARKER} (the hooks are {', '.join(specs)})"
