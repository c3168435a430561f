"""CSRF tokens for the admin view's state changes (acknowledging an alert, signing in and out).

A token is an itsdangerous signature over a digest of the caller's identity, so a token
lifted from one admin's page is useless to anyone else, and it expires after 12 hours.
The identity comes from the authoriser when it can name the caller (``identity(request)``,
as :class:`~nextmonth_health.web.auth.TokenAuthorizer` does); otherwise from a random
per-browser nonce kept in an HttpOnly, ``SameSite=Strict`` cookie (the double-submit
pattern), which also covers the sign-in form before anyone is signed in.

The signing secret is ``HealthApp(secret=...)``, else the authoriser's own ``secret``,
else a random secret made once per process — which is why a deployment with several
worker processes and a custom authoriser must pass ``secret=``: a token issued by one
worker is checked by another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from .auth import request_cookie, signer

if TYPE_CHECKING:
    from .http import HealthApp, Request

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "CSRF_MAX_AGE", "check_csrf", "csrf_token"]

#: Where fetch() callers (the widget) send the token.
CSRF_HEADER = "x-csrf-token"
#: The form field HTML forms send it in.
CSRF_FIELD = "csrf"
#: The nonce cookie used when the authoriser cannot name the caller.
CSRF_COOKIE = "nmh_csrf"
CSRF_MAX_AGE = 12 * 3600

_SALT = "nextmonth-health.csrf"
_process_secret = secrets.token_bytes(32)


def _secret(app: HealthApp) -> bytes:
    secret = app.secret if app.secret is not None else getattr(app.authorize, "secret", None)
    if secret is None:
        return _process_secret
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def _identity(app: HealthApp, request: Request) -> str | None:
    identify = getattr(app.authorize, "identity", None)
    if callable(identify):
        who = identify(request)
        if who:
            return f"id:{who}"
    nonce = request_cookie(request, CSRF_COOKIE)
    return f"nonce:{nonce}" if nonce else None


def _digest(secret: bytes, identity: str) -> str:
    return hmac.new(secret, identity.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_token(app: HealthApp, request: Request) -> tuple[str, tuple[str, str] | None]:
    """A token for forms and fetches of this caller, and a ``Set-Cookie`` header to send if one is needed."""
    secret = _secret(app)
    identity = _identity(app, request)
    header = None
    if identity is None:
        nonce = secrets.token_urlsafe(18)
        identity = f"nonce:{nonce}"
        parts = [f"{CSRF_COOKIE}={nonce}", f"Path={app.admin_prefix or '/'}", "HttpOnly", "SameSite=Strict"]
        if request.scheme == "https":
            parts.append("Secure")
        header = ("set-cookie", "; ".join(parts))
    token = signer(secret, _SALT).dumps(_digest(secret, identity))
    return token, header


def check_csrf(app: HealthApp, request: Request, token: str | None) -> bool:
    """Whether ``token`` was issued to this caller within the last 12 hours.

    Cross-site requests (``Sec-Fetch-Site: cross-site``) are refused whatever they carry.
    """
    if not token or request.headers.get("sec-fetch-site") == "cross-site":
        return False
    identity = _identity(app, request)
    if identity is None:
        return False
    secret = _secret(app)
    from itsdangerous import BadData

    try:
        signed = signer(secret, _SALT).loads(token, max_age=CSRF_MAX_AGE)
    except BadData:  # bad signature, expired, garbled
        return False
    return isinstance(signed, str) and hmac.compare_digest(signed, _digest(secret, identity))
