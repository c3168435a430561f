"""A deliberately broken nextmonth-health plugin distribution, for tests only.

Never install it next to a real deployment: every ``Monitor`` with entry points on would
discover it. It declares six plugins, each broken in one of the ways a real plugin
breaks, so that tests can show the monitor starting anyway, reporting each one, and every
other check carrying on:

``broken_import`` (:mod:`.import_error`)
    raises ``ImportError`` when imported, like a plugin missing a dependency;
``broken_hook`` (:mod:`.raising_hook`)
    imports fine, but its ``register_health_checks`` raises;
``broken_hang`` (:mod:`.hanging_check`)
    registers an async check that never returns (it reads as a failed check after the
    monitor's ``check_timeout``);
``broken_typo`` (:mod:`.misspelt_hook`)
    implements ``register_health_check``, a hook that does not exist;
``broken_argument`` (:mod:`.wrong_argument`)
    its ``register_alert_sinks`` asks for ``monitr``, which the hook does not pass;
``broken_unmarked`` (:mod:`.no_hookimpl`)
    defines ``register_health_checks`` without ``@nextmonth_health.hookimpl``.

The last three are judged before they are registered and left out whole, each with the
name it probably meant. This package itself imports cleanly; only the modules the entry
points name are broken.
"""

DISTRIBUTION = "nextmonth-health-broken-example"
