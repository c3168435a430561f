"""The token authoriser's sign-in form and sign-out, for people.

A browser without a session is sent here by the router with ``next=`` naming the admin
page it wanted; after signing in it goes back there. ``next`` is believed only when it is
a plain path under the admin prefix: never another host, scheme, ``//`` or ``\\`` trick,
dot segments (plain or percent-encoded) or control characters, so the form cannot be used
to send someone elsewhere. Wrong tokens are counted per client
(:class:`~nextmonth_health.web.limits.FailureThrottle`): past ten, 429 with ``Retry-After``.
Signing out moves the session's generation on in the store, so the cookie stops working
on every worker, not just in this browser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .auth import TokenAuthorizer
from .csrf import CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token
from .http import Request, Response
from .pages import form_fields, html_page, redirect

if TYPE_CHECKING:
    from .http import HealthApp

__all__ = ["safe_next", "sign_in", "sign_out"]

_MAX_NEXT = 2000


def safe_next(app: HealthApp, target: str | None) -> str:
    """``target`` when it is a path under the admin prefix, else the dashboard."""
    home = app.admin_prefix + "/"
    if not target or len(target) > _MAX_NEXT:
        return home
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in target) or target.startswith("//"):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.fragment:
        return home
    path = parts.path
    if path != app.admin_prefix and not path.startswith(app.admin_prefix + "/"):
        return home
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return home
    decoded = unquote(path)
    if "//" in decoded or "\\" in decoded or any(ord(c) < 0x20 for c in decoded):
        return home
    return target


def sign_in(app: HealthApp, request: Request) -> Response:
    authorize = app.authorize
    if not isinstance(authorize, TokenAuthorizer):
        return app.error(
            request,
            404,
            "Not here",
            "Sign in through the site itself.",
            json_message="sign in through the host application",
        )
    target = request.arg("next")
    if request.method == "GET":
        if authorize.identity(request) is not None:
            return redirect(safe_next(app, target))
        return _form(app, request, target)
    fields = form_fields(request)
    target = (fields or {}).get("next") or target
    now = app.monitor.clock.now()
    wait = app.throttle.retry_after(request.client, now)
    if wait:
        return _form(
            app,
            request,
            target,
            f"Too many wrong tokens from here. Try again in {wait} seconds.",
            status=429,
            headers=(("retry-after", str(wait)),),
        )
    if fields is None or not check_csrf(app, request, fields.get(CSRF_FIELD)):
        return _form(app, request, target, "The form expired. Please try again.", status=403)
    token = fields.get("token", "")
    if not authorize.check_token(token):
        app.throttle.failed(request.client, now)
        return _form(app, request, target, "That token did not match.", status=401)
    cookie = authorize.session_cookie(request, app.admin_prefix, token)
    return redirect(safe_next(app, target), ("set-cookie", cookie))


def _form(
    app: HealthApp,
    request: Request,
    target: str | None,
    error: str = "",
    status: int = 200,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    token, cookie = csrf_token(app, request)
    return html_page(
        "signin.html",
        code=status,
        headers=((cookie,) if cookie else ()) + headers,
        prefix=app.admin_prefix,
        csrf=token,
        error=error,
        next=safe_next(app, target) if target else "",
    )


def sign_out(app: HealthApp, request: Request) -> Response:
    authorize = app.authorize
    fields = form_fields(request)
    if not isinstance(authorize, TokenAuthorizer) or fields is None:
        return app.error(request, 404, "Not found", "There is nothing at this address.", json_message="not found")
    if not check_csrf(app, request, request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD)):
        return app.error(
            request,
            403,
            "That did not go through",
            "Missing or invalid CSRF token; reload the page and try again.",
            json_message="missing or invalid CSRF token",
        )
    cleared = authorize.sign_out(request, app.admin_prefix)
    return redirect(app.admin_prefix + "/signin", ("set-cookie", cleared))
