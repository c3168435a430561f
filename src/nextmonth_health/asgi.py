"""``nextmonth_health.asgi``: the ASGI middleware, kept importable here.

It lives in :mod:`nextmonth_health.web.asgi`, beside the other HTTP surfaces; this is the
path the README's one line uses.
"""

from .web.asgi import HealthMiddleware, default_route, default_user, visitor

__all__ = ["HealthMiddleware", "default_route", "default_user", "visitor"]
