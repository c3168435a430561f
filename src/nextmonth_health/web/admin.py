"""Rob's view: the ``/admin/system-health`` pages, their JSON API and the embeddable widget.

Every route here is mounted under the admin prefix, where
:class:`~nextmonth_health.web.http.HealthApp` admits only what its authoriser admits and
adds the security headers to every answer. Pages are Jinja2 templates with autoescaping
and ``StrictUndefined``; charts are SVG drawn on the server
(:mod:`~nextmonth_health.web.trends`); the only scripts are static files: the widget's and
the pages' live updates (``admin.js``, which polls each page's JSON twin with ETags). Every
state change is a POST carrying a CSRF token (:mod:`~nextmonth_health.web.csrf`).

Routes, relative to the admin prefix:

=============================  ========  ==============================================================================
``/``                          GET       the overview (``?q=`` filter, ``?show=``), or one site (``?site=``)
``/incidents/{id}``            GET       one incident: timeline, readings, people, lines
``/api/overview``              GET       the overview's JSON twin (ETag)
``/api/alerts``                GET       alerts, the unread count and a CSRF token
``/api/incidents``             GET       open and recently resolved incidents
``/api/incidents/{id}``        GET       one incident's JSON twin (ETag)
``/api/trends``                GET       points: ``?site=&check=&range=24h|7d``
``/api/ack``                   POST      acknowledge ``{"id": …}`` (header ``X-CSRF-Token``)
``/api/maintenance``           GET       maintenance windows running or to come (``?site=``), a CSRF token
``/api/maintenance``           POST      schedule one: ``{"start", "end" | "duration", "reason", "area", "site"}``, 201
``/api/maintenance/{id}/end``  POST      end a window now (one to come is cancelled)
``/api/silences``              GET       silences in force (``?site=``), a CSRF token
``/api/silences``              POST      silence ``{"check", "key", "duration", "reason", "site"}``, 201
``/api/silences/{id}/end``     POST      lift a silence now
``/ack``                       POST      the pages' "Mark as read" (field ``csrf``), 303 back
``/maintenance``               POST      the dashboard's scheduling form, 303 back
``/maintenance/{id}/end``      POST      the dashboard's "End now" / "Cancel", 303 back
``/silences``                  POST      an incident page's "Silence for …", 303 back
``/silences/{id}/end``         POST      "Lift" a silence, 303 back
``/signin``, ``/signout``      GET/POST  the token authoriser's sign-in form
``/widget.js``, ``/static/…``  GET       the widget, the pages' script and stylesheets
=============================  ========  ==============================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit, urlunsplit

from ..codec import to_dict
from ..tell.alerts import incident_url
from ..values import Alert, Incident, timestamp
from . import trends
from .auth import TokenAuthorizer
from .csrf import CSRF_FIELD, CSRF_HEADER, check_csrf, csrf_token
from .http import ADMIN_HEADERS, CONTENT_SECURITY_POLICY, Request, Response, Route
from .incident_detail import MAX_ID, duration_words, find_incident, incident_detail, lines_for
from .overview import SHOW, add_charts, build_overview, sorted_alerts, unread
from .pages import (
    ago,
    etag_of,
    form_fields,
    html_page,
    json_body,
    json_page,
    redirect,
    require_web_extra,
)
from .planned import (
    MAINTENANCE_DURATIONS,
    SILENCE_DURATIONS,
    Planned,
    silence_from_form,
    silence_from_json,
    silence_json,
    window_from_form,
    window_from_json,
    window_json,
)
from .signin import sign_in, sign_out

if TYPE_CHECKING:
    from ..monitor import Monitor
    from .http import HealthApp

__all__ = ["ADMIN_HEADERS", "CONTENT_SECURITY_POLICY", "admin_routes", "alert_json", "incident_json"]

_MAX_NAME = 200
_STATIC = {
    "/static/admin.css": ("admin.css", "text/css; charset=utf-8"),
    "/static/admin.js": ("admin.js", "text/javascript; charset=utf-8"),
    "/static/widget.css": ("widget.css", "text/css; charset=utf-8"),
    "/widget.js": ("widget.js", "text/javascript; charset=utf-8"),
}


@functools.cache
def _static(name: str) -> bytes:
    return resources.files("nextmonth_health.web").joinpath("static", name).read_bytes()


# JSON ----------------------------------------------------------------------------------------


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


def alert_json(alert: Alert, prefix: str = "") -> dict[str, Any]:
    """An alert as the API gives it: the codec's shape, with ``id`` (its incident's),
    whether it is ``active`` and ``unread``, and its page's ``url``."""
    return {
        **to_dict(alert),
        "id": alert.incident_id,
        "active": alert.is_active,
        "unread": unread(alert),
        "url": incident_url(prefix, alert.incident_id),
    }


