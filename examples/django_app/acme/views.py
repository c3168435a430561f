"""The Django demo's views, its fault switches, and the wiring of nextmonth_health.

    make example-django      # or: .venv/bin/python examples/django_app/manage.py runserver 127.0.0.1:8002 --noreload
    open http://127.0.0.1:8002

Like the Starlette and Flask demos: the critical routes, the overlay's ``<script>`` tag,
simulated visitors (``DEMO_VISITORS=0`` for none), fault switches on the home page or
``curl -X POST 'http://127.0.0.1:8002/_fault?uploads=fail'`` (``DEMO_FAULTS`` at start-up),
and the admin view at ``/admin/system-health``.
"""

from __future__ import annotations

import atexit
import html
import io
import os
import random
import threading
import time
from http.cookies import SimpleCookie
from typing import Any
from wsgiref.util import setup_testing_defaults

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse

import nextmonth_health as nmh
from nextmonth_health.wsgi import HealthMiddleware

try:  # the admin view ships with the `web` extra; the demo runs without it too
    from nextmonth_health.web.admin import admin_routes  # noqa: F401 - only checking it is there
    from nextmonth_health.web.auth import token_authorizer
except ImportError:
    token_authorizer = None

ADMIN_TOKEN = os.environ.get("DEMO_ADMIN_TOKEN", "demo-admin-token-not-a-secret")
FAULTS = ("uploads", "bookings", "portal", "login", "dashboard")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Acme Studio (Django demo)</title>
<style>
body {{ margin: 0; font: 16px/1.6 system-ui, sans-serif; color: #1e293b; background: #f8fafc; }}
header {{ padding: 1rem 2rem; background: #fff; border-bottom: 1px solid #e2e8f0; }}
nav a {{ margin-right: 1rem; color: #4338ca; text-decoration: none; }}
main {{ max-width: 46rem; margin: 2rem auto; padding: 0 1.5rem; }}
.demo {{ font-size: .85rem; color: #64748b; border: 1px dashed #cbd5e1; border-radius: 10px;
         padding: .75rem 1rem; }}
button {{ font: inherit; padding: .4rem .9rem; border-radius: 8px; border: 1px solid #c7d2fe;
         background: #eef2ff; cursor: pointer; }}
</style>
<script src="/health/static/overlay.js" data-area="{area}" defer></script>
</head><body>
<header><nav><a href="/">Home</a><a href="/media-upload">Uploads</a><a href="/bookings">Bookings</a>
<a href="/portal">Portal</a><a href="/login">Sign in</a><a href="/dashboard">Dashboard</a></nav></header>
<main><h1>{title}</h1>{body}</main>
</body></html>"""


class Demo:
    """The demo's state: which faults are on, and the monitor (set by :func:`make_application`)."""

    def __init__(self) -> None:
        self.monitor: nmh.Monitor | None = None
        self.faults: set[str] = set()


DEMO = Demo()


def page(title: str, area: str, body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(PAGE.format(title=html.escape(title), area=html.escape(area), body=body), status=status)


def demo_user(environ: dict[str, Any]) -> str | None:
    """The demo's 'signed-in' user: a plain cookie (a real site asks its session)."""
    morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get("demo_user")
    return morsel.value if morsel else None


def home(request: HttpRequest) -> HttpResponse:
    switches = "".join(
        f'<form method="post" action="/_fault?{name}={"ok" if name in DEMO.faults else "fail"}">'
        f'<button type="submit">{"Heal" if name in DEMO.faults else "Break"} {name}</button></form>'
        for name in FAULTS
    )
    return page(
        "Acme Studio",
        "",
        "<p>A demo site watched by nextmonth_health.</p>"
        f'<div class="demo"><p>Demo fault switches (on: {html.escape(", ".join(sorted(DEMO.faults)) or "none")})</p>'
        f"{switches}</div>",
    )


def uploads(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = demo_user(request.META)
        if "uploads" in DEMO.faults:
            DEMO.monitor.record_upload(ok=False, user=user, size=2_400_000)
            return JsonResponse({"ok": False}, status=503)
        DEMO.monitor.record_upload(ok=True, user=user, size=2_400_000)
        return JsonResponse({"ok": True})
    return page(
        "Media upload",
        "uploads",
        '<form method="post"><input type="file" name="file"> <button id="upload">Upload</button></form>',
    )


def bookings(request: HttpRequest) -> HttpResponse:
    return page("Bookings", "bookings", '<p>Your sessions this week.</p><p><a href="/bookings/42">Booking #42</a></p>')


def booking(request: HttpRequest, pk: int) -> HttpResponse:
    if "bookings" in DEMO.faults:
        return JsonResponse({"error": "unavailable"}, status=503)
    return page(f"Booking #{pk}", "bookings", "<p>Tuesday, 10:00 — studio B.</p>")


def portal(request: HttpRequest) -> HttpResponse:
    if "portal" in DEMO.faults:
        return JsonResponse({"error": "unavailable"}, status=503)
    return page("Client portal", "portal", "<p>Your files and invoices.</p>")


def login(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name = (request.POST.get("name") or "guest")[:40]
        if "login" in DEMO.faults:
            DEMO.monitor.record_login(ok=False, user=name)
            return page("Sign in", "login", "<p>That did not go through. Please try again in a moment.</p>")
        DEMO.monitor.record_login(ok=True, user=name)
        response = HttpResponseRedirect("/dashboard", status=303)
        response.set_cookie("demo_user", name, httponly=True, samesite="Lax")
        return response
    return page(
        "Sign in",
        "login",
        '<form method="post"><input name="name" placeholder="Your name"> <button>Sign in</button></form>',
    )


def dashboard(request: HttpRequest) -> HttpResponse:
    if "dashboard" in DEMO.faults:
        time.sleep(3.5)  # the slow dashboard the beacon will notice
    return page("Dashboard", "dashboard", "<p>Everything you are working on.</p>")


def fault(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        for name, value in request.GET.items():
            if name in FAULTS:
                (DEMO.faults.add if value == "fail" else DEMO.faults.discard)(name)
        if "text/html" in request.headers.get("accept", ""):
            return HttpResponseRedirect("/", status=303)
    return JsonResponse({"faults": sorted(DEMO.faults)})


def make_application(
    django_app: Any, monitor: nmh.Monitor | None = None, *, visitors: int | None = None, faults: str | None = None
) -> HealthMiddleware:
    """Django's WSGI app wrapped in :class:`HealthMiddleware`; tests pass their own monitor."""
    own_monitor = monitor is None
    if monitor is None:
        monitor = nmh.Monitor(
            site="acme-studio", store="memory://", tick_seconds=5, cooldown_seconds=30, escalate_after=120
        )
    if visitors is None:
        visitors = int(os.environ.get("DEMO_VISITORS", "12"))
    chosen = os.environ.get("DEMO_FAULTS", "") if faults is None else faults
    DEMO.monitor = monitor
    DEMO.faults = {f for f in chosen.split(",") if f in FAULTS}
    application = HealthMiddleware(
        django_app, monitor, user=demo_user, authorize=token_authorizer(ADMIN_TOKEN) if token_authorizer else None
    )
    if own_monitor:
        monitor.start()
        atexit.register(monitor.stop)
        print(f"nextmonth_health is watching; admin view at /admin/system-health (token: {ADMIN_TOKEN})")
    if visitors:
        threading.Thread(target=simulate_visitors, args=(application, visitors), daemon=True).start()
    return application


def simulate_visitors(application: Any, count: int) -> None:
    """Simulated visitors clicking around, through the real middleware (in-process WSGI calls)."""

    def call(method: str, path: str, user: str, body: bytes = b"") -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "HTTP_COOKIE": f"demo_user={user}",
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

    while True:
        for n in range(count):
            user = f"visitor-{n:02d}"
            path = random.choice(["/bookings/42", "/portal", "/bookings", "/media-upload"])
            call("POST" if path == "/media-upload" else "GET", path, user)
            if random.random() < 0.3:
                call("POST", "/login", user, f"name={user}".encode())
            slow = "dashboard" in DEMO.faults
            DEMO.monitor.record_page_load(
                "/dashboard", random.uniform(3.2, 4.5) if slow else random.uniform(0.6, 1.4), user=user
            )
        time.sleep(2)
