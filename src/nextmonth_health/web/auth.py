"""Authorisers for the admin view: who may see Rob's dashboard and its JSON API.

:class:`~nextmonth_health.web.http.HealthApp` keeps everything under the admin prefix
closed (403) until it is given an ``authorize(request)`` callable. Most hosts already know
who their admins are and pass a callable that asks their own session (the host's request
object is ``request.native``). For sites without one, :func:`token_authorizer` checks a
long random token, sent as ``Authorization: Bearer …`` by scripts, or typed once into a
small sign-in form that leaves a signed, HttpOnly session cookie in the browser.

An authoriser may also have ``identity(request) -> str | None``: a stable name for the
signed-in caller, which CSRF tokens are bound to (see :mod:`~nextmonth_health.web.csrf`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .http import Request

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["SESSION_COOKIE", "SIGN_IN_PATH", "TokenAuthorizer", "request_cookie", "token_authorizer"]

#: The admin route of the sign-in form, relative to the admin prefix.
SIGN_IN_PATH = "/signin"
#: What the sign-in form needs before anyone is signed in: itself and its stylesheet.
OPEN_PATHS = (SIGN_IN_PATH, "/static/admin.css")
#: The signed session cookie the sign-in form leaves (scoped to the admin prefix).
SESSION_COOKIE = "nmh_admin"
#: How long a browser stays signed in.
SESSION_MAX_AGE = 12 * 3600

_MIN_TOKEN_LENGTH = 16


def request_cookie(request: Request, name: str) -> str | None:
    """One cookie of a request, or None (a malformed Cookie header reads as no cookies)."""
    raw = request.headers.get("cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def signer(secret: bytes, salt: str) -> Any:
    """An itsdangerous timed serializer (imported lazily: it is the `web` extra)."""
    try:
        from itsdangerous import URLSafeTimedSerializer
    except ImportError:  # pragma: no cover - the web extra is installed in the tests
        raise ConfigError("the admin view needs the web extra: pip install nextmonth-health[web]") from None
    return URLSafeTimedSerializer(secret, salt=salt)


class TokenAuthorizer:
    """Lets in callers that know one of ``tokens``; see :func:`token_authorizer`."""

    #: Where people sign in, relative to the admin prefix (browsers without a session are sent there).
    sign_in_path = SIGN_IN_PATH

    def __init__(self, tokens: Iterable[str], *, secure_cookie: bool | None = None) -> None:
        self._tokens = tuple(t.encode() for t in tokens)
        #: Signs session cookies (and CSRF tokens); derived from the tokens, so every
        #: worker configured with the same tokens agrees, and changing them signs everyone out.
        self.secret = hashlib.sha256(b"nextmonth-health.session\0" + b"\0".join(sorted(self._tokens))).digest()
        self.secure_cookie = secure_cookie
        self._sessions = signer(self.secret, "nextmonth-health.session")
        self._store: Store | None = None
        self._open: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"TokenAuthorizer({len(self._tokens)} token(s))"

    def attach(self, store: Store, admin_prefix: str) -> None:
        """Keep session generations in ``store``, so that signing out on one worker ends the
        session on every worker sharing it, and let through unsigned exactly the open paths
        under ``admin_prefix``. ``HealthApp`` does this when it is given the authoriser."""
        self._store = store
        self._open = frozenset(admin_prefix.rstrip("/") + path for path in OPEN_PATHS)

    def __call__(self, request: Request) -> bool | None:
        """True for a valid bearer token or session cookie; None (401) otherwise.

        The sign-in form and its stylesheet are let through (``OPEN_PATHS``); the form's
        handler checks the token typed in.
        """
        path = request.path.rstrip("/")
        if path in self._open if self._open is not None else path.endswith(OPEN_PATHS):
            return True
        return True if self.identity(request) is not None else None

    def check_token(self, candidate: str) -> bool:
        """Whether ``candidate`` is one of the tokens, in time independent of where they differ."""
        given = candidate.encode()
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(given, token)
        return found

    def _fingerprint(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()[:32]

    def identity(self, request: Request) -> str | None:
        """Who is calling: a fingerprint of their bearer token or their session id; None if nobody.

        A session counts while its cookie is validly signed, younger than 12 hours, and of
        its token's current generation (signing out moves the generation on).
        """
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            token = credentials.strip()
            if not self.check_token(token):
                return None
            return "bearer:" + self._fingerprint(token)
        session = self._session(request)
        if session is None or session.get("gen", 0) != self._generation(session["key"]):
            return None
        return "session:" + session["sid"]

    def _session(self, request: Request) -> dict[str, Any] | None:
        """The signed session cookie's content, if the cookie is there, intact and young enough."""
        cookie = request_cookie(request, SESSION_COOKIE)
        if not cookie:
            return None
        from itsdangerous import BadData

        try:
            session = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadData:  # bad signature, expired or garbled: simply not signed in
            return None
        if not isinstance(session, dict) or not isinstance(session.get("sid"), str):
            return None
        if not isinstance(session.get("key"), str) or not isinstance(session.get("gen", 0), int):
            return None
        return session

    def _generation(self, key: str, *, bump: bool = False) -> int:
        store = self._store
        return 0 if store is None else store.session_generation("admin:" + key, bump=bump)

    def session_cookie(self, request: Request, path: str, token: str) -> str:
        """A ``Set-Cookie`` value that signs this browser in for ``path`` (the admin prefix),
        with the ``token`` it typed in: the session lasts until it expires or someone who
        signed in with that token signs out."""
        key = self._fingerprint(token)
        value = self._sessions.dumps({"sid": secrets.token_urlsafe(18), "key": key, "gen": self._generation(key)})
        return _cookie(SESSION_COOKIE, value, path, SESSION_MAX_AGE, self._secure(request))

    def sign_out(self, request: Request, path: str) -> str:
        """End this browser's session everywhere, and every other session opened with the
        same token (the store's generation for it moves on); returns the ``Set-Cookie``
        value that clears the cookie."""
        session = self._session(request)
        if session is not None:
            self._generation(session["key"], bump=True)
        return _cookie(SESSION_COOKIE, "", path, 0, self._secure(request))

    def _secure(self, request: Request) -> bool:
        if self.secure_cookie is not None:
            return self.secure_cookie
        return request.scheme == "https"


