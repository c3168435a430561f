"""WSGI middleware (Flask, Django, any WSGI app): records every request, serves the SDK's endpoints.

>>> instrument_flask(flask_app, monitor)                                   # Flask
>>> application = HealthMiddleware(get_wsgi_application(), monitor)      # Django (wsgi.py)

``start_response`` is wrapped to see the status; the request is recorded when the server
closes the response iterable (so streaming responses are timed to their end). An
exception from the app, raised at the call or while iterating, is recorded as a 500 and
re-raised untouched. Route templates: :func:`instrument_flask` leaves Flask's matched
rule in the environ, :class:`DjangoRouteMiddleware` Django's; anything else may set
``environ["nextmonth_health.route"]`` or pass ``route=``; when some route names a method,
the request's method goes in front (``"POST /payments/webhook"``). The user likewise: ``environ["nextmonth_health.user"]``,
``REMOTE_USER``, or ``user=``; a request without one counts its client as an anonymous
visitor (address and ``User-Agent``, hashed by the recorder with the day's key).

The first request in each process (each gunicorn worker, after the fork) starts the
monitor's background loop with :meth:`~nextmonth_health.Monitor.start`, unless something
already runs it; :meth:`~nextmonth_health.Monitor.stop` runs at exit and flushes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .http import Request, Response, TrustedProxies, clean_user
from .public import HealthMiddlewareBase

if TYPE_CHECKING:
    from _typeshed.wsgi import InputStream

    from ..monitor import Monitor
    from .public import Who

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

#: Environ keys an app (or a framework hook) may set for the middleware to read.
ROUTE_KEY = "nextmonth_health.route"
USER_KEY = "nextmonth_health.user"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def default_route(environ: Environ) -> str:
    """``environ[ROUTE_KEY]`` (left by :func:`instrument_flask` or :class:`DjangoRouteMiddleware`), else the path."""
    route = environ.get(ROUTE_KEY)
    if type(route) is str:
        return route
    return environ.get("PATH_INFO") or "/"


def default_user(environ: Environ) -> str | None:
    """``environ[USER_KEY]``, else ``REMOTE_USER``."""
    user = environ.get(USER_KEY)
    if user is None:
        user = environ.get("REMOTE_USER")
    return user if type(user) is str and user else None


def visitor(environ: Environ, proxies: TrustedProxies | None) -> tuple[str, str] | None:
    """An anonymous request's client as the recorder counts it: (address, user agent)."""
    address = environ.get("REMOTE_ADDR")
    if proxies:
        address = proxies.client(address, environ.get("HTTP_X_FORWARDED_FOR"))
    return (address, environ.get("HTTP_USER_AGENT", "")) if address else None