def incident_json(incident: Incident, monitor: Monitor, prefix: str = "") -> dict[str, Any]:
    """An incident as the API gives it: the codec's shape, where ``threshold`` is the line
    its chart draws (the check's) and ``baseline`` the usual level it was judged against."""
    lines = lines_for(monitor.settings_for(incident.site), incident)
    return {
        **to_dict(incident),
        "threshold": lines.threshold,
        "threshold_label": lines.label,
        "baseline": lines.baseline,
        "unit": lines.unit,
        "url": incident_url(prefix, incident.id),
    }


# Request helpers ------------------------------------------------------------------------------


def _site_arg(request: Request) -> str | None:
    site = request.arg("site")
    if site is None or site == "":
        return None
    return site[:_MAX_NAME]


def _page_url(app: HealthApp, site: str | None = None) -> str:
    url = app.admin_prefix + "/"
    return url + "?site=" + quote(site, safe="") if site else url


def _signed_in_by_session(app: HealthApp, request: Request) -> bool:
    authorize = app.authorize
    return isinstance(authorize, TokenAuthorizer) and (authorize.identity(request) or "").startswith("session:")


def _as_of(app: HealthApp) -> tuple[str, str]:
    """The header the pages' script reads to say how fresh what it shows is (the monitor's clock)."""
    return ("x-health-as-of", timestamp(app.monitor.clock.now()).isoformat())


def _span(seconds: float) -> str:
    """A window's length in words: ``5 min``, ``10 s``."""
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _page(app: HealthApp, request: Request, template: str, live: Any, **context: Any) -> Response:
    """A signed-in, live page: ``live`` is what its JSON twin answers (the page carries its
    ETag), and around the content the header, the CSRF token for its forms and the times."""
    monitor = app.monitor
    now = timestamp(monitor.clock.now())
    token, cookie = csrf_token(app, request)
    return html_page(
        template,
        headers=((cookie,) if cookie else ()) + (_as_of(app),),
        csrf=token,
        etag=etag_of(live),
        prefix=app.admin_prefix,
        now=now,
        ago=lambda then: ago(now, then),
        unread_alert=unread,
        sign_out=_signed_in_by_session(app, request),
        live_seconds=app.live_seconds,
        incident_url=lambda incident_id: incident_url(app.admin_prefix, incident_id),
        window=lambda site: _span(monitor.settings_for(site).window_seconds),
        duration=duration_words,
        **context,
    )


# The overview and a site's page ----------------------------------------------------------------


def _overview_args(request: Request) -> tuple[str | None, str, str]:
    show = request.arg("show") or "all"
    return _site_arg(request), (request.arg("q") or "")[:_MAX_NAME].strip(), show if show in SHOW else "all"


def _monitor_state(app: HealthApp) -> dict[str, Any]:
    status = app.monitor.status()
    return {
        "dropped": sum(status.drops.values()),
        "internal_errors": sum(status.internal_errors.values()),
        "plugin_failures": len(status.plugin_failures),
        "caveats": list(status.store_caveats),
    }


#: Up to this many sites shown, the scheduling form offers them in a list; past it, a name
#: to type (a thousand options would weigh more than the rest of the page).
_SITE_CHOICES = 50


def _areas(app: HealthApp, site: str | None) -> list[str]:
    """The areas a window can cover: those the ``routes`` setting maps paths to (the
    site's own, or every site's), as the scheduling form offers them."""
    monitor = app.monitor
    every = [monitor.settings_for(site)] if site else [monitor.settings, *monitor.site_settings.values()]
    return sorted({area for settings in every for area in settings.routes.values()})


