"""Rob's view: the ``/admin/system-health`` page, its JSON API and the embeddable widget.

Every route here is mounted under the admin prefix, where
:class:`~nextmonth_health.web.http.HealthApp` admits only what its authoriser admits.
Pages are Jinja2 templates with autoescaping and ``StrictUndefined``; charts are SVG drawn
on the server (:mod:`~nextmonth_health.web.trends`); the only script is the widget's own
file. Every state change is a POST carrying a CSRF token (:mod:`~nextmonth_health.web.csrf`).

Routes, relative to the admin prefix:

==========================  ======  ===============================================
``/``                       GET     the dashboard (``?site=`` shows one site)
``/api/alerts``             GET     alerts, the unread count and a CSRF token
``/api/incidents``          GET     open and recently resolved incidents
``/api/trends``             GET     hourly points: ``?site=&check=&range=24h|7d``
``/api/ack``                POST    acknowledge ``{"id": …}`` (header ``X-CSRF-Token``)
``/ack``                    POST    the dashboard's form (field ``csrf``), 303 back
``/signin``, ``/signout``   GET/POST  the token authoriser's sign-in form
``/widget.js``              GET     the ``<nmh-health-alerts>`` element
``/static/…``               GET     the stylesheets
==========================  ======  ===============================================
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from ..errors import ConfigError
from ..values import Alert, Incident, timestamp
from . import trends
from .auth import TokenAuthorizer
from .csrf import CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token
from .http import Request, Response, Route

if TYPE_CHECKING:
    from .http import HealthApp

__all__ = ["ADMIN_HEADERS", "CONTENT_SECURITY_POLICY", "admin_routes"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Headers of every admin response (``nosniff`` and the referrer policy come from the router).
ADMIN_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
    ("cross-origin-resource-policy", "same-origin"),
)

_MAX_BODY = 8192
#: With more sites than this on the page, only the first (those needing attention) get trend graphs.
TREND_SITES = 6
_MAX_NAME = 200
_STATIC = {
    "/static/admin.css": ("admin.css", "text/css; charset=utf-8"),
    "/static/widget.css": ("widget.css", "text/css; charset=utf-8"),
    "/widget.js": ("widget.js", "text/javascript; charset=utf-8"),
}


def _require_web_extra() -> None:
    try:
        import itsdangerous  # noqa: F401
        import jinja2  # noqa: F401
    except ImportError:
        raise ConfigError("the admin view needs the web extra: pip install nextmonth-health[web]") from None


@functools.cache
def _environment() -> Any:
    _require_web_extra()
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nextmonth_health.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["value"] = trends.format_value
    return env


@functools.cache
def _static(name: str) -> bytes:
    return resources.files("nextmonth_health.web").joinpath("static", name).read_bytes()


def _secured(response: Response, *extra: tuple[str, str]) -> Response:
    return Response(response.status, response.body, (*response.headers, *extra, *ADMIN_HEADERS))


def _html(template: str, code: int = 200, headers: tuple[tuple[str, str], ...] = (), **context: Any) -> Response:
    from markupsafe import Markup

    context.setdefault("svg", lambda s: Markup(trends.render_svg(s)))
    body = _environment().get_template(template).render(**context)
    return _secured(Response.text(body, code, "text/html; charset=utf-8"), *headers)


def _json(data: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return _secured(Response.json(data, status), *headers)


def _redirect(location: str, *headers: tuple[str, str]) -> Response:
    return _secured(Response(303, b"", (("location", location),)), *headers)


# Formatting ----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.strftime("%d %b, %H:%M UTC").lstrip("0")


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    days = seconds // 86_400
    return f"{days} day{'s' if days != 1 else ''} ago"


def _redact(url: str) -> str:
    """A store URL without its password (``redis://:secret@host`` -> ``redis://:***@host``)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(unreadable store URL)"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _unread(alert: Alert) -> bool:
    return alert.is_active and alert.acknowledged_at is None


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.incident_id,
        "site": alert.site,
        "message": alert.message,
        "check": alert.check,
        "key": alert.key,
        "area": alert.area,
        "affected_users": alert.affected_users,
        "active": alert.is_active,
        "unread": _unread(alert),
        "created_at": _iso(alert.created_at),
        "updated_at": _iso(alert.updated_at),
        "resolved_at": _iso(alert.resolved_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "incident_ids": list(alert.incident_ids),
    }


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "site": incident.site,
        "check": incident.check,
        "area": incident.area,
        "key": incident.key,
        "summary": incident.summary,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "affected_users": incident.affected_users,
        "affected_now": incident.affected_now,
        "value": incident.value,
        "threshold": incident.threshold,
        "opened_at": _iso(incident.opened_at),
        "updated_at": _iso(incident.updated_at),
        "escalated_at": _iso(incident.escalated_at),
        "resolved_at": _iso(incident.resolved_at),
        "alert_id": incident.alert_id,
    }