class HealthMiddleware(HealthMiddlewareBase):
    """Record every request of a WSGI app into ``monitor`` and serve the SDK's endpoints.

    Takes the same options as :class:`nextmonth_health.asgi.HealthMiddleware`; ``user``,
    ``route`` and a callable ``site`` receive the WSGI environ.
    """

    default_user = staticmethod(default_user)
    default_route = staticmethod(default_route)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path.startswith(self._prefixes) and self.health.owns(path):
            return self._serve(environ, start_response)
        seen = [""]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[0] = status
            return start_response(status, headers, exc_info)

        started = perf_counter()
        if started >= self._next_look:
            self._look(started)
        try:
            result = self.app(environ, start)
        except Exception:
            self._finish(environ, 500, perf_counter() - started)
            raise
        return _Observed(result, self, environ, started, seen)

    def _finish(self, environ: Environ, status: int, duration: float) -> None:
        try:
            route = self._route(environ)
            user: Who = self._user(environ)
            if user is not None and (type(user) is not str or not 0 < len(user) <= 200):
                user = clean_user(user)
            site = self._site if self._site_of is None else self._site_of(environ)
        except Exception as exc:
            self._report("wsgi.middleware", exc)
            route, user, site = environ.get("PATH_INFO") or "/", None, self._site
        if self._methods and type(route) is str and route[:1] == "/":
            route = f"{environ.get('REQUEST_METHOD') or 'GET'} {route}"
        if user is None and self._visitors:
            user = visitor(environ, self._trusted)
        self._record(route, status, duration, user, site)

    def _serve(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        health = self.health
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        try:
            headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
            for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
                if environ.get(key):
                    headers[name] = environ[key]
            limit = health.body_limit(path)
            declared = (environ.get("CONTENT_LENGTH") or "").strip()
            if declared and not declared.isdigit():
                response = health.finish(path, Response.json({"error": "bad content-length"}, status=400))
            elif declared and int(declared) > limit:
                response = health.too_large(path)
            else:
                body = _read_body(environ, int(declared) if declared else None, limit)
                if body is None:
                    response = health.too_large(path)
                else:
                    peer = environ.get("REMOTE_ADDR")
                    # Admin requests give up after the deadline: a hung store holds this
                    # worker thread for about a second, not for as long as the store hangs.
                    response = health.handle_in_thread(
                        Request(
                            method=method,
                            path=path,
                            query_string=environ.get("QUERY_STRING", ""),
                            headers=headers,
                            body=body,
                            client=self.proxies.client(peer, headers.get("x-forwarded-for")),
                            native=environ,
                            user=self._safe_user(environ),
                            scheme=self.proxies.scheme(
                                peer, environ.get("wsgi.url_scheme", "http"), headers.get("x-forwarded-proto")
                            ),
                        )
                    )
        except Exception as exc:
            self._report("wsgi.serve", exc)
            response = health.finish(path, Response.json({"error": "unavailable"}, status=500))
        out = list(response.headers)
        if response.status not in (204, 304):
            out.append(("content-length", str(len(response.body))))
        start_response(f"{response.status} {_phrase(response.status)}", out)
        if method == "HEAD" or response.status in (204, 304):
            return [b""]
        return [response.body]

    def _safe_user(self, environ: Environ) -> str | None:
        try:
            user = self._user(environ)
            return None if user is None else clean_user(user)
        except Exception as exc:
            self._report("wsgi.middleware", exc)
            return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _read_body(environ: Environ, length: int | None, limit: int) -> bytes | None:
    stream: InputStream | None = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length is None:
        # No Content-Length: only a server that marks its input as terminated (gunicorn,
        # for chunked bodies) lets us read without blocking on a body that never comes.
        if not environ.get("wsgi.input_terminated"):
            return b""
        body = stream.read(limit + 1)
        return None if len(body) > limit else body
    return stream.read(length)


class _Observed:
    """The app's response iterable, recorded when the server closes it."""

    __slots__ = ("_done", "_environ", "_failed", "_middleware", "_result", "_seen", "_started")

    def __init__(
        self, result: Iterable[bytes], middleware: HealthMiddleware, environ: Environ, started: float, seen: list[str]
    ) -> None:
        self._result = result
        self._middleware = middleware
        self._environ = environ
        self._started = started
        self._seen = seen
        self._failed = False
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._result
        except Exception:
            self._failed = True
            self._record()
            raise

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        except Exception:
            self._failed = True
            raise
        finally:
            self._record()

    def _record(self) -> None:
        if self._done:
            return
        self._done = True
        status = 500
        if not self._failed:
            try:
                status = int(self._seen[0][:3])
            except ValueError:
                status = 500
        self._middleware._finish(self._environ, status, perf_counter() - self._started)


class DjangoRouteMiddleware:
    """A Django middleware that tells :class:`HealthMiddleware` the route template and user.

    Add ``"nextmonth_health.wsgi.DjangoRouteMiddleware"`` to ``MIDDLEWARE`` (after
    ``AuthenticationMiddleware``). Django's ``request.META`` is the WSGI environ, so the
    matched route (``/bookings/<int:pk>``) and the signed-in user's primary key are left
    there for the WSGI middleware to read when the response is closed.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        # Never let the SDK break a response: on any failure the path is recorded instead.
        with contextlib.suppress(Exception):
            match = getattr(request, "resolver_match", None)
            if match is not None and match.route:
                request.META[ROUTE_KEY] = "/" + match.route.lstrip("^").rstrip("$")
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                request.META[USER_KEY] = str(user.pk)
        return response


def instrument_flask(app: Any, monitor: Monitor, **options: Any) -> HealthMiddleware:
    """Wrap a Flask app's ``wsgi_app`` in :class:`HealthMiddleware`, with route templates.

    Flask forgets the matched rule when its request context ends, before the middleware
    records; a ``teardown_request`` hook (which runs for every request, errors and 404s
    included) leaves ``request.url_rule.rule`` (``/bookings/<int:id>``) in the environ
    first. ``options`` are :class:`HealthMiddleware`'s.
    """
    from flask import request

    def leave_route(exc: BaseException | None) -> None:
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    app.teardown_request(leave_route)
    middleware = HealthMiddleware(app.wsgi_app, monitor, **options)
    app.wsgi_app = middleware
    return middleware
