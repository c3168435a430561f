"""Framework-agnostic requests, responses and the router for the SDK's endpoints.

Handlers are plain functions ``(app, request) -> Response``. They never raise: the router
turns an exception into a calm 500 (reported through the monitor's error reporter), or a
503 "the store is not answering" when the store failed, so a bug in the SDK's endpoints
cannot take the host application's error pages with it.

Everything under the admin prefix, errors included, carries :data:`ADMIN_HEADERS`. The
adaptors run admin requests through :meth:`HealthApp.handle_async` (ASGI) or
:meth:`HealthApp.handle_in_thread` (WSGI): in a worker thread of their own, under a
deadline (:mod:`~nextmonth_health.web.deadline`), so a hung store never stalls the host.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import attrs
from attrs import field, frozen

from ..errors import ConfigError, is_store_error
from .deadline import Deadline
from .limits import FailureThrottle

if TYPE_CHECKING:
    from ..monitor import Monitor

__all__ = [
    "ADMIN_HEADERS",
    "CONTENT_SECURITY_POLICY",
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

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Headers of every admin response, errors included (``nosniff`` and the referrer policy
#: are in :data:`SECURITY_HEADERS`).
ADMIN_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
    ("cross-origin-resource-policy", "same-origin"),
)

#: What a person is told when the store does not answer within the deadline.
STORE_NOT_ANSWERING = (
    "The store is not answering, so there is nothing new to show. The site itself keeps "
    "serving; this page will work again once the store answers."
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
    #: ``https`` or ``http``: the connection's, or ``X-Forwarded-Proto`` from a trusted proxy.
    scheme: str = "http"
    #: The parts of the path a route names in braces (``/incidents/{id}``).
    params: Mapping[str, str] = field(factory=dict)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def wants_html(self) -> bool:
        """A browser navigating (``Accept: text/html``), rather than a script or a fetch()."""
        return "text/html" in self.headers.get("accept", "").lower()


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

    def with_headers(self, *headers: tuple[str, str]) -> Response:
        """This response with ``headers`` added where it does not already have one of that name."""
        have = {k.lower() for k, _ in self.headers}
        extra = tuple(h for h in headers if h[0] not in have)
        return Response(self.status, self.body, (*self.headers, *extra)) if extra else self


Handler = Callable[["HealthApp", Request], Response]


@frozen
class Route:
    """One endpoint: ``path`` is relative to its prefix; ``admin`` routes need the authoriser.

    A path segment in braces (``/incidents/{id}``) matches any one non-empty segment, which
    the handler finds in ``request.params``.
    """

    methods: tuple[str, ...]
    path: str
    handler: Handler
    admin: bool = False
    #: Largest body accepted, in bytes; the adaptors stop reading past it and answer 413.
    max_body: int = DEFAULT_MAX_BODY
    _segments: tuple[str, ...] | None = field(init=False, eq=False, repr=False)

    @_segments.default
    def _split(self) -> tuple[str, ...] | None:
        return tuple(self.path.split("/")) if "{" in self.path else None

    def match(self, rest: str) -> dict[str, str] | None:
        """The named segments of ``rest`` if this route serves it (``{}`` for a plain path), else None."""
        if self._segments is None:
            return {} if rest == self.path else None
        parts = rest.split("/")
        if len(parts) != len(self._segments):
            return None
        found = {}
        for want, got in zip(self._segments, parts, strict=True):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                found[want[1:-1]] = got
            elif want != got:
                return None
        return found


class HealthApp:
    """The SDK's endpoints for one monitor, mounted under two prefixes.

    ``prefix`` (default ``/health``) serves the public, cheap, bounded endpoints; the
    ``admin_prefix`` (default ``/admin/system-health``) serves Rob's view and its JSON
    API, closed (403) unless ``authorize`` is given. ``authorize(request)`` returns True
    to let the request in, False for 403; returning None means "not signed in" (401, or
    for a browser a redirect to the sign-in page).

    :param deadline: seconds an admin request may take (store reads included) before the
        answer is "the store is not answering" (503), when served through
        :meth:`handle_async` or :meth:`handle_in_thread`.
    :param live_seconds: how often an open admin page asks whether anything changed.
    :param throttle: wrong admin tokens allowed per client (default ten, then ten a minute).
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
        deadline: float = 1.0,
        live_seconds: float = 15.0,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self.monitor = monitor
        self.prefix = prefix.rstrip("/")
        self.admin_prefix = admin_prefix.rstrip("/")
        self.authorize = authorize
        self.allowed_origins = tuple(allowed_origins)
        self.secret = secret
        self.routes: list[Route] = list(routes or ())
        self.admin_routes: list[Route] = list(admin_routes or ())
        self.deadline = Deadline(deadline)
        self.live_seconds = live_seconds
        self.throttle = throttle if throttle is not None else FailureThrottle()
        attach = getattr(authorize, "attach", None)
        if callable(attach):
            attach(monitor.store, self.admin_prefix)  # the token authoriser's sessions and open paths

    def owns(self, path: str) -> bool:
        """Whether a request path is one of the SDK's (the middleware records the others)."""
        return any(path == p or path.startswith(p + "/") for p in (self.prefix, self.admin_prefix))

    def is_admin(self, path: str) -> bool:
        return path == self.admin_prefix or path.startswith(self.admin_prefix + "/")

    def body_limit(self, path: str) -> int:
        """How many body bytes the adaptors may read for ``path`` before answering 413."""
        found = self._route(path)
        return DEFAULT_MAX_BODY if found is None else found[0].max_body

    def _route(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for prefix, routes in ((self.admin_prefix, self.admin_routes), (self.prefix, self.routes)):
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :] or "/"
                for route in routes:
                    params = route.match(rest)
                    if params is not None:
                        return route, params
                return None
        return None

    def too_large(self, path: str = "") -> Response:
        """The answer to a body over its route's limit (the adaptors send it without reading on)."""
        return self.finish(path, Response.json({"error": "request body too large"}, status=413))

    def finish(self, path: str, response: Response) -> Response:
        """``response`` with the headers every response under ``path``'s prefix carries."""
        response = response.with_headers(*SECURITY_HEADERS)
        return response.with_headers(*ADMIN_HEADERS) if self.is_admin(path) else response

    def handle(self, request: Request) -> Response:
        """Route a request to its handler, here and now; never raises."""
        try:
            response = self._handle(request)
        except Exception as exc:
            if is_store_error(exc):
                self.monitor.errors.report("web.store", exc)
                response = self.unavailable(request)
            else:
                self.monitor.errors.report("web.handler", exc)
                response = Response.json({"error": "unavailable"}, status=500)
        return self.finish(request.path, response)

    async def handle_async(self, request: Request) -> Response:
        """:meth:`handle` for an event loop: an admin request runs in a worker thread of
        its own, and answers 503 once ``deadline`` seconds pass; a public one runs here
        (those answer from memory)."""
        if not self.is_admin(request.path):
            return self.handle(request)
        response = await self.deadline.run_async(self.handle, request)
        return self.finish(request.path, self.unavailable(request)) if response is None else response

    def handle_in_thread(self, request: Request) -> Response:
        """:meth:`handle` for a WSGI worker: an admin request gives up after ``deadline`` seconds."""
        if not self.is_admin(request.path):
            return self.handle(request)
        response = self.deadline.run(self.handle, request)
        return self.finish(request.path, self.unavailable(request)) if response is None else response

    def unavailable(self, request: Request) -> Response:
        """503: the store did not answer in time (or failed); a page for people, JSON for scripts."""
        return self.error(
            request,
            503,
            "The store is not answering",
            STORE_NOT_ANSWERING,
            (("retry-after", "5"),),
            json_message="the store is not answering",
        )

    def error(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        json_message: str | None = None,
    ) -> Response:
        """An error answer: a small page for a browser under the admin prefix, else JSON."""
        if request.wants_html and self.is_admin(request.path):
            return Response(
                status,
                message_page(self.admin_prefix, title, message),
                (("content-type", "text/html; charset=utf-8"), *headers),
            )
        return Response.json({"error": json_message or message}, status=status, headers=headers)

    def _handle(self, request: Request) -> Response:
        found = self._route(request.path)
        if found is None:
            return self.error(request, 404, "Not found", "There is nothing at this address.", json_message="not found")
        route, params = found
        if request.method not in route.methods:
            return Response(405, b"", (("allow", ", ".join(route.methods)),))
        if len(request.body) > route.max_body:
            return Response.json({"error": "request body too large"}, status=413)
        if self.is_admin(request.path):
            denied = self._deny(request)
            if denied is not None:
                return denied
        if params:
            request = attrs.evolve(request, params=params)
        return route.handler(self, request)

    def _deny(self, request: Request) -> Response | None:
        if self.authorize is None:
            return Response.json({"error": "the admin view is closed until an authoriser is configured"}, status=403)
        credentials = bool(request.headers.get("authorization"))
        now = self.monitor.clock.now()
        if credentials:
            wait = self.throttle.retry_after(request.client, now)
            if wait:
                return self.too_many(request, wait)
        verdict = self.authorize(request)
        if verdict is None:
            if credentials:
                self.throttle.failed(request.client, now)
            return self.sign_in_first(request)
        if not verdict:
            return self.error(
                request,
                403,
                "Not for this account",
                "You are signed in, but not as an admin of this site.",
                json_message="forbidden",
            )
        return None

    def too_many(self, request: Request, wait: int) -> Response:
        """429: too many wrong tokens from this client; try again in ``wait`` seconds."""
        return self.error(
            request,
            429,
            "Too many attempts",
            f"Too many wrong tokens from here. Try again in {wait} seconds.",
            (("retry-after", str(wait)),),
            json_message="too many attempts",
        )

    def sign_in_first(self, request: Request) -> Response:
        """401 for scripts; a browser asking for a page goes to the sign-in page instead,
        with ``next=`` naming where it was going (always a path under the admin prefix)."""
        sign_in = getattr(self.authorize, "sign_in_path", None)
        if request.wants_html and request.method in ("GET", "HEAD") and isinstance(sign_in, str):
            target = request.path + ("?" + request.query_string if request.query_string else "")
            location = f"{self.admin_prefix}{sign_in}?next={quote(target, safe='/')}"
            return Response(303, b"", (("location", location),))
        if request.wants_html:
            return Response(
                401,
                message_page(
                    self.admin_prefix, "Sign in first", "Sign in to the site as an admin, then open this page again."
                ),
                (("content-type", "text/html; charset=utf-8"), ("www-authenticate", "Bearer")),
            )
        return Response.json({"error": "sign in required"}, status=401, headers=(("www-authenticate", "Bearer"),))


