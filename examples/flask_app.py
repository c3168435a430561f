"""A small Flask site with nextmonth_health wired in.

    make example-flask              # or: .venv/bin/python examples/flask_app.py
    open http://127.0.0.1:8001

The same demo as ``starlette_app.py``: the critical routes, the overlay's ``<script>`` tag on
every page, simulated visitors in a background thread (``DEMO_VISITORS=0`` for none),
fault switches on the home page or ``curl -X POST 'http://127.0.0.1:8001/_fault?uploads=fail'``
(``DEMO_FAULTS=uploads`` at start-up), and the admin view at ``/admin/system-health``.
The middleware runs the monitor in a background thread from the first request. Another port:
``DEMO_PORT=8101`` (or ``PORT``). Pages, fault switches and visitors live in ``demo_site.py``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for demo_site, run as a script

import demo_site as ds
from demo_site import Demo
from flask import Flask, jsonify, redirect, request

import nextmonth_health as nmh
from nextmonth_health.wsgi import instrument_flask

demo_user = ds.wsgi_user


def page(page: ds.Page) -> str:
    # This demo puts the area on <body data-health-area>, the overlay's other way.
    return ds.render(page, label="Flask demo", area_on_body=True)


def create_app(monitor: nmh.Monitor | None = None, *, visitors: int | None = None, faults: str | None = None) -> Flask:
    """The demo site with :class:`HealthMiddleware` around its WSGI app; tests pass their own monitor."""
    monitor = ds.new_monitor() if monitor is None else monitor
    visitors = ds.visitor_count(visitors)
    demo = Demo(monitor, ds.parse_faults(faults))
    app = Flask(__name__)

    @app.get("/")
    def home() -> str:
        return page(ds.home_page(demo.faults))

    @app.route("/media-upload", methods=["GET", "POST"])
    def uploads() -> Any:
        if request.method == "POST":
            ok = demo.upload(demo_user(request.environ))
            return jsonify(ok=ok), 200 if ok else 503
        return page(ds.UPLOADS)

    @app.get("/bookings")
    def bookings() -> str:
        return page(ds.BOOKINGS)

    @app.get("/bookings/<int:booking_id>")
    def booking(booking_id: int) -> Any:
        if demo.broken("bookings"):
            return jsonify(error="unavailable"), 503
        return page(ds.booking_page(booking_id))

    @app.get("/portal")
    def portal() -> Any:
        if demo.broken("portal"):
            return jsonify(error="unavailable"), 503
        return page(ds.PORTAL)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            name = ds.login_name(request.form.get("name"))
            if not demo.login(name):
                return page(ds.LOGIN_FAILED)
            response = redirect("/dashboard", code=303)
            response.set_cookie("demo_user", name, httponly=True, samesite="Lax")
            return response
        return page(ds.LOGIN)

    @app.get("/dashboard")
    def dashboard() -> str:
        if demo.broken("dashboard"):
            time.sleep(ds.DASHBOARD_DELAY)
        return page(ds.DASHBOARD)

    @app.route("/_fault", methods=["GET", "POST"])
    def fault() -> Any:
        if request.method == "POST":
            demo.switch(request.args.items())
            if "text/html" in request.headers.get("accept", ""):
                return redirect("/", code=303)
        return jsonify(demo.fault_state())

    # Wraps app.wsgi_app in HealthMiddleware, with Flask's route templates.
    instrument_flask(app, monitor, user=demo_user, authorize=ds.authorizer())
    if visitors:
        threading.Thread(target=simulate_visitors, args=(app, demo, visitors), daemon=True).start()
    return app


def simulate_visitors(app: Flask, demo: Demo, count: int) -> None:
    """The shared simulated visitors (``demo_site.run_visitors``), through the real middleware in-process."""
    client = app.test_client()

    def send(visit: ds.Visit) -> None:
        client.set_cookie("demo_user", visit.user)
        client.open(visit.path, method=visit.method, data=visit.form)

    ds.run_visitors(send, demo, count)


if __name__ == "__main__":
    port = ds.demo_port(8001)
    ds.banner("(Flask) ", port)
    create_app().run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)