def _sorted_alerts(alerts: list[Alert]) -> list[Alert]:
    """Active before resolved, unread before read, newest first within each."""
    alerts = sorted(alerts, key=lambda a: a.updated_at, reverse=True)
    return sorted(alerts, key=lambda a: (not a.is_active, not _unread(a)))


# Request helpers ------------------------------------------------------------------------


def _site_arg(request: Request) -> str | None:
    site = request.arg("site")
    if site is None or site == "":
        return None
    return site[:_MAX_NAME]


def _sites(app: HealthApp) -> list[str]:
    monitor = app.monitor
    return [monitor.site, *sorted(monitor.store.sites() - {monitor.site})]


def _fields(request: Request) -> dict[str, str] | None:
    """The POST body as flat string fields (form-encoded or a JSON object); None if unreadable."""
    if len(request.body) > _MAX_BODY:
        return None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = request.body.decode("utf-8")
        if content_type == "application/json":
            data = json.loads(text) if text else {}
            if not isinstance(data, dict):
                return None
            return {str(k): v for k, v in data.items() if isinstance(v, str)}
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    except (UnicodeDecodeError, ValueError):
        return None


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    )


def _page_url(app: HealthApp, site: str | None = None, anchor: str = "") -> str:
    url = app.admin_prefix + "/"
    if site:
        url += "?site=" + quote(site, safe="")
    return url + (f"#{anchor}" if anchor else "")


def _signed_in_by_session(app: HealthApp, request: Request) -> bool:
    authorize = app.authorize
    return isinstance(authorize, TokenAuthorizer) and (authorize.identity(request) or "").startswith("session:")


# Handlers -----------------------------------------------------------------------------


def dashboard(app: HealthApp, request: Request) -> Response:
    monitor = app.monitor
    now = timestamp(monitor.clock.now())
    chosen = _site_arg(request)
    every = _sites(app)
    sites = [chosen] if chosen is not None else every
    sections = []
    for site in sites:
        alerts = _sorted_alerts(monitor.alerts(site))
        incidents = monitor.incidents(site, include_resolved=True)
        sections.append(
            {
                "name": site,
                "anchor": "site-" + str(every.index(site) if site in every else 0),
                "known": site in every,
                "alerts": alerts,
                "unread": sum(_unread(a) for a in alerts),
                "open": [i for i in incidents if i.is_open],
                "resolved": [i for i in incidents if not i.is_open],
                "charts": [],
                "link": _page_url(app, site),
                "learning": site in every and monitor.learning(site),
            }
        )
    # Sites that need attention first; trend graphs for the first few (all of one chosen site).
    sections.sort(key=lambda s: (not s["unread"], not s["open"]))
    for section in sections[:TREND_SITES]:
        day = trends.trend_series(monitor, section["name"], range_="24h")
        week = trends.trend_series(monitor, section["name"], range_="7d")
        section["charts"] = [{"day": d, "week": w} for d, w in zip(day, week, strict=True)]
    token, cookie = csrf_token(app, request)
    status = monitor.status()
    return _html(
        "dashboard.html",
        headers=(cookie,) if cookie else (),
        prefix=app.admin_prefix,
        sections=sections,
        sites=every,
        chosen=chosen,
        unread=sum(s["unread"] for s in sections),
        csrf=token,
        now=now,
        ago=lambda then: _ago(now, then),
        unread_alert=_unread,
        monitor_status=status,
        store=_redact(status.store),
        last_evaluation=_ago(now, status.last_evaluation) if status.last_evaluation else "not yet",
        drops=sum(status.drops.values()),
        errors=sum(status.internal_errors.values()),
        sign_out=_signed_in_by_session(app, request),
        window=_span(monitor.settings.window_seconds),
    )


def _span(seconds: float) -> str:
    """A window's length in words: ``5 min``, ``10 s``."""
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def api_alerts(app: HealthApp, request: Request) -> Response:
    site = _site_arg(request)
    alerts = _sorted_alerts(app.monitor.alerts(site))
    token, cookie = csrf_token(app, request)
    return _json(
        {
            "site": site,
            "unread": sum(_unread(a) for a in alerts),
            "csrf": token,
            "dashboard": _page_url(app),
            "alerts": [alert_json(a) for a in alerts],
        },
        headers=(cookie,) if cookie else (),
    )


def api_incidents(app: HealthApp, request: Request) -> Response:
    site = _site_arg(request)
    incidents = app.monitor.incidents(site, include_resolved=request.arg("resolved", "1") != "0")
    return _json({"site": site, "incidents": [incident_json(i) for i in incidents]})