def message_page(prefix: str, title: str, message: str) -> bytes:
    """A small admin page saying one thing: no template engine, so it renders even when
    nothing else can (the store is down, the web extra is missing). Every part escaped."""
    t, m, p = html.escape(title), html.escape(message), html.escape(prefix, quote=True)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{t} · System health</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{p}/static/admin.css">\n</head>\n<body>\n'
        f'<main class="narrow">\n  <section class="card">\n    <h1>{t}</h1>\n    <p>{m}</p>\n'
        f'    <p><a href="{p}/">Back to system health</a></p>\n  </section>\n</main>\n</body>\n</html>\n'
    ).encode()


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

    def scheme(self, peer: str | None, connection: str, forwarded_proto: str | None) -> str:
        """``https`` or ``http``: the connection's scheme, or what ``X-Forwarded-Proto``
        says when it comes through proxies of ours (the same trust as :meth:`client`).

        Behind proxies counted by hops the entry that many from the right is theirs;
        behind proxies named by address the header counts only when the peer is one of
        them, and the first entry (the outermost proxy's) is the client's scheme.
        """
        scheme = "https" if connection.lower() in ("https", "wss") else "http"
        if not forwarded_proto or not self:
            return scheme
        entries = [e.strip().lower() for e in forwarded_proto.split(",") if e.strip()]
        if not entries:
            return scheme
        if self.hops:
            said = entries[-self.hops] if len(entries) >= self.hops else entries[0]
        elif peer is not None and self._trusted(peer):
            said = entries[0]
        else:
            return scheme
        return "https" if said == "https" else "http"


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
