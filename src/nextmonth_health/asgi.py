"""ASGI middleware: records every request and answers the SDK's own endpoints.

>>> app = HealthMiddleware(app, monitor)

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which runs the app in a
separate task and costs tens of microseconds). For each HTTP request it wraps ``send`` to
see the status, times the app with ``perf_counter``, and after the app returns calls
``monitor.record_request`` with the route template the framework matched (Starlette and
FastAPI leave it in ``scope["route"]``), the user and the duration. An exception from
the app is recorded as a 500 and re-raised untouched. Requests under the SDK's prefixes
(``/health``, ``/admin/system-health``) are answered by
:class:`~nextmonth_health.web.http.HealthApp` and not recorded. Lifespan and websocket
scopes pass straight through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from .web.http import Request, Response, clean_user, client_address
from .web.public import HealthMiddlewareBase

__all__ = ["HealthMiddleware", "default_route", "default_user"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def default_route(scope: Scope) -> str:
    """The route template the framework matched, else the raw path.

    Starlette and FastAPI set ``scope["route"]`` while routing (in place, so it is there
    once the app has returned); under a ``Mount`` the mount's part of ``root_path`` is
    put back in front. A mounted app with no routes of its own (static files) counts by
    its raw path; the recorder folds paths into the configured routes either way.
    """
    route = scope.get("route")
    if route is None:
        return scope["path"]
    kind = type(route)
    if kind not in _PLAIN_ROUTES:
        if kind in _OTHER_ROUTES or type(getattr(route, "path", None)) is not str or hasattr(route, "routes"):
            _OTHER_ROUTES.add(kind)
            return scope["path"]
        _PLAIN_ROUTES.add(kind)
    if "app_root_path" in scope:  # routed through a Mount
        return scope.get("root_path", "")[len(scope["app_root_path"]) :] + route.path
    return route.path  # type: ignore[no-any-return]


#: Route classes seen: those that carry a template in ``.path`` (a Route), and the others
#: (a Mount, a Host); set membership is the cheapest test on the request path.
_PLAIN_ROUTES: set[type] = set()
_OTHER_ROUTES: set[type] = set()


def default_user(scope: Scope) -> str | None:
    """``scope["user"]`` (a string, or Starlette's authenticated user), else ``scope["state"]["user"]``."""
    user = scope.get("user")
    if type(user) is str:
        return user
    if user is not None and getattr(user, "is_authenticated", False):
        try:
            return str(user.identity)
        except Exception:
            return str(getattr(user, "display_name", "")) or None
    state = scope.get("state")
    if state is not None:
        user = state.get("user") if isinstance(state, dict) else getattr(state, "user", None)
        if type(user) is str:
            return user
    return None


class HealthMiddleware(HealthMiddlewareBase):
    """Record every HTTP request of an ASGI app into ``monitor`` and serve the SDK's endpoints.

    :param app: the ASGI application to wrap.
    :param monitor: the :class:`~nextmonth_health.Monitor` to record into.
    :param user: ``user(scope) -> str | None``, called after the app returned; default
        :func:`default_user`.
    :param route: ``route(scope) -> str``, called after the app returned; default
        :func:`default_route`.
    :param site: the site to record under: a name, or ``site(scope) -> str | None`` for a
        process serving many sites; default the monitor's site.
    :param prefix: where the public endpoints live (notices, beacon, overlay assets).
    :param admin_prefix: where the admin view lives (closed unless ``authorize`` is given).
    :param authorize: ``authorize(request) -> bool | None`` for the admin view.
    :param allowed_origins: other origins whose pages may post beacons and read notices.
    :param sites: sites a page may name with ``?site=`` on the public endpoints.
    :param trusted_proxies: how many proxies in front of the app append to
        ``X-Forwarded-For``; 0 (default) trusts none and uses ``scope["client"]`` — which
        uvicorn's ``--proxy-headers`` (on by default, for ``--forwarded-allow-ips``) has
        already resolved, so leave this at 0 there.
    :param health: a ready-made :class:`~nextmonth_health.web.http.HealthApp` instead.
    :param public_options: passed to :class:`~nextmonth_health.web.public.PublicEndpoints`
        (``beacon_burst``, ``beacon_per_minute``, ``sessions_per_client``, ...).
    """

    default_user = staticmethod(default_user)
    default_route = staticmethod(default_route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith(self._prefixes) and self.health.owns(path):
            await self._serve(scope, receive, send)
            return
        status = 500

        def send_status(message: Message) -> Awaitable[None]:
            # A plain function handing back send's awaitable: one coroutine fewer per message.
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, send_status)
        except Exception:
            self._finish(scope, 500, perf_counter() - start)
            raise
        duration = perf_counter() - start
        if not self._defaults:
            self._finish(scope, status, duration)
            return
        # default_route and default_user, inlined for the common cases (this runs per request)
        route = scope.get("route")
        if route is None:
            template = path
        elif type(route) in _PLAIN_ROUTES and "app_root_path" not in scope:
            template = route.path
        else:
            template = default_route(scope)
        user = scope.get("user")
        if user is None:
            state = scope.get("state")
            if type(state) is dict:
                user = state.get("user")
        if user is not None and (type(user) is not str or not 0 < len(user) <= 200):
            user = self._finish_user(scope)
        self._record(template, status, duration, user, self._site)

    def _finish_user(self, scope: Scope) -> str | None:
        try:
            return clean_user(default_user(scope))
        except Exception as exc:
            self._report("asgi.middleware", exc)
            return None

    def _finish(self, scope: Scope, status: int, duration: float) -> None:
        try:
            route = self._route(scope)
            user = self._user(scope)
            if user is not None and (type(user) is not str or not 0 < len(user) <= 200):
                user = clean_user(user)
            site = self._site if self._site_of is None else self._site_of(scope)
        except Exception as exc:
            self._report("asgi.middleware", exc)
            route, user, site = scope.get("path", "/"), None, self._site
        self._record(route, status, duration, user, site)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        health = self.health
        method = scope["method"]
        try:
            headers: dict[str, str] = {}
            for raw_name, raw_value in scope.get("headers", ()):
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                headers[name] = f"{headers[name]},{value}" if name in headers else value
            limit = health.body_limit(scope["path"])
            declared = headers.get("content-length")
            if declared is not None and not declared.strip().isdigit():
                response = Response.json({"error": "bad content-length"}, status=400)
            elif declared is not None and int(declared) > limit:
                response = health.too_large()
            else:
                body = await _read_body(receive, limit)
                if body is None:
                    response = health.too_large()
                else:
                    peer = scope.get("client")
                    response = health.handle(
                        Request(
                            method=method,
                            path=scope["path"],
                            query_string=scope.get("query_string", b"").decode("latin-1"),
                            headers=headers,
                            body=body,
                            client=client_address(
                                peer[0] if peer else None, headers.get("x-forwarded-for"), self.trusted_proxies
                            ),
                            native=scope,
                            user=self._safe_user(scope),
                        )
                    )
        except Exception as exc:
            self._report("asgi.serve", exc)
            response = Response.json({"error": "unavailable"}, status=500)
        bodiless = method == "HEAD" or response.status in (204, 304)
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if response.status not in (204, 304):
            out.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": b"" if bodiless else response.body})

    def _safe_user(self, scope: Scope) -> str | None:
        try:
            user = self._user(scope)
            return None if user is None else clean_user(user)
        except Exception as exc:
            self._report("asgi.middleware", exc)
            return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it grows past ``limit`` (the rest is left unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
