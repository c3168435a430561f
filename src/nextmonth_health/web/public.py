"""The public endpoints: the notices browsers poll, the page-load beacon, the overlay assets.

Everything here is reachable by anyone, so everything is cheap and bounded. Notices are
served from a one-second cache of their JSON (the monitor caches the incidents behind it
too), with an ETag so an unchanged answer is a bodiless 304. The beacon checks size,
origin and rate before it parses anything, validates strictly, and lets one client
address contribute only ``sessions_per_client`` distinct sessions per window — with the
dashboard check's ``page_load_min_users`` (at least 2), one client alone can never
open a page-load incident, however many session ids it invents.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..logs import get_logger
from .http import HealthApp, Request, Response, Route, TrustedProxies, etag_for, etag_matches
from .limits import TokenBuckets

if TYPE_CHECKING:
    from ..monitor import Monitor

    #: Who a middleware records a request for: a user, an anonymous visitor (address and
    #: user agent, hashed by the recorder), or nobody.
    Who = str | tuple[str, str] | tuple[str, bytes] | None
    #: Monitor.record_request as the middlewares call it: route, status, duration, who, site.
    RecordRequest = Callable[[str, int, float, Who, str | None], None]

__all__ = ["PublicEndpoints", "SessionBudget", "TokenBuckets", "build_health_app"]

log = get_logger(__name__)

BEACON_MAX_BYTES = 2048
_AREA = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SESSION = re.compile(r"[A-Za-z0-9_-]{8,64}")
_PAGE = re.compile(r"/[^\s?#\x00-\x1f\x7f]{0,199}")
_BEACON_KEYS = frozenset({"page", "seconds", "session"})
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
#: The files under ``static/`` served publicly; anything else there is not.
PUBLIC_ASSETS = ("overlay.js", "overlay.css")
_NOTICE_CACHE_SECONDS = 1.0
_NOTICE_CACHE_LIMIT = 1024


class PublicEndpoints:
    """The state behind the public routes: caches, the rate limiter, the session budget.

    :param sites: sites a browser may name with ``?site=``; any other falls back to the
        monitor's default site (so a page cannot make the SDK track arbitrary sites).
    :param beacon_burst: beacons one client address may send at once ...
    :param beacon_per_minute: ... and how fast its allowance refills.
    :param sessions_per_client: distinct anonymous sessions one client address may add
        per ``session_window`` seconds; later ones count as its first.
    :param max_clients: client addresses remembered by the limiter (oldest forgotten first).
    :param trusted_proxies: proxies in front of the app whose ``X-Forwarded-Host`` counts
        for the same-origin check (the adaptors use it for the client address too).
    """

    def __init__(
        self,
        *,
        sites: Sequence[str] = (),
        beacon_burst: int = 10,
        beacon_per_minute: float = 12.0,
        sessions_per_client: int = 1,
        session_window: float = 600.0,
        max_clients: int = 10_000,
        notices_max_age: int = 5,
        static_max_age: int = 86_400,
        trusted_proxies: int | str | Sequence[str] | TrustedProxies = 0,
    ) -> None:
        for name, value, least in (
            ("beacon_burst", beacon_burst, 1),
            ("beacon_per_minute", beacon_per_minute, 0),
            ("sessions_per_client", sessions_per_client, 1),
            ("session_window", session_window, 0),
            ("max_clients", max_clients, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= least or value == 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        self.sites = frozenset(sites)
        self.notices_max_age = notices_max_age
        self.static_max_age = static_max_age
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        self.limiter = TokenBuckets(beacon_burst, beacon_per_minute / 60.0, max_clients)
        self.sessions = SessionBudget(sessions_per_client, session_window, max_clients)
        self._notice_cache: dict[tuple[str, str], tuple[float, str, bytes]] = {}
        self._assets = _load_assets()

    def routes(self) -> list[Route]:
        routes = [
            Route(("GET", "HEAD"), "/notices", self.notices),
            Route(("POST",), "/beacon", self.beacon, max_body=BEACON_MAX_BYTES),
        ]
        for name in self._assets:
            routes.append(Route(("GET", "HEAD"), f"/static/{name}", self._static_handler(name), max_body=0))
        return routes

    # GET /notices?area=uploads[&site=...]

    def notices(self, app: HealthApp, request: Request) -> Response:
        area = request.arg("area")
        if area is None or not _AREA.fullmatch(area):
            return Response.json({"error": "area is required, e.g. ?area=uploads"}, status=400)
        site = self._site(app, request)
        now = app.monitor.clock.now()
        key = (site, area)
        cached = self._notice_cache.get(key)
        if cached is None or cached[0] <= now:
            body = json.dumps(
                {
                    "notices": [
                        {
                            "area": n.area,
                            "title": n.title,
                            "message": n.message,
                            "severity": n.severity.value,
                            "kind": n.kind,
                        }
                        for n in app.monitor.notices(area, site=site)
                    ]
                },
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            if len(self._notice_cache) >= _NOTICE_CACHE_LIMIT:
                self._notice_cache.clear()
            cached = self._notice_cache[key] = (now + _NOTICE_CACHE_SECONDS, etag_for(body), body)
        _, etag, body = cached
        headers = [("etag", etag), ("cache-control", f"public, max-age={self.notices_max_age}")]
        headers.extend(self._cors(app, request))
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(304, b"", tuple(headers))
        return Response(200, body, (("content-type", "application/json; charset=utf-8"), *headers))

    # POST /beacon  {"page": "/dashboard", "seconds": 1.23, "session": "..."}

    def beacon(self, app: HealthApp, request: Request) -> Response:
        if not self._same_origin(app, request):
            return Response.json({"error": "origin not allowed"}, status=403)
        client = request.client or "unknown"
        now = app.monitor.clock.now()
        wait = self.limiter.take(client, now)
        if wait:
            return Response.json(
                {"error": "too many requests"}, status=429, headers=(("retry-after", str(math.ceil(wait))),)
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "text/plain"):
            return Response.json({"error": "send JSON (application/json or text/plain)"}, status=415)
        sample = _parse_beacon(request.body)
        if sample is None:
            return Response.json(
                {"error": 'expected {"page": "/path", "seconds": 0-600, "session": "8-64 [A-Za-z0-9_-]"}'},
                status=400,
            )
        page, seconds, session = sample
        user = request.user or "session:" + self.sessions.identity(client, session, now)
        app.monitor.record_page_load(page, seconds, user=user, site=self._site(app, request))
        return Response(204, b"", (("cache-control", "no-store"),))

    # GET /static/<name>

    def _static_handler(self, name: str) -> Callable[[HealthApp, Request], Response]:
        content_type, body = self._assets[name]
        etag = etag_for(body)
        cache = ("cache-control", f"public, max-age={self.static_max_age}")

        def static(app: HealthApp, request: Request) -> Response:
            if etag_matches(request.headers.get("if-none-match"), etag):
                return Response(304, b"", (("etag", etag), cache))
            return Response(200, body, (("content-type", content_type), ("etag", etag), cache))

        return static

    # helpers

    def _site(self, app: HealthApp, request: Request) -> str:
        site = request.arg("site")
        return site if site is not None and site in self.sites else app.monitor.site

    def _same_origin(self, app: HealthApp, request: Request) -> bool:
        """Browsers always send Origin on POST; a request without one is not from a page.

        Such requests (curl, scripts) are let through to the rate limit: forging a
        header is easy, so the origin check stops other sites' pages, not clients.
        """
        origin = request.headers.get("origin")
        if origin is None:
            return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        origin = origin.strip().rstrip("/").lower()
        if origin in _normalised(app.allowed_origins):
            return True
        netloc = urlsplit(origin).netloc
        hosts = [request.headers.get("host", "")]
        if self.trusted_proxies:
            hosts.append(request.headers.get("x-forwarded-host", "").split(",")[0])
        return bool(netloc) and any(netloc == h.strip().lower() for h in hosts if h)

    def _cors(self, app: HealthApp, request: Request) -> list[tuple[str, str]]:
        if not app.allowed_origins:
            return []
        origin = request.headers.get("origin", "").strip().rstrip("/").lower()
        headers = [("vary", "origin")]
        if origin and origin in _normalised(app.allowed_origins):
            headers.append(("access-control-allow-origin", request.headers["origin"]))
        return headers


def _normalised(origins: Sequence[str]) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/").lower() for o in origins)


def _parse_beacon(body: bytes) -> tuple[str, float, str] | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.keys() != _BEACON_KEYS:
        return None
    page, seconds, session = data["page"], data["seconds"], data["session"]
    if not isinstance(page, str) or not _PAGE.fullmatch(page):
        return None
    if type(seconds) not in (int, float) or not 0 < seconds <= 600:
        return None
    if not isinstance(session, str) or not _SESSION.fullmatch(session):
        return None
    return page, float(seconds), session


class SessionBudget:
    """Which session a beacon's samples count under: at most ``per_client`` per address and window."""

    def __init__(self, per_client: int, window: float, max_clients: int) -> None:
        self.per_client = per_client
        self.window = window
        self.max_clients = max_clients
        self._seen: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def identity(self, client: str, session: str, now: float) -> str:
        with self._lock:
            entry = self._seen.pop(client, None)
            if entry is None or now - entry[0] >= self.window:
                entry = (now, [session])
            elif session not in entry[1] and len(entry[1]) < self.per_client:
                entry[1].append(session)
            self._seen[client] = entry
            while len(self._seen) > self.max_clients:
                del self._seen[next(iter(self._seen))]
            return session if session in entry[1] else entry[1][0]


