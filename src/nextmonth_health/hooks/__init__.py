"""Hooks: how plugins extend the monitor.

:mod:`.specs` declares the ``register_*`` hooks; :mod:`.manager` finds plugins (bundled,
installed, in code) and isolates the broken ones; :mod:`.validation` says what is wrong
with a plugin's hooks in words its author can act on; :mod:`.options` reads a plugin's own
per-site options. Plugin authors import from :mod:`nextmonth_health.plugin` instead.
"""
