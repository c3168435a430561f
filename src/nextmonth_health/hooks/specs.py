"""The plugin hooks: the ways to extend the monitor, all of the ``register_*`` shape.

Hooks only register objects (or declare names); the objects (checks, sinks, renderers) do
the work, so pluggy never awaits anything and the monitor can call each object in its own
guard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ..judge.checks import Check
    from ..monitor import Monitor
    from ..tell.notices import MessageRenderer
    from ..tell.sinks import AlertSink

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "nextmonth_health"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_health_checks(register: Callable[[Check], None], monitor: Monitor) -> None:
    """Register health checks that produce readings for every site.

    :param register: call it once per :class:`~nextmonth_health.judge.checks.Check` object.
        A check whose ``name`` is already registered replaces the earlier one, so a
        plugin can swap out a bundled check by registering its own under the same name.

    :param monitor: the :class:`~nextmonth_health.Monitor` being built, for its
        ``store``, ``settings`` and ``clock``; implementations may leave it out of their
        signature.

    .. versionadded:: 0.1
    """


@hookspec
def register_alert_sinks(register: Callable[[AlertSink], None], monitor: Monitor) -> None:
    """Register sinks that receive incident transitions and admin alerts.

    :param register: call it once per :class:`~nextmonth_health.tell.sinks.AlertSink` object.
        Each sink is called on its own, so one failing sink never blocks another.

    :param monitor: the :class:`~nextmonth_health.Monitor` being built, for its
        ``store``, ``settings`` and ``clock``; implementations may leave it out of their
        signature.

    .. versionadded:: 0.1
    """


@hookspec
def register_message_renderers(register: Callable[[MessageRenderer], None], monitor: Monitor) -> None:
    """Register renderers that turn an incident into the user-facing notice for its area.

    :param register: call it once per
        :class:`~nextmonth_health.tell.notices.MessageRenderer` object. Renderers registered
        later are asked first; the first one that returns a notice wins, and the bundled
        cinematic renderer answers for every area last.

    :param monitor: the :class:`~nextmonth_health.Monitor` being built, for its
        ``store``, ``settings`` and ``clock``; implementations may leave it out of their
        signature.

    .. versionadded:: 0.1
    """


@hookspec
def register_routes(register: Callable[[Mapping[str, str]], None], monitor: Monitor) -> None:
    """Register the routes a plugin watches, and the areas users see them in.

    :param register: call it with a mapping of route to area, e.g.
        ``{"POST /payments/webhook": "payments"}``, once or more. A route is a path prefix,
        optionally after an HTTP method; requests under it then keep a key of their own
        (``view.window(REQUEST, "POST /payments/webhook")`` sees them) instead of counting
        under ``other``. The routes are added to every site's ``routes``; the host's own
        routes win where both name one, and a host that sets ``replace_routes`` leaves
        them out. A malformed route fails like a malformed check: an in-code plugin's at
        once, an installed one's is reported and left out.

    :param monitor: the :class:`~nextmonth_health.Monitor` being built, for its
        ``settings`` (``plugin_settings`` may say which routes to watch); implementations
        may leave it out of their signature. Called before ``register_health_checks``, so
        checks registered then see these routes in ``monitor.settings``.

    .. versionadded:: 0.2
    """


@hookspec
def register_signals(register: Callable[[str], None], monitor: Monitor) -> None:
    """Declare signals of the plugin's own, for checks to read like the built-in ones.

    The app (or the plugin) records a declared signal with
    :meth:`~nextmonth_health.Monitor.record`, as cheaply as a request; checks read it
    with ``view.window(signal, key)`` and ``view.baseline(signal, key)``. Recording a
    signal nobody declared drops the event, counted in ``status().drops``.

    :param register: call it once per signal name: a lowercase letter, then lowercase
        letters, digits, ``_``, ``.`` or ``-``, 64 characters at most, and none of the
        built-in :data:`~nextmonth_health.signals.SIGNALS`. Prefix it with the plugin's
        name (``"acme.queue_wait"``): the name alone keys the signal in every store. A bad
        name fails start-up with :class:`~nextmonth_health.ConfigError` (an installed
        distribution's is reported and left out). A name declared twice, by one plugin
        or several, is one signal, which they share.

    :param monitor: the :class:`~nextmonth_health.Monitor` being built, for its
        ``settings``: a plugin that is installed but not configured may declare nothing.
        Implementations may leave it out of their signature.

    .. versionadded:: 0.2
    """