def _load_assets() -> dict[str, tuple[str, bytes]]:
    """The overlay's two files, read once from package data (the admin's assets are its own)."""
    folder = importlib.resources.files(__package__) / "static"
    return {
        name: (_STATIC_TYPES["." + name.rpartition(".")[2]], (folder / name).read_bytes()) for name in PUBLIC_ASSETS
    }


def _admin_routes() -> Sequence[Route]:
    """The admin view's routes, when ``nextmonth_health.web.admin`` and its extras are installed."""
    try:
        from . import admin
    except ModuleNotFoundError as exc:
        if exc.name in (f"{__package__}.admin", "jinja2", "itsdangerous"):
            log.info("nextmonth_health.admin_unavailable", missing=exc.name)
            return ()
        raise
    factory: Any = getattr(admin, "admin_routes", None)
    return tuple(factory()) if factory is not None else ()


def build_health_app(
    monitor: Monitor,
    *,
    prefix: str = "/health",
    admin_prefix: str = "/admin/system-health",
    authorize: Callable[[Request], bool | None] | None = None,
    allowed_origins: Sequence[str] = (),
    secret: str | bytes | None = None,
    sites: Sequence[str] = (),
    trusted_proxies: int | str | Sequence[str] | TrustedProxies = 0,
    **public_options: Any,
) -> HealthApp:
    """The SDK's endpoints for ``monitor``: public ones under ``prefix``, the admin view under ``admin_prefix``."""
    try:
        public = PublicEndpoints(sites=sites, trusted_proxies=TrustedProxies(trusted_proxies), **public_options)
    except TypeError as exc:
        raise ConfigError(f"unknown option for the public endpoints: {exc}") from None
    return HealthApp(
        monitor,
        prefix=prefix,
        admin_prefix=admin_prefix,
        authorize=authorize,
        allowed_origins=allowed_origins,
        secret=secret,
        routes=public.routes(),
        admin_routes=_admin_routes(),
    )