def _cookie(name: str, value: str, path: str, max_age: int, secure: bool) -> str:
    parts = [f"{name}={value}", f"Path={path or '/'}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def token_authorizer(token_or_tokens: str | Iterable[str], *, secure_cookie: bool | None = None) -> TokenAuthorizer:
    """An authoriser that admits callers knowing one of the given tokens.

    Scripts send ``Authorization: Bearer <token>``; people open ``<admin prefix>/signin``
    and type the token once, which sets a signed session cookie (HttpOnly,
    ``SameSite=Strict``, scoped to the admin prefix, ``Secure`` when the request came over
    HTTPS unless ``secure_cookie`` says otherwise) for 12 hours; signing out ends it on
    every worker. Tokens are compared with
    :func:`hmac.compare_digest`. Give several tokens to rotate one without downtime.

    :param token_or_tokens: one token or several; each at least 16 characters, e.g.
        ``secrets.token_urlsafe(32)``.
    :returns: a callable for ``HealthApp(authorize=...)``.
    """
    tokens = [token_or_tokens] if isinstance(token_or_tokens, str) else list(token_or_tokens)
    if not tokens:
        raise ConfigError("token_authorizer needs at least one token")
    for token in tokens:
        if not isinstance(token, str) or len(token) < _MIN_TOKEN_LENGTH or token != token.strip():
            raise ConfigError(
                f"admin tokens must be strings of at least {_MIN_TOKEN_LENGTH} characters without surrounding "
                "spaces; make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
    return TokenAuthorizer(tokens, secure_cookie=secure_cookie)
