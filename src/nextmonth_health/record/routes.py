"""Routes: which requests keep a key of their own, and the area users see them in.

A route is a path prefix (``"/payments"``), or an HTTP method and a path prefix
(``"POST /payments/webhook"``). The recorder folds every request into the longest route
it falls under, and everything else into ``other``, so the number of keys stays bounded
whatever paths arrive; a route's key is the route as written. A method-less route matches
every method, and where a method-less and a method-specific route share a path, the
method-specific one wins for its method.

What hosts and plugins declare is validated here, once, when the monitor is built: a
route that could never match anything (a misspelt method, a query string, no leading
slash) would otherwise leave its check watching nothing, silently. A
:class:`RouteTable` is the precompiled lookup: a path is matched by looking up its own
prefixes (one dict lookup per ``/`` in it), not by scanning every route, so plugins adding
routes never slows the fold.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from attrs import field, frozen

from ..errors import ConfigError
from ..logs import get_logger

__all__ = [
    "METHODS",
    "RouteTable",
    "check_routes",
    "parse_route",
    "parse_routes",
    "registered_routes",
    "split_request",
    "warn_unwatched",
]

log = get_logger(__name__)

#: The methods a declared route may name (RFC 9110's). A typo is an error, not a route
#: that never matches.
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")

_EXAMPLE: Final = "a path starting with '/' ('/payments') or a method and a path ('POST /payments/webhook')"

#: An HTTP method as a client may send it (RFC 9110's token): recorded requests with a
#: method no route names still fold into the method-less routes.
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

_MEMO_LIMIT: Final = 4096


def parse_route(text: Any, *, where: str = "routes") -> tuple[str | None, str]:
    """A declared route's ``(method, path)``; a :class:`ConfigError` that says what to fix."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{where}: {text!r} is not a route; a route is {_EXAMPLE}")
    if text.startswith("/"):
        method, path = None, text
        head, _, last = text.rpartition(" ")
        if head and last.upper() in METHODS:
            raise ConfigError(f"{where}: {text!r}: to give a method, put it first: '{last.upper()} {head}'")
    else:
        method, space, path = text.partition(" ")
        if not space:
            method, path = None, text
    if not path.startswith("/"):
        if method is None:
            raise ConfigError(f"{where}: {text!r} must start with '/' (did you mean '/{text}'?); a route is {_EXAMPLE}")
        raise ConfigError(
            f"{where}: {text!r}: the path after the method must start with '/', e.g. 'POST /payments/webhook'"
        )
    if method is not None and method not in METHODS:
        if method.upper() in METHODS:
            hint = f"write the method in capitals: '{method.upper()} {path}'"
        else:
            close = difflib.get_close_matches(method.upper(), METHODS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            hint += f"methods: {', '.join(METHODS)}"
        raise ConfigError(f"{where}: {text!r}: {method!r} is not an HTTP method; {hint}")
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        raise ConfigError(f"{where}: {text!r} has a control character in its path; a route is {_EXAMPLE}")
    if "?" in path or "#" in path:
        raise ConfigError(
            f"{where}: {text!r}: a route is a path prefix, without a query or fragment "
            f"(requests are matched on their path alone): {path.partition('?')[0].partition('#')[0]!r}"
        )
    return method, path


def parse_routes(value: Any, *, where: str = "routes") -> Mapping[str, str]:
    """A route-to-area mapping, every route and area checked (:func:`parse_route`)."""
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where} must map a route to an area, e.g. {{'/media-upload': 'uploads', "
            f"'POST /payments/webhook': 'payments'}}; got {value!r}"
        )
    for route, area in value.items():
        parse_route(route, where=where)
        if not isinstance(area, str) or not area:
            raise ConfigError(f"{where}: the area for {route!r} must be a non-empty string, got {area!r}")
    return dict(value)


def registered_routes(value: Any) -> Mapping[str, str]:
    """What a plugin handed to ``register_routes``' ``register``, checked."""
    return parse_routes(value, where="register_routes")


def check_routes(check: Any) -> Mapping[str, str]:
    """A check's own ``routes`` (none when it has none), checked."""
    routes = getattr(check, "routes", None)
    if routes is None:
        return {}
    return parse_routes(routes, where=f"check {getattr(check, 'name', '?')!r}: routes")


def warn_unwatched(checks: Iterable[Any], tables: Mapping[str, RouteTable]) -> None:
    """Name once each check on a route that a site's table leaves out, with those sites.

    Only a host's ``replace_routes`` leaves out what a check declares, and the check then
    sees nothing there and never fires: the one way a declared route can go blind, so it
    is said when the monitor is built rather than found out in an outage. ``tables`` are
    by site, ``"*"`` for every site without settings of its own.
    """
    for check in checks:
        for route in check_routes(check):
            sites = [site for site, table in tables.items() if route not in table.keys]
            if sites:
                log.warning(
                    "nextmonth_health.unwatched_route",
                    check=check.name,
                    route=route,
                    sites=sites,
                    hint="these sites' routes leave it out (replace_routes=True), so the check sees nothing "
                    "there: add the route to their routes",
                )


def split_request(text: str) -> tuple[str | None, str] | None:
    """A recorded route's ``(method, path)``: ``"/bookings/42"`` or ``"POST /payments/webhook"``;
    None when it is neither (dropped and counted as invalid)."""
    if text.startswith("/"):
        return None, text
    method, space, path = text.partition(" ")
    if space and path.startswith("/") and _TOKEN.fullmatch(method):
        return method, path
    return None


@frozen
class RouteTable:
    """The routes of one site's settings, precompiled for matching.

    ``areas`` maps each route to its area; ``extra`` routes (``critical_routes``,
    ``dashboard_pages``) keep a key of their own without an area.
    """

    #: Route to area, as declared.
    areas: Mapping[str, str]
    #: Every route that keeps a key of its own.
    keys: frozenset[str]
    #: Whether any route names a method: only then does the middleware record methods.
    has_methods: bool
    #: Routes by their exact prefix: ``{prefix: ((method, route), ...)}``.
    _exact: Mapping[str, tuple[tuple[str | None, str], ...]] = field(repr=False)
    #: Routes by their prefix less trailing slashes: ``{stem: ((length, method, route), ...)}``.
    _under: Mapping[str, tuple[tuple[int, str | None, str], ...]] = field(repr=False)
    _memo: dict[str, str | None] = field(factory=dict, eq=False, repr=False)

    @classmethod
    def build(cls, areas: Mapping[str, str], extra: Iterable[str] = ()) -> RouteTable:
        """Precompile ``areas`` (already valid: :func:`parse_routes`) and ``extra`` routes."""
        exact: dict[str, list[tuple[str | None, str]]] = {}
        under: dict[str, list[tuple[int, str | None, str]]] = {}
        keys = frozenset((*areas, *extra))
        for route in keys:
            method, path = parse_route(route)
            exact.setdefault(path, []).append((method, route))
            under.setdefault(path.rstrip("/"), []).append((len(path), method, route))
        return cls(
            areas=dict(areas),
            keys=keys,
            has_methods=any(not route.startswith("/") for route in keys),
            exact={k: tuple(v) for k, v in exact.items()},
            under={k: tuple(v) for k, v in under.items()},
        )

    def match(self, path: str, method: str | None = None) -> str | None:
        """The route a request falls under: the longest matching prefix (trailing slashes
        aside), method-specific before method-less on the same prefix; None for ``other``."""
        best: str | None = None
        rank = (-1, False, -1)
        stem = len(path.rstrip("/"))
        for route_method, route in self._exact.get(path, ()):
            if route_method is None or route_method == method:
                candidate = (stem, route_method is not None, len(path))
                if candidate > rank:
                    best, rank = route, candidate
        under = self._under
        i = path.find("/")
        while i != -1:
            for length, route_method, route in under.get(path[:i], ()):
                if route_method is None or route_method == method:
                    candidate = (i, route_method is not None, length)
                    if candidate > rank:
                        best, rank = route, candidate
            i = path.find("/", i + 1)
        return best

    def route_for(self, request: str) -> str | None:
        """The route of a path or of ``"METHOD /path"``; None for ``other`` or a malformed one."""
        memo = self._memo
        if request in memo:
            return memo[request]
        parts = split_request(request) if type(request) is str else None
        found = None if parts is None else self.match(parts[1], parts[0])
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[request] = found
        return found