class HealthMiddlewareBase:
    """What the ASGI and WSGI middlewares share: their options, the SDK's endpoints, and
    making sure the monitor runs.

    Subclasses name their framework's defaults in ``default_user`` and ``default_route``;
    ``user``, ``route`` and a callable ``site`` receive the scope or the environ.

    The monitor's loop is started in the background (:meth:`Monitor.start`) the first time
    it is needed in a process — the ASGI lifespan's startup, else the first request — unless
    something already runs it (``monitor.running()`` in the host's lifespan, ``start()`` in
    its code) or ``start_monitor=False``. A forked worker starts its own. The check costs
    one comparison per request: the same one that, once a second, asks the monitor whether
    events are being recorded with nothing evaluating them.
    """

    default_user: Callable[[Any], str | None]
    default_route: Callable[[Any], str]

    def __init__(
        self,
        app: Any,
        monitor: Monitor,
        *,
        user: Callable[[Any], str | None] | None = None,
        route: Callable[[Any], str] | None = None,
        site: str | Callable[[Any], str | None] | None = None,
        prefix: str = "/health",
        admin_prefix: str = "/admin/system-health",
        authorize: Callable[[Request], bool | None] | None = None,
        allowed_origins: Sequence[str] = (),
        sites: Sequence[str] = (),
        secret: str | bytes | None = None,
        trusted_proxies: int | str | Sequence[str] = 0,
        count_visitors: bool = True,
        start_monitor: bool = True,
        health: HealthApp | None = None,
        **public_options: Any,
    ) -> None:
        self.app = app
        self.monitor = monitor
        self.proxies = TrustedProxies(trusted_proxies)
        self.health = health or build_health_app(
            monitor,
            prefix=prefix,
            admin_prefix=admin_prefix,
            authorize=authorize,
            allowed_origins=allowed_origins,
            secret=secret,
            sites=sites,
            trusted_proxies=self.proxies,
            **public_options,
        )
        self.trusted_proxies = self.proxies
        #: The proxies, or None when none is trusted (the request path's cheaper test).
        self._trusted = self.proxies if self.proxies else None
        self._prefixes = (self.health.prefix, self.health.admin_prefix)
        self._user = user or type(self).default_user
        self._route = route or type(self).default_route
        self._defaults = user is None and route is None and not callable(site)
        self._site_of = site if callable(site) else None
        self._site = None if callable(site) else site
        # Monitor.record_request takes a visitor too, which its public signature leaves out.
        self._record: RecordRequest = monitor.record_request  # type: ignore[assignment]  # a visitor as the user
        #: Whether any route names a method: only then is a request recorded with its own.
        self._methods = any(s.route_table.has_methods for s in (monitor.settings, *monitor.site_settings.values()))
        self._report = monitor.errors.report
        #: Count the people behind anonymous requests (see :mod:`nextmonth_health.record.visitors`).
        self._visitors = count_visitors
        self._start = start_monitor
        #: ``perf_counter()`` time of the next look at the monitor (0: at the first request).
        self._next_look = 0.0
        #: Whether this middleware made sure the monitor runs in this process, and whether
        #: it started it (then it stops it at the ASGI lifespan's shutdown).
        self._started = not start_monitor
        self._owns_loop = False
        self._start_lock = threading.Lock()
        me = weakref.ref(self)

        def after_in_child() -> None:
            if (m := me()) is not None:
                m._after_fork_in_child()

        os.register_at_fork(after_in_child=after_in_child)

    def _after_fork_in_child(self) -> None:
        """A forked worker makes sure of its own loop at its first request."""
        self._started = not self._start
        self._owns_loop = False
        self._next_look = 0.0
        self._start_lock = threading.Lock()

    def _look(self, now: float) -> None:
        """Once a second of requests: the monitor runs, and is evaluating what is recorded."""
        self._next_look = now + _LOOK_SECONDS
        if not self._started:
            self._ensure_running()
        try:
            self.monitor.overdue()
        except Exception as exc:
            self._report("middleware.watch", exc)

    def _ensure_running(self) -> None:
        """Start the monitor's background loop, unless it runs already; never raises."""
        with self._start_lock:
            if self._started:
                return
            self._started = True
            if self.monitor.is_running:
                return
            try:
                self.monitor.start()
            except Exception as exc:
                self._report("middleware.start", exc)
                return
            self._owns_loop = True

    def _stop_if_started_here(self) -> None:
        """Stop (and flush) the loop this middleware started; a host's own loop is the host's."""
        with self._start_lock:
            owned, self._owns_loop = self._owns_loop, False
        if owned:
            try:
                self.monitor.stop()
            except Exception as exc:
                self._report("middleware.stop", exc)


#: How often (seconds of requests) a middleware looks at its monitor.
_LOOK_SECONDS = 1.0
