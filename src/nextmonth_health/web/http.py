"""Framework-agnostic requests, responses and the router for the SDK's endpoints.

Handlers are plain functions ``(app, request) -> Response``. They never raise: the router
turns an exception into a calm 500 (reported through the monitor's error reporter) so a
bug in the SDK's endpoints cannot take the host application's error pages with it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from attrs import field, frozen

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..monitor import Monitor

__all__ = [
    "DEFAULT_MAX_BODY",
    "HealthApp",
    "Request",
    "Response",
    "Route",
    "TrustedProxies",
    "clean_user",
    "client_address",
    "etag_for",
    "etag_matches",
]

#: Largest request body a route accepts unless it says otherwise; bigger ones get 413.
DEFAULT_MAX_BODY = 16 * 1024

#: Headers every SDK response carries.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
)


@frozen
class Request:
    """What a handler needs of an HTTP request; header names are lower-case."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(factory=dict)
    body: bytes = b""
    client: str | None = None
    #: The host application's own request object (the ASGI scope, the WSGI environ), for authorisers.
    native: Any = None
    #: The signed-in user as the middleware's user extractor saw it, if any.
    user: str | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@frozen
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        return cls(status, body, (("content-type", "application/json; charset=utf-8"), *headers))

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status, text.encode(), (("content-type", content_type),))

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


Handler = Callable[["HealthApp", Request], Response]


@frozen
class Route:
    """One endpoint: ``path`` is relative to its prefix; ``admin`` routes need the authoriser."""

    methods: tuple[str, ...]
    path: str
    handler: Handler
    admin: bool = False
    #: Largest body accepted, in bytes; the adaptors stop reading past it and answer 413.
    max_body: int = DEFAULT_MAX_BODY


class HealthApp:
    """The SDK's endpoints for one monitor, mounted under two prefixes.

    ``prefix`` (default ``/health``) serves the public, cheap, bounded endpoints; the
    ``admin_prefix`` (default ``/admin/system-health``) serves Rob's view and its JSON
    API, closed (403) unless ``authorize`` is given. ``authorize(request)`` returns True
    to let the request in, False for 403; returning None means "not signed in" (401).
    """

    def __init__(
        self,
        monitor: Monitor,
        *,
        prefix: str = "/health",
        admin_prefix: str = "/admin/system-health",
        authorize: Callable[[Request], bool | None] | None = None,
        allowed_origins: Sequence[str] = (),
        secret: str | bytes | None = None,
        routes: Sequence[Route] | None = None,
        admin_routes: Sequence[Route] | None = None,
    ) -> None:
        self.monitor = monitor
        self.prefix = prefix.rstrip("/")
        self.admin_prefix = admin_prefix.rstrip("/")
        self.authorize = authorize
        self.allowed_origins = tuple(allowed_origins)
        self.secret = secret
        self.routes: list[Route] = list(routes or ())
        self.admin_routes: list[Route] = list(admin_routes or ())

    def owns(self, path: str) -> bool:
        """Whether a request path is one of the SDK's (the middleware records the others)."""
        return any(
            path == p or path.startswith(p + "/") for p in (self.prefix, self.admin_prefix)
        )

    def body_limit(self, path: str) -> int:
        """How many body bytes the adaptors may read for ``path`` before answering 413."""
        route = self._route(path)
        return DEFAULT_MAX_BODY if route is None else route.max_body

    def _route(self, path: str) -> Route | None:
        for prefix, routes in ((self.admin_prefix, self.admin_routes), (self.prefix, self.routes)):
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :] or "/"
                return next((r for r in routes if r.path == rest), None)
        return None

    def too_large(self) -> Response:
        """The answer to a body over its route's limit (the adaptors send it without reading on)."""
        return Response.json({"error": "request body too large"}, status=413, headers=SECURITY_HEADERS)

    def handle(self, request: Request) -> Response:
        """Route a request to its handler; never raises."""
        try:
            return self._handle(request)
        except Exception as exc:
            self.monitor.errors.report("web.handler", exc)
            return Response.json({"error": "unavailable"}, status=500)

    def _handle(self, request: Request) -> Response:
        for prefix, routes, admin in ((self.admin_prefix, self.admin_routes, True), (self.prefix, self.routes, False)):
            if request.path != prefix and not request.path.startswith(prefix + "/"):
                continue
            rest = request.path[len(prefix) :] or "/"
            for route in routes:
                if route.path == rest:
                    if request.method not in route.methods:
                        return Response(405, b"", (("allow", ", ".join(route.methods)), *SECURITY_HEADERS))
                    if len(request.body) > route.max_body:
                        return self.too_large()
                    if admin:
                        denied = self._deny(request)
                        if denied is not None:
                            return denied
                    response = route.handler(self, request)
                    return Response(response.status, response.body, (*response.headers, *SECURITY_HEADERS))
            return Response.json({"error": "not found"}, status=404)
        return Response.json({"error": "not found"}, status=404)

    def _deny(self, request: Request) -> Response | None:
        if self.authorize is None:
            return Response.json({"error": "the admin view is closed until an authoriser is configured"}, status=403)
        verdict = self.authorize(request)
        if verdict is None:
            return Response.json({"error": "sign in required"}, status=401, headers=(("www-authenticate", "Bearer"),))
        if not verdict:
            return Response.json({"error": "forbidden"}, status=403)
        return None