def api_trends(app: HealthApp, request: Request) -> Response:
    site = _site_arg(request) or app.monitor.site
    check = request.arg("check") or None
    range_ = request.arg("range") or "24h"
    try:
        series = trends.trend_series(app.monitor, site, check, range_)
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json({"site": site, "range": range_, "series": [s.as_json() for s in series]})


def _acknowledge(app: HealthApp, request: Request) -> tuple[int, Alert | None, dict[str, str]]:
    """Check the body and the CSRF token, then acknowledge; returns (status, alert, fields)."""
    fields = _fields(request)
    if fields is None:
        return 400, None, {}
    token = request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD)
    if not check_csrf(app, request, token):
        return 403, None, fields
    alert_id = fields.get("id", "")
    if not alert_id or len(alert_id) > _MAX_NAME:
        return 400, None, fields
    monitor = app.monitor
    alert = monitor.store.acknowledge_alert(alert_id, timestamp(monitor.clock.now()))
    return (200 if alert is not None else 404), alert, fields


_ACK_ERRORS = {
    400: "send the alert's id",
    403: "missing or invalid CSRF token; reload the page and try again",
    404: "no such alert",
}


def api_ack(app: HealthApp, request: Request) -> Response:
    status, alert, _ = _acknowledge(app, request)
    if alert is None:
        return _json({"error": _ACK_ERRORS[status]}, status=status)
    unread = sum(_unread(a) for a in app.monitor.alerts())
    return _json({"acknowledged": alert_json(alert), "unread": unread})


def form_ack(app: HealthApp, request: Request) -> Response:
    status, alert, fields = _acknowledge(app, request)
    if alert is None:
        return _html(
            "message.html",
            code=status,
            prefix=app.admin_prefix,
            title="That did not go through",
            message=_ACK_ERRORS[status],
        )
    site = fields.get("site") or None
    return _redirect(_page_url(app, site[:_MAX_NAME] if site else None))


def sign_in(app: HealthApp, request: Request) -> Response:
    authorize = app.authorize
    if not isinstance(authorize, TokenAuthorizer):
        return _json({"error": "sign in through the host application"}, status=404)
    if request.method == "GET":
        if authorize.identity(request) is not None:
            return _redirect(_page_url(app))
        return _signin_form(app, request)
    fields = _fields(request)
    if fields is None or not check_csrf(app, request, fields.get(CSRF_FIELD)):
        return _signin_form(app, request, "The form expired. Please try again.", status=403)
    if not authorize.check_token(fields.get("token", "")):
        return _signin_form(app, request, "That token did not match.", status=401)
    return _redirect(_page_url(app), ("set-cookie", authorize.session_cookie(request, app.admin_prefix)))


def _signin_form(app: HealthApp, request: Request, error: str = "", status: int = 200) -> Response:
    token, cookie = csrf_token(app, request)
    return _html(
        "signin.html",
        code=status,
        headers=(cookie,) if cookie else (),
        prefix=app.admin_prefix,
        csrf=token,
        error=error,
    )


def sign_out(app: HealthApp, request: Request) -> Response:
    authorize = app.authorize
    fields = _fields(request)
    if not isinstance(authorize, TokenAuthorizer) or fields is None:
        return _json({"error": "not found"}, status=404)
    if not check_csrf(app, request, request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD)):
        return _html("message.html", code=403, prefix=app.admin_prefix,
                     title="That did not go through", message=_ACK_ERRORS[403])
    return _redirect(app.admin_prefix + "/signin", ("set-cookie", authorize.clear_cookie(request, app.admin_prefix)))


def _asset(name: str, content_type: str) -> Callable[[HealthApp, Request], Response]:
    def serve(app: HealthApp, request: Request) -> Response:
        return _secured(Response(200, _static(name), (("content-type", content_type),)))

    serve.__name__ = f"serve_{name.replace('.', '_')}"
    return serve


def admin_routes() -> list[Route]:
    """The admin view's routes, for ``HealthApp(admin_routes=...)`` (all behind the authoriser).

    :raises ConfigError: when the ``web`` extra (Jinja2, itsdangerous) is not installed.
    """
    _require_web_extra()
    return [
        Route(("GET",), "/", dashboard, admin=True),
        Route(("GET",), "/api/alerts", api_alerts, admin=True),
        Route(("GET",), "/api/incidents", api_incidents, admin=True),
        Route(("GET",), "/api/trends", api_trends, admin=True),
        Route(("POST",), "/api/ack", api_ack, admin=True),
        Route(("POST",), "/ack", form_ack, admin=True),
        Route(("GET", "POST"), "/signin", sign_in, admin=True),
        Route(("POST",), "/signout", sign_out, admin=True),
        *(Route(("GET",), path, _asset(name, kind), admin=True) for path, (name, kind) in _STATIC.items()),
    ]
