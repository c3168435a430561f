"""ASGI middleware: records every request and answers the SDK's own endpoints.

>>> app = HealthMiddleware(app, monitor)

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which runs the app in a
separate task and costs tens of microseconds). For each HTTP request it wraps ``send`` to
see the status, times the app with ``perf_counter``, and after the app returns calls
``monitor.record_request`` with the route template the framework matched (Starlette and
FastAPI leave it in ``scope["route"]``), the user and the duration; when some route names
a method, the template goes with the request's method in front (``"POST /payments/webhook"``),
and not otherwise, so hosts without method routes pay nothing for them. An exception from
the app is recorded as a 500 and re-raised untouched. Requests under the SDK's prefixes
(``/health``, ``/admin/system-health``) are answered by
:class:`~nextmonth_health.web.http.HealthApp` and not recorded. Websocket scopes pass
straight through.

The ``lifespan`` scope runs the monitor: the host app's own lifespan messages go through
untouched (its startup and shutdown run, and their failures reach the server the ASGI
way), the monitor's loop starts once the host's startup has completed and stops, flushing,
before its shutdown completion is passed on. A monitor the host already runs (with
``monitor.running()`` in its lifespan, say) is left to it. An app that does not speak the
lifespan protocol (it returns, or raises, without reading a message) has it spoken for
it; a server without lifespan support gets the monitor started at the first request.

A request without a user (no ``user`` extractor, or nobody signed in) counts its client as
an anonymous visitor: the client's address (behind ``trusted_proxies``, from
``X-Forwarded-For``) and its ``User-Agent``, which the recorder turns into the day's keyed
hash off the request path (:mod:`nextmonth_health.record.visitors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .http import Request, Response, TrustedProxies, clean_user
from .public import HealthMiddlewareBase

if TYPE_CHECKING:
    from .public import Who

__all__ = ["HealthMiddleware", "default_route", "default_user", "visitor"]

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
    path: str  # the scope and the route are untyped
    if route is None:
        path = scope["path"]
        return path
    kind = type(route)
    if kind not in _PLAIN_ROUTES:
        if kind in _OTHER_ROUTES or type(getattr(route, "path", None)) is not str or hasattr(route, "routes"):
            _OTHER_ROUTES.add(kind)
            path = scope["path"]
            return path
        _PLAIN_ROUTES.add(kind)
    if "app_root_path" in scope:  # routed through a Mount
        path = scope.get("root_path", "")[len(scope["app_root_path"]) :] + route.path
        return path
    path = route.path
    return path


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


def visitor(scope: Scope, proxies: TrustedProxies | None) -> tuple[str, bytes] | None:
    """An anonymous request's client as the recorder counts it: (address, user agent).

    ``proxies`` None (or trusting nobody) takes the peer's address: the request path's case.
    """
    client = scope.get("client")
    if not client:
        return None
    agent = b""
    if proxies:
        forwarded = None
        for name, value in scope.get("headers", ()):
            if name == b"user-agent":
                agent = value
            elif name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b"," + value
        address = proxies.client(client[0], None if forwarded is None else forwarded.decode("latin-1"))
    else:
        for name, value in scope.get("headers", ()):
            if name == b"user-agent":
                agent = value
                break
        address = client[0]
    return (address, agent) if address else None


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
    :param trusted_proxies: whose ``X-Forwarded-For`` names the client: 0 (default)
        trusts nobody and uses ``scope["client"]`` — which uvicorn's ``--proxy-headers``
        (on by default, for ``--forwarded-allow-ips``) has already resolved, so leave this
        at 0 there; your proxies' addresses or networks (``["10.0.0.0/8"]``) to honour the
        header only from them; or a number of proxy hops (see
        :class:`~nextmonth_health.web.http.TrustedProxies`).
    :param count_visitors: count the people behind anonymous requests by a daily keyed
        hash of address and user agent (default); False counts only named users.
    :param start_monitor: run the monitor (default); False when something else drives it.
    :param health: a ready-made :class:`~nextmonth_health.web.http.HealthApp` instead.
    :param public_options: passed to :class:`~nextmonth_health.web.public.PublicEndpoints`
        (``beacon_burst``, ``beacon_per_minute``, ``sessions_per_client``, ...).
    """

    default_user = staticmethod(default_user)
    default_route = staticmethod(default_route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
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
        if start >= self._next_look:
            self._look(start)
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
        if self._methods:
            template = scope["method"] + " " + template
        user = scope.get("user")
        if user is None:
            state = scope.get("state")
            if type(state) is dict:
                user = state.get("user")
        if user is not None and (type(user) is not str or not 0 < len(user) <= 200):
            user = self._finish_user(scope)
        if user is None and self._visitors:
            client = scope.get("client")
            if client and self._trusted is None:  # visitor(), inlined for the common case
                agent = b""
                for name, value in scope.get("headers", ()):
                    if name == b"user-agent":
                        agent = value
                        break
                user = (client[0], agent)
            else:
                user = visitor(scope, self._trusted)
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
            user: Who = self._user(scope)
            if user is not None and (type(user) is not str or not 0 < len(user) <= 200):
                user = clean_user(user)
            site = self._site if self._site_of is None else self._site_of(scope)
        except Exception as exc:
            self._report("asgi.middleware", exc)
            route, user, site = scope.get("path", "/"), None, self._site
        if self._methods and type(route) is str and route[:1] == "/":
            route = f"{scope.get('method', 'GET')} {route}"
        if user is None and self._visitors:
            user = visitor(scope, self._trusted)
        self._record(route, status, duration, user, site)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the monitor for the life of the app, passing the host's lifespan through."""
        spoken = False  # the app read a message or answered one: it speaks the protocol

        async def hear() -> Message:
            nonlocal spoken
            spoken = True
            return await receive()

        async def answer(message: Message) -> None:
            nonlocal spoken
            spoken = True
            kind = message.get("type")
            if kind == "lifespan.startup.complete":
                await anyio.to_thread.run_sync(self._ensure_running)
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(self._stop_if_started_here)
            await send(message)

        try:
            await self.app(scope, hear, answer)
        except Exception:
            if spoken:
                raise  # the host's own startup or shutdown failed: the server says so
        else:
            if spoken:
                return
        # An app without lifespan support: speak the protocol for it.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await anyio.to_thread.run_sync(self._ensure_running)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await anyio.to_thread.run_sync(self._stop_if_started_here)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        health = self.health
        method = scope["method"]
        path = scope["path"]
        try:
            headers: dict[str, str] = {}
            for raw_name, raw_value in scope.get("headers", ()):
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                headers[name] = f"{headers[name]},{value}" if name in headers else value
            limit = health.body_limit(path)
            declared = headers.get("content-length")
            if declared is not None and not declared.strip().isdigit():
                response = health.finish(path, Response.json({"error": "bad content-length"}, status=400))
            elif declared is not None and int(declared) > limit:
                response = health.too_large(path)
            else:
                body = await _read_body(receive, limit)
                if body is None:
                    response = health.too_large(path)
                else:
                    peer = scope.get("client")
                    address = peer[0] if peer else None
                    # Admin requests run in a worker thread under a deadline: a hung store
                    # never stalls this event loop (the host's other requests).
                    response = await health.handle_async(
                        Request(
                            method=method,
                            path=path,
                            query_string=scope.get("query_string", b"").decode("latin-1"),
                            headers=headers,
                            body=body,
                            client=self.proxies.client(address, headers.get("x-forwarded-for")),
                            native=scope,
                            user=self._safe_user(scope),
                            scheme=self.proxies.scheme(
                                address, scope.get("scheme", "http"), headers.get("x-forwarded-proto")
                            ),
                        )
                    )
        except Exception as exc:
            self._report("asgi.serve", exc)
            response = health.finish(path, Response.json({"error": "unavailable"}, status=500))
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
