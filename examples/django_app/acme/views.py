"""The Django demo's views, its fault switches, and the wiring of nextmonth_health.

    make example-django      # or: .venv/bin/python examples/django_app/manage.py runserver 127.0.0.1:8002 --noreload
    open http://127.0.0.1:8002

Like the Starlette and Flask demos: the critical routes, the overlay's ``<script>`` tag,
simulated visitors (``DEMO_VISITORS=0`` for none), fault switches on the home page or
``curl -X POST 'http://127.0.0.1:8002/_fault?uploads=fail'`` (``DEMO_FAULTS`` at start-up),
and the admin view at ``/admin/system-health``. Another port: give it to ``runserver``
(``runserver 127.0.0.1:8102 --noreload``). Pages, fault switches and visitors live in
``examples/demo_site.py``, shared with the other demos.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

# demo_site.py sits in examples/, two levels up; Django runs with examples/django_app on sys.path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import demo_site as ds
from demo_site import Demo
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse

import nextmonth_health as nmh
from nextmonth_health.wsgi import HealthMiddleware

DEMO = Demo()  # the monitor and the faults, set by make_application()
demo_user = ds.wsgi_user


def page(page: ds.Page) -> HttpResponse:
    return HttpResponse(ds.render(page, label="Django demo"))


def home(request: HttpRequest) -> HttpResponse:
    return page(ds.home_page(DEMO.faults))


def uploads(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        ok = DEMO.upload(demo_user(request.META))
        return JsonResponse({"ok": ok}, status=200 if ok else 503)
    return page(ds.UPLOADS)


def bookings(request: HttpRequest) -> HttpResponse:
    return page(ds.BOOKINGS)


def booking(request: HttpRequest, pk: int) -> HttpResponse:
    if DEMO.broken("bookings"):
        return JsonResponse({"error": "unavailable"}, status=503)
    return page(ds.booking_page(pk))


def portal(request: HttpRequest) -> HttpResponse:
    if DEMO.broken("portal"):
        return JsonResponse({"error": "unavailable"}, status=503)
    return page(ds.PORTAL)


def login(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name = ds.login_name(request.POST.get("name"))
        if not DEMO.login(name):
            return page(ds.LOGIN_FAILED)
        response = HttpResponseRedirect("/dashboard", status=303)
        response.set_cookie("demo_user", name, httponly=True, samesite="Lax")
        return response
    return page(ds.LOGIN)


def dashboard(request: HttpRequest) -> HttpResponse:
    if DEMO.broken("dashboard"):
        time.sleep(ds.DASHBOARD_DELAY)
    return page(ds.DASHBOARD)


def fault(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        DEMO.switch(request.GET.items())
        if "text/html" in request.headers.get("accept", ""):
            return HttpResponseRedirect("/", status=303)
    return JsonResponse(DEMO.fault_state())


def make_application(
    django_app: Any, monitor: nmh.Monitor | None = None, *, visitors: int | None = None, faults: str | None = None
) -> HealthMiddleware:
    """Django's WSGI app wrapped in :class:`HealthMiddleware`; tests pass their own monitor."""
    own_monitor = monitor is None
    monitor = ds.new_monitor() if monitor is None else monitor
    visitors = ds.visitor_count(visitors)
    DEMO.monitor = monitor
    DEMO.faults = ds.parse_faults(faults)
    application = HealthMiddleware(django_app, monitor, user=demo_user, authorize=ds.authorizer())
    if own_monitor:  # the middleware runs the monitor, from the first request
        print("nextmonth_health is watching; " + ds.admin_line("/admin/system-health"), flush=True)
    if visitors:
        threading.Thread(target=simulate_visitors, args=(application, visitors), daemon=True).start()
    return application


def simulate_visitors(application: Any, count: int) -> None:
    """The shared simulated visitors (``demo_site.run_visitors``), as in-process WSGI calls."""

    def send(visit: ds.Visit) -> None:
        body = urlencode(visit.form or {}).encode()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": visit.method,
            "PATH_INFO": visit.path,
            "HTTP_COOKIE": f"demo_user={visit.user}",
            "SERVER_NAME": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "wsgi.input": io.BytesIO(body),
        }
        setup_testing_defaults(environ)
        result = application(environ, lambda status, headers, exc_info=None: None)
        try:
            for _ in result:
                pass
        finally:
            getattr(result, "close", lambda: None)()

    ds.run_visitors(send, DEMO, count)
