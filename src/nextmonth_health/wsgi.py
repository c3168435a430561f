"""``nextmonth_health.wsgi``: the WSGI middleware (Flask, Django), kept importable here.

It lives in :mod:`nextmonth_health.web.wsgi`, beside the other HTTP surfaces; this is the
path the README's one line uses.
"""

from .web.wsgi import (
    ROUTE_KEY,
    USER_KEY,
    DjangoRouteMiddleware,
    HealthMiddleware,
    default_route,
    default_user,
    instrument_flask,
    visitor,
)

__all__ = [
    "ROUTE_KEY",
    "USER_KEY",
    "DjangoRouteMiddleware",
    "HealthMiddleware",
    "default_route",
    "default_user",
    "instrument_flask",
    "visitor",
]