def dashboard(app: HealthApp, request: Request) -> Response:
    monitor = app.monitor
    chosen, query, show = _overview_args(request)
    overview = build_overview(app, chosen, query, show)
    now = monitor.clock.now()
    state = overview.state(now, _monitor_state(app))
    add_charts(app, overview)
    status = monitor.status()
    api = app.admin_prefix + "/api/overview"
    live_query = urlencode({k: v for k, v in (("site", chosen), ("q", query), ("show", show)) if v and v != "all"})
    return _page(
        app,
        request,
        "dashboard.html",
        state,
        overview=overview,
        monitor_status=status,
        store=_redact(status.store),
        last_evaluation=ago(timestamp(now), status.last_evaluation) if status.last_evaluation else "not yet",
        drops=sum(status.drops.values()),
        errors=sum(status.internal_errors.values()),
        site_url=lambda name: _page_url(app, name),
        live_api=api + ("?" + live_query if live_query else ""),
        here=_page_url(app, chosen),
        maintenance_url="#maintenance",
        planned=overview.planned,
        marks=lambda incident: overview.marks(incident, now),
        alert_marks=lambda alert: overview.alert_marks(alert, now),
        areas=_areas(app, chosen),
        durations=MAINTENANCE_DURATIONS,
        site_choices=_SITE_CHOICES,
    )


def api_overview(app: HealthApp, request: Request) -> Response:
    chosen, query, show = _overview_args(request)
    overview = build_overview(app, chosen, query, show)
    return json_page(request, overview.state(app.monitor.clock.now(), _monitor_state(app)), headers=(_as_of(app),))


# One incident ---------------------------------------------------------------------------------------


def _planned_for(app: HealthApp, incident: Incident) -> Planned:
    """The site's windows and silences, and the window the incident names even once it
    has ended (for its reason): two or three store reads."""
    monitor = app.monitor
    known = monitor.store.maintenance_windows(incident.site) if incident.maintenance_id else ()
    return Planned.of(monitor.maintenance(incident.site), monitor.silences(incident.site), known)


def _detail_json(app: HealthApp, incident: Incident) -> tuple[Any, Planned, dict[str, Any]]:
    monitor = app.monitor
    now = timestamp(monitor.clock.now())
    detail = incident_detail(monitor, incident)
    planned = _planned_for(app, incident)
    marks = planned.marks(incident, detail.alert, now)
    data = {
        "incident": incident_json(incident, monitor, app.admin_prefix),
        "alert": alert_json(detail.alert, app.admin_prefix) if detail.alert is not None else None,
        "check": detail.check,
        "duration_seconds": round(detail.duration),
        "timeline": [{"at": e.at.isoformat(), "kind": e.kind, "text": e.text} for e in detail.events],
        "readings": detail.readings.as_json() if detail.readings is not None else None,
        "requests": detail.requests,
        "notes": list(detail.notes),
        "maintenance": window_json(marks.window, now) if marks.window is not None else None,
        "silence": silence_json(marks.silence, now) if marks.silence is not None else None,
        "alert_held": marks.held,
    }
    return detail, planned, data


def incident_page(app: HealthApp, request: Request) -> Response:
    incident = find_incident(app.monitor, request.params.get("id", ""))
    if incident is None:
        return app.error(
            request,
            404,
            "No such incident",
            "This incident is not kept any more (resolved ones go after 24 hours), or never was.",
            json_message="no such incident",
        )
    detail, planned, data = _detail_json(app, incident)
    now = timestamp(app.monitor.clock.now())
    return _page(
        app,
        request,
        "incident.html",
        data,
        detail=detail,
        incident=incident,
        site_link=_page_url(app, incident.site),
        live_api=app.admin_prefix + "/api/incidents/" + quote(incident.id, safe=""),
        marks=planned.marks(incident, detail.alert, now),
        silence_durations=SILENCE_DURATIONS,
        maintenance_url=_page_url(app, incident.site) + "#maintenance",
    )


def api_incident(app: HealthApp, request: Request) -> Response:
    incident = find_incident(app.monitor, request.params.get("id", ""))
    if incident is None:
        return Response.json({"error": "no such incident"}, status=404)
    _, _, data = _detail_json(app, incident)
    return json_page(request, data, headers=(_as_of(app),))


