"""A small Flask site with nextmonth_health wired in.

    make example-flask              # or: .venv/bin/python examples/flask_app.py
    open http://127.0.0.1:8001

The same demo as ``starlette_app.py``: the critical routes, the overlay's ``<script>`` tag on
every page, simulated visitors in a background thread (``DEMO_VISITORS=0`` for none),
fault switches on the home page or ``curl -X POST 'http://127.0.0.1:8001/_fault?uploads=fail'``
(``DEMO_FAULTS=uploads`` at start-up), and the admin view at ``/admin/system-health``.
A sync app runs the monitor in a background thread with ``monitor.start()``.
"""

from __future__ import annotations

import atexit
import html
import os
import random
import threading
import time
from http.cookies import SimpleCookie
from typing import Any

from flask import Flask, jsonify, redirect, request

import nextmonth_health as nmh
from nextmonth_health.wsgi import instrument_flask

try:  # the admin view ships with the `web` extra; the demo runs without it too
    from nextmonth_health.web.admin import admin_routes  # noqa: F401 - only checking it is there
    from nextmonth_health.web.auth import token_authorizer
except ImportError:
    token_authorizer = None

ADMIN_TOKEN = os.environ.get("DEMO_ADMIN_TOKEN", "demo-admin-token-not-a-secret")
FAULTS = ("uploads", "bookings", "portal", "login", "dashboard")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Acme Studio (Flask demo)</title>
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
<script src="/health/static/overlay.js" defer></script>
</head><body data-health-area="{area}">
<header><nav><a href="/">Home</a><a href="/media-upload">Uploads</a><a href="/bookings">Bookings</a>
<a href="/portal">Portal</a><a href="/login">Sign in</a><a href="/dashboard">Dashboard</a></nav></header>
<main><h1>{title}</h1>{body}</main>
</body></html>"""


def page(title: str, area: str, body: str) -> str:
    return PAGE.format(title=html.escape(title), area=html.escape(area), body=body)


def demo_user(environ: dict[str, Any]) -> str | None:
    """The demo's 'signed-in' user: a plain cookie (a real site asks its session)."""
    morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get("demo_user")
    return morsel.value if morsel else None


def create_app(monitor: nmh.Monitor | None = None, *, visitors: int | None = None, faults: str | None = None) -> Flask:
    """The demo site with :class:`HealthMiddleware` around its WSGI app; tests pass their own monitor."""
    own_monitor = monitor is None
    if monitor is None:
        monitor = nmh.Monitor(
            site="acme-studio", store="memory://", tick_seconds=5, cooldown_seconds=30, escalate_after=120
        )
    if visitors is None:
        visitors = int(os.environ.get("DEMO_VISITORS", "12"))
    chosen = os.environ.get("DEMO_FAULTS", "") if faults is None else faults
    broken = {f for f in chosen.split(",") if f in FAULTS}
    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        switches = "".join(
            f'<form method="post" action="/_fault?{name}={"ok" if name in broken else "fail"}">'
            f'<button type="submit">{"Heal" if name in broken else "Break"} {name}</button></form>'
            for name in FAULTS
        )
        return page(
            "Acme Studio",
            "",
            "<p>A demo site watched by nextmonth_health.</p>"
            f'<div class="demo"><p>Demo fault switches (on: {html.escape(", ".join(sorted(broken)) or "none")})</p>'
            f"{switches}</div>",
        )

    @app.route("/media-upload", methods=["GET", "POST"])
    def uploads() -> Any:
        if request.method == "POST":
            user = demo_user(request.environ)
            if "uploads" in broken:
                monitor.record_upload(ok=False, user=user, size=2_400_000)
                return jsonify(ok=False), 503
            monitor.record_upload(ok=True, user=user, size=2_400_000)
            return jsonify(ok=True)
        return page(
            "Media upload",
            "uploads",
            '<form method="post"><input type="file" name="file"> <button id="upload">Upload</button></form>',
        )

    @app.get("/bookings")
    def bookings() -> str:
        return page(
            "Bookings", "bookings", '<p>Your sessions this week.</p><p><a href="/bookings/42">Booking #42</a></p>'
        )

    @app.get("/bookings/<int:booking_id>")
    def booking(booking_id: int) -> Any:
        if "bookings" in broken:
            return jsonify(error="unavailable"), 503
        return page(f"Booking #{booking_id}", "bookings", "<p>Tuesday, 10:00 — studio B.</p>")

    @app.get("/portal")
    def portal() -> Any:
        if "portal" in broken:
            return jsonify(error="unavailable"), 503
        return page("Client portal", "portal", "<p>Your files and invoices.</p>")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = (request.form.get("name") or "guest")[:40]
            if "login" in broken:
                monitor.record_login(ok=False, user=name)
                return page("Sign in", "login", "<p>That did not go through. Please try again in a moment.</p>")
            monitor.record_login(ok=True, user=name)
            response = redirect("/dashboard", code=303)
            response.set_cookie("demo_user", name, httponly=True, samesite="Lax")
            return response
        return page(
            "Sign in",
            "login",
            '<form method="post"><input name="name" placeholder="Your name"> <button>Sign in</button></form>',
        )

    @app.get("/dashboard")
    def dashboard() -> str:
        if "dashboard" in broken:
            time.sleep(3.5)  # the slow dashboard the beacon will notice
        return page("Dashboard", "dashboard", "<p>Everything you are working on.</p>")

    @app.route("/_fault", methods=["GET", "POST"])
    def fault() -> Any:
        if request.method == "POST":
            for name, value in request.args.items():
                if name in FAULTS:
                    (broken.add if value == "fail" else broken.discard)(name)
            if "text/html" in request.headers.get("accept", ""):
                return redirect("/", code=303)
        return jsonify(faults=sorted(broken))

    instrument_flask(  # wraps app.wsgi_app in HealthMiddleware, with Flask's route templates
        app,
        monitor,
        user=demo_user,
        authorize=token_authorizer(ADMIN_TOKEN) if token_authorizer else None,
    )
    if own_monitor:
        monitor.start()
        atexit.register(monitor.stop)
    if visitors:
        threading.Thread(target=simulate_visitors, args=(app, monitor, broken, visitors), daemon=True).start()
    return app


def simulate_visitors(app: Flask, monitor: nmh.Monitor, broken: set[str], count: int) -> None:
    """Simulated visitors clicking around, through the real middleware (in-process)."""
    client = app.test_client()
    while True:
        for n in range(count):
            client.set_cookie("demo_user", f"visitor-{n:02d}")
            path = random.choice(["/bookings/42", "/portal", "/bookings", "/media-upload"])
            if path == "/media-upload":
                client.post(path)
            else:
                client.get(path)
            if random.random() < 0.3:
                client.post("/login", data={"name": f"visitor-{n:02d}"})
            slow = "dashboard" in broken
            monitor.record_page_load(
                "/dashboard", random.uniform(3.2, 4.5) if slow else random.uniform(0.6, 1.4), user=f"visitor-{n:02d}"
            )
        time.sleep(2)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8001"))
    print(f"Acme Studio (Flask) demo on http://127.0.0.1:{port}  (Ctrl-C to stop)")
    if token_authorizer:
        print(f"Admin view: http://127.0.0.1:{port}/admin/system-health  token: {ADMIN_TOKEN}")
    create_app().run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)