def etag_for(body: bytes) -> str:
    """A strong entity tag for a response body."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


class TrustedProxies:
    """Whose ``X-Forwarded-For`` to believe: the middlewares' ``trusted_proxies`` option.

    ``0`` (the default) believes nobody: the client is the connection's peer. A number
    ``n`` says that many proxies of yours append to the header in front of the app: the
    client is the entry ``n`` hops from the right, whoever connected. Addresses or
    networks (``["10.0.0.0/8", "127.0.0.1"]``, or the same comma-separated) say which
    peers are your proxies: the header counts only when the connection comes from one of
    them, and the client is its rightmost entry that is not one of them (what uvicorn's
    ``--forwarded-allow-ips`` does). ``"*"`` trusts every peer.
    """

    __slots__ = ("_cache", "_everyone", "_networks", "hops")

    def __init__(self, spec: int | str | Iterable[str] | TrustedProxies = 0) -> None:
        self.hops = 0
        self._everyone = False
        self._networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
        self._cache: dict[str, bool] = {}
        if isinstance(spec, TrustedProxies):
            self.hops, self._everyone, self._networks = spec.hops, spec._everyone, spec._networks
            return
        if isinstance(spec, bool) or (isinstance(spec, int) and spec < 0):
            raise ConfigError(f"trusted_proxies must be a number of hops or proxy addresses, got {spec!r}")
        if isinstance(spec, int):
            self.hops = spec
            return
        entries = [e.strip() for e in (spec.split(",") if isinstance(spec, str) else spec)]
        networks = []
        for entry in entries:
            if not isinstance(entry, str):
                raise ConfigError(f"trusted_proxies: {entry!r} is not an address or network")
            if entry == "*":
                self._everyone = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"trusted_proxies: {entry!r} is not an IP address or network (e.g. 10.0.0.0/8, 127.0.0.1)"
                ) from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.hops or self._everyone or self._networks)

    def _trusted(self, address: str) -> bool:
        if self._everyone:
            return True
        found = self._cache.get(address)
        if found is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                found = False
            else:
                found = any(ip in network for network in self._networks)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[address] = found
        return found

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address, from the peer's and the ``X-Forwarded-For`` it sent."""
        if not forwarded_for or not (self.hops or self._everyone or self._networks):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        if not hops:
            return peer
        if self.hops:
            # Each proxy appends the address it saw, so only the last ``hops`` entries were
            # written by proxies we run; anything to their left is whatever the client sent.
            return hops[-self.hops] if len(hops) >= self.hops else hops[0]
        if peer is None or not self._trusted(peer):
            return peer
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0]


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: int | TrustedProxies = 0
) -> str | None:
    """The client's address: the peer's, or the one ``X-Forwarded-For`` names behind trusted proxies."""
    proxies = trusted_proxies if isinstance(trusted_proxies, TrustedProxies) else TrustedProxies(trusted_proxies)
    return proxies.client(peer, forwarded_for)


def clean_user(user: object) -> str | None:
    """A user id the recorder accepts: text of at most 200 characters (longer ones are hashed)."""
    if type(user) is int:
        user = str(user)
    if not isinstance(user, str) or not user:
        return None
    if len(user) > 200:
        return "h:" + hashlib.blake2b(user.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return user
