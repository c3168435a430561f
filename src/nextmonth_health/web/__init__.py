"""The SDK's HTTP surfaces, independent of any framework.

:class:`~nextmonth_health.web.http.HealthApp` answers the SDK's own endpoints (notices,
beacon, overlay assets, the admin view); the ASGI and WSGI middlewares in
``asgi.py`` and ``wsgi.py`` beside it translate to and from it.
Needs the ``web`` extra (Jinja2, itsdangerous).
"""

from .http import HealthApp, Request, Response, Route

__all__ = ["HealthApp", "Request", "Response", "Route"]