# The API -----------------------------------------------------------------------------------------------


def api_alerts(app: HealthApp, request: Request) -> Response:
    site = _site_arg(request)
    alerts = sorted_alerts(app.monitor.alerts(site))
    token, cookie = csrf_token(app, request)
    return Response.json(
        {
            "site": site,
            "unread": sum(unread(a) for a in alerts),
            "csrf": token,
            "dashboard": _page_url(app),
            "alerts": [alert_json(a, app.admin_prefix) for a in alerts],
        },
        headers=(cookie,) if cookie else (),
    )


def api_incidents(app: HealthApp, request: Request) -> Response:
    site = _site_arg(request)
    incidents = app.monitor.incidents(site, include_resolved=request.arg("resolved", "1") != "0")
    return Response.json(
        {"site": site, "incidents": [incident_json(i, app.monitor, app.admin_prefix) for i in incidents]}
    )


def api_trends(app: HealthApp, request: Request) -> Response:
    site = _site_arg(request) or app.monitor.site
    check = request.arg("check") or None
    range_ = request.arg("range") or "24h"
    try:
        series = trends.trend_series(app.monitor, site, check, range_)
    except ValueError as exc:
        return Response.json({"error": str(exc)}, status=400)
    return json_page(
        request, {"site": site, "range": range_, "series": [s.as_json() for s in series]}, headers=(_as_of(app),)
    )


# Acknowledging -------------------------------------------------------------------------------------------


def _posted(app: HealthApp, request: Request) -> tuple[int, dict[str, str]]:
    """A state change's fields once its body reads (else 400) and it carries this caller's
    CSRF token, in the header or the form's field (else 403); 200 when both hold."""
    fields = form_fields(request)
    if fields is None:
        return 400, {}
    token = request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD)
    if not check_csrf(app, request, token):
        return 403, fields
    return 200, fields


def _acknowledge(app: HealthApp, request: Request) -> tuple[int, Alert | None, dict[str, str]]:
    """Check the body and the CSRF token, then acknowledge; returns (status, alert, fields)."""
    status, fields = _posted(app, request)
    if status != 200:
        return status, None, fields
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
        return Response.json({"error": _ACK_ERRORS[status]}, status=status)
    unread_now = sum(unread(a) for a in app.monitor.alerts())
    return Response.json({"acknowledged": alert_json(alert, app.admin_prefix), "unread": unread_now})


def form_ack(app: HealthApp, request: Request) -> Response:
    status, alert, fields = _acknowledge(app, request)
    if alert is None:
        message = _ACK_ERRORS[status]
        return app.error(
            request, status, "That did not go through", message[0].upper() + message[1:] + ".", json_message=message
        )
    back = fields.get("back", "")
    if back.startswith(app.admin_prefix + "/incidents/") and back.count("/") == app.admin_prefix.count("/") + 2:
        return redirect(incident_url(app.admin_prefix, back.rsplit("/", 1)[1]))
    site = fields.get("site") or None
    return redirect(_page_url(app, site[:_MAX_NAME] if site else None))


# Planned quiet: maintenance windows and silences ------------------------------------------------

_REFUSED = {
    400: "the form could not be read; reload the page and try again",
    403: "missing or invalid CSRF token; reload the page and try again",
}
_NO_WINDOW = "no such maintenance window (ended ones are forgotten after a day)"
_NO_SILENCE = "no such silence (lifted ones are forgotten after a day)"


def _back(app: HealthApp, back: str, anchor: str) -> str:
    """Where a page's form comes back to: the incident page or the site's page it was sent
    from (rebuilt, never followed as given), else the dashboard; at its ``anchor``."""
    prefix = app.admin_prefix
    parts = urlsplit(back)
    target = _page_url(app)
    if not parts.scheme and not parts.netloc:
        incident = parts.path.removeprefix(prefix + "/incidents/")
        if incident != parts.path and incident and "/" not in incident and len(unquote(incident)) <= MAX_ID:
            return incident_url(prefix, unquote(incident))
        if parts.path == prefix + "/":
            site = parse_qs(parts.query).get("site")
            target = _page_url(app, site[0][:_MAX_NAME] if site else None)
    return f"{target}#{anchor}"


