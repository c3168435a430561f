"""A small Starlette site with nextmonth_health wired in.

    make example-starlette          # or: .venv/bin/python examples/starlette_app.py
    open http://127.0.0.1:8000      # (or: uvicorn --factory starlette_app:create_app)

The site has the critical routes (``/media-upload``, ``/bookings``, ``/portal``, ``/login``,
``/dashboard``), each page carrying the overlay's one ``<script>`` tag. A handful of
simulated visitors use it in the background (``DEMO_VISITORS=0`` turns them off) so the
monitor has traffic to judge. Break something from the home page — or
``curl -X POST 'http://127.0.0.1:8000/_fault?uploads=fail'`` — and within half a minute the
upload page shows its calm notice; ``?uploads=ok`` heals it. Start with faults already on:
``DEMO_FAULTS=uploads,dashboard``. The admin view is at ``/admin/system-health`` (a token
made at start-up and printed, or ``DEMO_ADMIN_TOKEN``). Another port: ``DEMO_PORT=8100`` (or
``PORT``). The middleware is the only wiring: it runs the monitor through uvicorn's lifespan.

Pages, fault switches and visitors are shared with the other demos in ``demo_site.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for demo_site, run as a script

import demo_site as ds
from demo_site import Demo
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

import nextmonth_health as nmh
from nextmonth_health.asgi import HealthMiddleware


def page(page: ds.Page) -> HTMLResponse:
    return HTMLResponse(ds.render(page))


def demo_user(scope: Any) -> str | None:
    """The demo's 'signed-in' user, from the ASGI scope's cookie header."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return ds.user_from_cookie(value.decode("latin-1"))
    return None


def create_app(monitor: nmh.Monitor | None = None, *, visitors: int | None = None, faults: str | None = None) -> Any:
    """The demo site wrapped in :class:`HealthMiddleware`; tests pass their own monitor."""
    monitor = ds.new_monitor() if monitor is None else monitor
    visitors = ds.visitor_count(visitors)
    demo = Demo(monitor, ds.parse_faults(faults))

    async def home(request: Request) -> Response:
        return page(ds.home_page(demo.faults))

    async def uploads(request: Request) -> Response:
        if request.method == "POST":
            ok = demo.upload(demo_user(request.scope))
            return JSONResponse({"ok": ok}, status_code=200 if ok else 503)
        return page(ds.UPLOADS)

    async def bookings(request: Request) -> Response:
        return page(ds.BOOKINGS)

    async def booking(request: Request) -> Response:
        if demo.broken("bookings"):
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return page(ds.booking_page(request.path_params["id"]))

    async def portal(request: Request) -> Response:
        if demo.broken("portal"):
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return page(ds.PORTAL)

    async def login(request: Request) -> Response:
        if request.method == "POST":
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            name = ds.login_name((form.get("name") or [None])[0])
            if not demo.login(name):
                return page(ds.LOGIN_FAILED)
            response = RedirectResponse("/dashboard", status_code=303)
            response.set_cookie("demo_user", name, httponly=True, samesite="lax")
            return response
        return page(ds.LOGIN)

    async def dashboard(request: Request) -> Response:
        if demo.broken("dashboard"):
            await asyncio.sleep(ds.DASHBOARD_DELAY)
        return page(ds.DASHBOARD)

    async def fault(request: Request) -> Response:
        if request.method == "POST":
            demo.switch(request.query_params.items())
            if "text/html" in request.headers.get("accept", ""):
                return RedirectResponse("/", status_code=303)
        return JSONResponse(demo.fault_state())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The demo's own business; the monitor needs nothing here (the middleware runs it).
        task = asyncio.create_task(simulate_visitors(wrapped, demo, visitors)) if visitors else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    site = Starlette(
        routes=[
            Route("/", home),
            Route("/media-upload", uploads, methods=["GET", "POST"]),
            Route("/bookings", bookings),
            Route("/bookings/{id:int}", booking),
            Route("/portal", portal),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/dashboard", dashboard),
            Route("/_fault", fault, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
    wrapped = HealthMiddleware(site, monitor, user=demo_user, authorize=ds.authorizer())
    return wrapped


async def simulate_visitors(app: Any, demo: Demo, count: int) -> None:
    """The shared simulated visitors (``demo_site.visitor_round``), through the real middleware in-process."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo.local") as client:
        while True:
            for visit in ds.visitor_round(demo, count):
                with contextlib.suppress(httpx.HTTPError):
                    await client.request(
                        visit.method, visit.path, data=visit.form, headers={"cookie": f"demo_user={visit.user}"}
                    )
            await asyncio.sleep(ds.VISITOR_PAUSE)


if __name__ == "__main__":
    import uvicorn

    port = ds.demo_port(8000)
    ds.banner("", port)
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")