def _form_refused(app: HealthApp, request: Request, status: int, message: str) -> Response:
    """A page's form that did not go through: calm words, escaped, with its status."""
    sentence = message[0].upper() + message[1:].rstrip(".") + "."
    return app.error(request, status, "That did not go through", sentence, json_message=message)


def _id_param(request: Request) -> str:
    """A window's or a silence's id from the path; empty (a 404) when too long to be one."""
    found = request.params.get("id", "")
    return found if len(found) <= MAX_ID else ""


def form_schedule(app: HealthApp, request: Request) -> Response:
    """The dashboard's "Schedule" form. Its site must be one the monitor watches (a typed
    name could be misspelt); the API, for scripts, may plan for a site not seen yet."""
    status, fields = _posted(app, request)
    if status != 200:
        return _form_refused(app, request, status, _REFUSED[status])
    monitor = app.monitor
    try:
        args = window_from_form(fields)
        if args["site"] not in (None, monitor.site) and args["site"] not in monitor.store.sites():
            raise ValueError(f"{args['site']!r} is not a site this monitor watches: check its name in the list")
        monitor.schedule_maintenance(**args)
    except ValueError as exc:
        return _form_refused(app, request, 400, str(exc))
    return redirect(_back(app, fields.get("back", ""), "maintenance"))


def form_end_maintenance(app: HealthApp, request: Request) -> Response:
    """The dashboard's "End now" (a running window) and "Cancel" (one to come)."""
    status, fields = _posted(app, request)
    if status != 200:
        return _form_refused(app, request, status, _REFUSED[status])
    window_id = _id_param(request)
    if not window_id or app.monitor.end_maintenance(window_id) is None:
        return _form_refused(app, request, 404, _NO_WINDOW)
    return redirect(_back(app, fields.get("back", ""), "maintenance"))


def form_silence(app: HealthApp, request: Request) -> Response:
    """An incident page's "Silence for 1 h / 2 h / 4 h / 24 h"."""
    status, fields = _posted(app, request)
    if status != 200:
        return _form_refused(app, request, status, _REFUSED[status])
    try:
        app.monitor.silence(**silence_from_form(fields))
    except ValueError as exc:
        return _form_refused(app, request, 400, str(exc))
    return redirect(_back(app, fields.get("back", ""), "silences"))


def form_lift(app: HealthApp, request: Request) -> Response:
    """ "Lift" a silence, on the dashboard or an incident's page."""
    status, fields = _posted(app, request)
    if status != 200:
        return _form_refused(app, request, status, _REFUSED[status])
    silence_id = _id_param(request)
    if not silence_id or app.monitor.end_silence(silence_id) is None:
        return _form_refused(app, request, 404, _NO_SILENCE)
    return redirect(_back(app, fields.get("back", ""), "silences"))


def _api_refused(app: HealthApp, request: Request) -> Response | None:
    """403 without this caller's CSRF token in ``X-CSRF-Token``, as ``/api/ack`` answers."""
    if check_csrf(app, request, request.headers.get(CSRF_HEADER)):
        return None
    return Response.json({"error": _ACK_ERRORS[403]}, status=403)


def _api_body(app: HealthApp, request: Request) -> tuple[Response | None, dict[str, Any]]:
    refused = _api_refused(app, request)
    if refused is not None:
        return refused, {}
    body = json_body(request)
    if body is None:
        return Response.json({"error": "send a JSON object"}, status=400), {}
    return None, body


def _listed(app: HealthApp, request: Request, name: str, items: list[dict[str, Any]]) -> Response:
    token, cookie = csrf_token(app, request)
    return Response.json({"site": _site_arg(request), "csrf": token, name: items}, headers=(cookie,) if cookie else ())


def api_maintenance(app: HealthApp, request: Request) -> Response:
    """``GET`` lists the windows running or to come; ``POST`` schedules one."""
    if request.method == "POST":
        return _api_schedule(app, request)
    now = timestamp(app.monitor.clock.now())
    windows = Planned.of(app.monitor.maintenance(_site_arg(request)), ()).windows
    return _listed(app, request, "maintenance", [window_json(w, now) for w in windows])


def _api_schedule(app: HealthApp, request: Request) -> Response:
    refused, body = _api_body(app, request)
    if refused is not None:
        return refused
    try:
        window = app.monitor.schedule_maintenance(**window_from_json(body))
    except ValueError as exc:
        return Response.json({"error": str(exc)}, status=400)
    return Response.json({"maintenance": window_json(window, timestamp(app.monitor.clock.now()))}, status=201)


def api_end_maintenance(app: HealthApp, request: Request) -> Response:
    refused = _api_refused(app, request)
    if refused is not None:
        return refused
    window_id = _id_param(request)
    window = app.monitor.end_maintenance(window_id) if window_id else None
    if window is None:
        return Response.json({"error": _NO_WINDOW}, status=404)
    return Response.json({"maintenance": window_json(window, timestamp(app.monitor.clock.now()))})


def api_silences(app: HealthApp, request: Request) -> Response:
    """``GET`` lists the silences in force; ``POST`` makes one."""
    if request.method == "POST":
        return _api_silence(app, request)
    now = timestamp(app.monitor.clock.now())
    silences = Planned.of((), app.monitor.silences(_site_arg(request))).silences
    return _listed(app, request, "silences", [silence_json(s, now) for s in silences])


def _api_silence(app: HealthApp, request: Request) -> Response:
    refused, body = _api_body(app, request)
    if refused is not None:
        return refused
    try:
        made = app.monitor.silence(**silence_from_json(body))
    except ValueError as exc:
        return Response.json({"error": str(exc)}, status=400)
    return Response.json({"silence": silence_json(made, timestamp(app.monitor.clock.now()))}, status=201)


def api_lift(app: HealthApp, request: Request) -> Response:
    refused = _api_refused(app, request)
    if refused is not None:
        return refused
    silence_id = _id_param(request)
    lifted = app.monitor.end_silence(silence_id) if silence_id else None
    if lifted is None:
        return Response.json({"error": _NO_SILENCE}, status=404)
    return Response.json({"silence": silence_json(lifted, timestamp(app.monitor.clock.now()))})


def _asset(name: str, content_type: str) -> Callable[[HealthApp, Request], Response]:
    def serve(app: HealthApp, request: Request) -> Response:
        return Response(200, _static(name), (("content-type", content_type),))

    serve.__name__ = f"serve_{name.replace('.', '_')}"
    return serve


def admin_routes() -> list[Route]:
    """The admin view's routes, for ``HealthApp(admin_routes=...)`` (all behind the authoriser).

    :raises ConfigError: when the ``web`` extra (Jinja2, itsdangerous) is not installed.
    """
    require_web_extra()
    return [
        Route(("GET",), "/", dashboard, admin=True),
        Route(("GET",), "/incidents/{id}", incident_page, admin=True),
        Route(("GET",), "/api/overview", api_overview, admin=True),
        Route(("GET",), "/api/alerts", api_alerts, admin=True),
        Route(("GET",), "/api/incidents", api_incidents, admin=True),
        Route(("GET",), "/api/incidents/{id}", api_incident, admin=True),
        Route(("GET",), "/api/trends", api_trends, admin=True),
        Route(("POST",), "/api/ack", api_ack, admin=True),
        Route(("GET", "POST"), "/api/maintenance", api_maintenance, admin=True),
        Route(("POST",), "/api/maintenance/{id}/end", api_end_maintenance, admin=True),
        Route(("GET", "POST"), "/api/silences", api_silences, admin=True),
        Route(("POST",), "/api/silences/{id}/end", api_lift, admin=True),
        Route(("POST",), "/ack", form_ack, admin=True),
        Route(("POST",), "/maintenance", form_schedule, admin=True),
        Route(("POST",), "/maintenance/{id}/end", form_end_maintenance, admin=True),
        Route(("POST",), "/silences", form_silence, admin=True),
        Route(("POST",), "/silences/{id}/end", form_lift, admin=True),
        Route(("GET", "POST"), "/signin", sign_in, admin=True),
        Route(("POST",), "/signout", sign_out, admin=True),
        *(Route(("GET",), path, _asset(name, kind), admin=True) for path, (name, kind) in _STATIC.items()),
    ]
